"""The five FGVC datasets in VPT's json-split layout (used by V-PETL Bench)."""
import json
import os.path as osp
from typing import Dict, List, Optional

from mmpretrain.datasets import BaseDataset

from ..registry import DATASETS
from .recipes import FGVC_DATASETS

# dataset name -> (number of classes, image folder relative to data_root)
FGVC_NAMES = {name: (classes, subdir) for name, _, classes, subdir in FGVC_DATASETS.values()}
FGVC_SPLITS = ('train', 'val', 'trainval', 'test')
_JSON_HINT = ('The VPT json splits ({train,val,test}.json, image path -> class id) are in '
              "Hugging Face's XiN0919/FGVC json.zip; unpack them into the dataset folder.")


def _read_split(path: str) -> Dict[str, int]:
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found. {_JSON_HINT}')
    try:
        with open(path) as f:
            anno = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path} is not valid json ({e}). {_JSON_HINT}') from e
    if not isinstance(anno, dict):
        raise ValueError(f'{path}: expected a json object {{image path: class id}}, got '
                         f'{type(anno).__name__}. {_JSON_HINT}')
    for image, class_id in anno.items():
        if not isinstance(class_id, int) or isinstance(class_id, bool):
            raise ValueError(f'{path}: the class id of {image!r} is {class_id!r}, expected an '
                             'integer.')
    return anno


@DATASETS.register_module()
class FGVC(BaseDataset):
    """CUB-200-2011, NABirds, Oxford Flowers, Stanford Dogs or Stanford Cars from VPT's splits.

    ``<data_root>/{train,val,test}.json`` map an image path (relative to the dataset's image
    folder: ``images/`` for CUB and NABirds, ``Images/`` for Dogs, ``data_root`` itself for
    Flowers and Cars) to a class id. Class ids are mapped to contiguous labels sorted by id over
    the union of the three files, so every split shares one mapping (VPT maps each file on its
    own, which is the same mapping whenever every split holds every class, as in the released
    splits).

    Args:
        data_root: The dataset folder, e.g. ``data/fgvc/CUB_200_2011``.
        name: ``'cub'``, ``'nabirds'``, ``'flowers'``, ``'dogs'`` or ``'cars'``.
        split: ``'train'``, ``'val'``, ``'trainval'`` (train + val) or ``'test'``.
        **kwargs: Passed to mmpretrain's ``BaseDataset`` (``pipeline``, ``test_mode`` ...).

    Examples:
        >>> train_dataloader = dict(dataset=dict(
        ...     type='vpetl_mm.FGVC', data_root='data/fgvc/CUB_200_2011', name='cub',
        ...     split='train', pipeline={{_base_.fgvc_train_pipeline}}))
    """

    def __init__(self, data_root: str, name: str, split: str = 'train', **kwargs) -> None:
        if name not in FGVC_NAMES:
            raise ValueError(f'FGVC name must be one of {sorted(FGVC_NAMES)}, got {name!r}.')
        if split not in FGVC_SPLITS:
            raise ValueError(f'FGVC split must be one of {list(FGVC_SPLITS)}, got {split!r}.')
        self.name, self.split = name, split
        self.num_classes, subdir = FGVC_NAMES[name]
        self.image_root: Optional[str] = None
        self._subdir = subdir
        super().__init__(ann_file='', data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        root = self.data_root
        image_root = osp.join(root, self._subdir) if self._subdir else root
        if not osp.isdir(image_root):
            raise FileNotFoundError(f'{image_root} not found: FGVC {self.name!r} images live in '
                                    f'{osp.join("<data_root>", self._subdir or "")}.')
        self.image_root = image_root
        splits = {s: _read_split(osp.join(root, f'{s}.json')) for s in ('train', 'val', 'test')}
        class_ids = sorted({c for anno in splits.values() for c in anno.values()})
        if len(class_ids) != self.num_classes:
            raise ValueError(f'{root}: the json splits hold {len(class_ids)} class ids but '
                             f'FGVC {self.name!r} has {self.num_classes} classes; check that '
                             'data_root and name belong to the same dataset.')
        label_of = {c: i for i, c in enumerate(class_ids)}
        names = ('train', 'val') if self.split == 'trainval' else (self.split, )
        samples, missing = [], []
        for split in names:
            for image, class_id in splits[split].items():
                path = osp.join(image_root, image)
                if not osp.isfile(path):
                    missing.append(path)
                samples.append(dict(img_path=path, gt_label=label_of[class_id]))
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} image(s) listed in {root}/{"+".join(names)}.json are missing, '
                f'e.g. {missing[0]}; images are resolved against {image_root}.')
        if 'classes' not in self._metainfo:
            self._metainfo['classes'] = tuple(str(c) for c in class_ids)
        return samples
