"""VTAB-1k in the on-disk layout of NOAH's ``get_vtab1k.py`` export (used by V-PETL Bench)."""
import os.path as osp
from typing import List, Optional

from mmpretrain.datasets import BaseDataset

from ..registry import DATASETS

# NOAH folder name -> number of classes
VTAB_TASKS = dict(
    cifar=100, caltech101=102, dtd=47, oxford_flowers102=102, oxford_iiit_pet=37, svhn=10,
    sun397=397, patch_camelyon=2, eurosat=10, resisc45=45, diabetic_retinopathy=5,
    clevr_count=8, clevr_dist=6, dmlab=6, kitti=4, dsprites_loc=16, dsprites_ori=16,
    smallnorb_azi=18, smallnorb_ele=9)

SPLITS = dict(train='train800.txt', val='val200.txt', trainval='train800val200.txt',
              test='test.txt')


@DATASETS.register_module()
class VTAB1k(BaseDataset):
    """One VTAB-1k task: ``<data_root>/{train800,val200,train800val200,test}.txt`` with lines
    ``images/<split>/000123.jpg <label>`` (0-based labels) relative to ``data_root``.

    Args:
        data_root: The task folder, e.g. ``data/vtab-1k/dtd``.
        split: ``'train'`` (train800), ``'val'`` (val200), ``'trainval'`` (train800val200)
            or ``'test'``.
        num_classes: Number of classes; by default from :data:`VTAB_TASKS` when the folder
            name is a VTAB task, else ``max(label) + 1``.
        **kwargs: Passed to mmpretrain's ``BaseDataset`` (``pipeline``, ``test_mode`` ...).

    Examples:
        >>> train_dataloader = dict(dataset=dict(
        ...     type='vpetl_mm.VTAB1k', data_root='data/vtab-1k/dtd', split='train',
        ...     pipeline=[dict(type='LoadImageFromFile'), dict(type='Resize', scale=224),
        ...               dict(type='PackInputs')]))
    """

    def __init__(self, data_root: str, split: str = 'train', num_classes: Optional[int] = None,
                 **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'VTAB1k split must be one of {sorted(SPLITS)}, got {split!r}.')
        ann_file = osp.join(data_root, SPLITS[split])
        if not osp.isfile(ann_file):
            raise FileNotFoundError(
                f'{ann_file} not found. A VTAB-1k task folder holds train800.txt, val200.txt, '
                'train800val200.txt, test.txt and images/ (the NOAH get_vtab1k.py export).')
        self.num_classes = num_classes or VTAB_TASKS.get(osp.basename(osp.normpath(data_root)))
        self.split = split
        # relative ann_file: mmengine joins it with data_root (a joined one would be joined twice
        # when data_root is relative)
        super().__init__(ann_file=SPLITS[split], data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        samples = []
        with open(self.ann_file) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                parts = line.rsplit(maxsplit=1)
                if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                    raise ValueError(f'{self.ann_file}:{lineno}: expected "<image path> <int '
                                     f'label>", got {line.strip()!r}.')
                path, label = parts[0], int(parts[1])
                samples.append(dict(img_path=osp.join(self.data_root, path), gt_label=label))
        labels = {s['gt_label'] for s in samples}
        num_classes = self.num_classes or (max(labels) + 1 if labels else 0)
        if labels and (min(labels) < 0 or max(labels) >= num_classes):
            raise ValueError(f'{self.ann_file}: labels span [{min(labels)}, {max(labels)}] but '
                             f'the task has {num_classes} classes; pass num_classes=.')
        if 'classes' not in self._metainfo:
            self._metainfo['classes'] = tuple(str(i) for i in range(num_classes))
        return samples
