"""Write an image classification set to disk in the VTAB-1k layout read by :class:`VTAB1k`."""
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np
from PIL import Image

from .vtab import SPLITS


def write_vtab1k(root: str, images: np.ndarray, labels: Sequence[int],
                 splits: Dict[str, Sequence[int]]) -> str:
    """Save ``images[i]`` as ``images/<split>/NNNNNN.png`` and the four VTAB list files.

    Args:
        root: The task folder to create.
        images: ``(N, H, W)`` or ``(N, H, W, 3)`` uint8 array.
        labels: ``N`` integer labels (0-based).
        splits: ``'train'``, ``'val'`` and ``'test'`` -> sample indices. ``train800val200.txt``
            is train + val, written again under its own folder as in the NOAH export.

    Returns:
        ``root``.
    """
    missing = {'train', 'val', 'test'} - set(splits)
    if missing:
        raise ValueError(f'splits needs train, val and test indices; missing {sorted(missing)}.')
    splits = dict(splits, trainval=list(splits['train']) + list(splits['val']))
    for split, indices in splits.items():
        folder = osp.join('images', SPLITS[split][:-4])
        os.makedirs(osp.join(root, folder), exist_ok=True)
        lines = []
        for n, index in enumerate(indices):
            rel = osp.join(folder, f'{n:06d}.png')
            Image.fromarray(np.asarray(images[index], dtype=np.uint8)).save(osp.join(root, rel))
            lines.append(f'{rel} {int(labels[index])}\n')
        with open(osp.join(root, SPLITS[split]), 'w') as f:
            f.writelines(lines)
    return root
