"""A tiny ADE20K-format semantic segmentation set.

``images/{training,validation}/*.jpg`` and ``annotations/{training,validation}/*.png``: uint8
label maps in the ADE convention (0 = "other", ignored with ``reduce_zero_label=True``; class k
is stored as k + 1), with a coloured rectangle per class.
"""
import os
import os.path as osp

import numpy as np
from PIL import Image

COLOURS = {1: (220, 40, 40), 2: (40, 220, 40), 3: (40, 40, 220)}  # stored label -> colour


def write_ade20k(root: str, num_train: int = 4, num_val: int = 2, size: int = 64,
                 seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    for split, count in (('training', num_train), ('validation', num_val)):
        for sub in ('images', 'annotations'):
            os.makedirs(osp.join(root, sub, split), exist_ok=True)
        for i in range(count):
            image = np.full((size, size, 3), 128, np.uint8)
            label = np.zeros((size, size), np.uint8)
            for stored, colour in COLOURS.items():
                h, w = rng.integers(size // 4, size // 2, size=2)
                y, x = rng.integers(0, size - h), rng.integers(0, size - w)
                image[y:y + h, x:x + w] = colour
                label[y:y + h, x:x + w] = stored
            name = f'ADE_{split}_{i:08d}'
            Image.fromarray(image).save(osp.join(root, 'images', split, name + '.jpg'))
            Image.fromarray(label).save(osp.join(root, 'annotations', split, name + '.png'))
    return root
