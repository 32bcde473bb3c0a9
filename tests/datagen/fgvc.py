"""Tiny FGVC datasets in VPT's layout: ``{train,val,test}.json`` (image path -> class id).

Class ids are sparse and 1-based (as in the real splits, e.g. CUB's 1..200, NABirds' non-
contiguous ids), images sit in per-class sub-folders below the dataset's image folder.
"""
import json
import os
import os.path as osp
from typing import Dict, Optional

import numpy as np
from PIL import Image

from vpetl_mm.datasets import FGVC_NAMES


def class_ids(num_classes: int):
    """Sparse, 1-based, deliberately unsorted in the files: 1, 4, 7, ..."""
    return [1 + 3 * k for k in range(num_classes)]


def write_fgvc(root: str, name: str, num_classes: Optional[int] = None,
               per_split: Dict[str, int] = None, size: int = 8, seed: int = 0) -> str:
    """Write ``root`` as FGVC dataset ``name``; every split holds every class (round robin).

    ``per_split`` is the number of images per class in each split (default 1 / 1 / 1). Returns
    ``root``.
    """
    classes, subdir = FGVC_NAMES[name]
    num_classes = num_classes or classes
    per_split = per_split or dict(train=1, val=1, test=1)
    rng = np.random.default_rng(seed)
    image_root = osp.join(root, subdir) if subdir else root
    ids = class_ids(num_classes)
    for split, per_class in per_split.items():
        anno = {}
        # reversed: the json order is not the label order
        for class_id in reversed(ids):
            folder = f'{class_id:03d}.class_{class_id}'
            os.makedirs(osp.join(image_root, folder), exist_ok=True)
            for k in range(per_class):
                rel = f'{folder}/{split}_{k}.jpg'
                colour = rng.integers(0, 256, size=3)
                image = np.broadcast_to(colour, (size, size, 3)).astype(np.uint8)
                Image.fromarray(image).save(osp.join(image_root, rel))
                anno[rel] = class_id
        with open(osp.join(root, f'{split}.json'), 'w') as f:
            json.dump(anno, f)
    return root
