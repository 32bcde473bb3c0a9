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
# V-PETL Bench's scripts (and its Hugging Face copy) spell the CIFAR-100 folder `cifar100`
VTAB_TASKS['cifar100'] = VTAB_TASKS['cifar']

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
        task: The VTAB task (a :data:`VTAB_TASKS` folder name such as ``'dtd'`` or
            ``'cifar100'``) that sets the class count; by default the folder name of
            ``data_root`` when it is one.
        num_classes: Number of classes, for a task outside :data:`VTAB_TASKS`; by default
            the task's count, else ``max(label) + 1``.
        **kwargs: Passed to mmpretrain's ``BaseDataset`` (``pipeline``, ``test_mode`` ...).

    Examples:
        >>> train_dataloader = dict(dataset=dict(
        ...     type='vpetl_mm.VTAB1k', data_root='data/vtab-1k/dtd', split='train',
        ...     pipeline=[dict(type='LoadImageFromFile'), dict(type='Resize', scale=224),
        ...               dict(type='PackInputs')]))
    """

    def __init__(self, data_root: str, split: str = 'train', task: Optional[str] = None,
                 num_classes: Optional[int] = None, **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'VTAB1k split must be one of {sorted(SPLITS)}, got {split!r}.')
        ann_file = osp.join(data_root, SPLITS[split])
        if not osp.isfile(ann_file):
            raise FileNotFoundError(
                f'{ann_file} not found. A VTAB-1k task folder holds train800.txt, val200.txt, '
                'train800val200.txt, test.txt and images/ (the NOAH get_vtab1k.py export).')
        if task is not None and task not in VTAB_TASKS:
            raise ValueError(f'Unknown VTAB task {task!r}; expected one of {sorted(VTAB_TASKS)} '
                             '(or leave task=None and pass num_classes=).')
        self.task = task or osp.basename(osp.normpath(data_root))
        self.num_classes = num_classes or VTAB_TASKS.get(self.task)
        self.split = split
        # relative ann_file: mmengine joins it with data_root (a joined one would be joined twice
        # when data_root is relative)
        super().__init__(ann_file=SPLITS[split], data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        samples, lines = [], []
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
                lines.append(lineno)
        labels = [s['gt_label'] for s in samples]
        num_classes = self.num_classes or (max(labels) + 1 if labels else 0)
        for sample, lineno in zip(samples, lines):
            if not 0 <= sample['gt_label'] < num_classes:
                raise ValueError(
                    f'{self.ann_file}:{lineno}: label {sample["gt_label"]} is outside [0, '
                    f'{num_classes - 1}] for task {self.task!r} ({num_classes} classes); '
                    'check the folder, or pass task= / num_classes=.')
        missing = [(s, n) for s, n in zip(samples, lines) if not osp.isfile(s['img_path'])]
        if missing:
            (sample, lineno), count = missing[0], len(missing)
            raise FileNotFoundError(f'{self.ann_file}:{lineno}: image {sample["img_path"]} not '
                                    f'found ({count} of {len(samples)} listed images are '
                                    'missing); paths are relative to data_root.')
        if 'classes' not in self._metainfo:
            self._metainfo['classes'] = tuple(str(i) for i in range(num_classes))
        return samples
