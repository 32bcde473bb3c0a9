"""A tiny COCO instance-segmentation set in the real on-disk format.

``annotations/instances_{train,val}2017.json`` (images, categories, annotations with bbox,
area, iscrowd and polygon segmentation) and ``{train,val}2017/*.jpg``: coloured rectangles on
a grey background, one category per colour, using real COCO category names and ids.
"""
import json
import os
import os.path as osp
from typing import Dict

import numpy as np
from PIL import Image

# (COCO id, name, colour)
CATEGORIES = [(1, 'person', (220, 40, 40)), (3, 'car', (40, 40, 220))]


def write_coco(root: str, num_train: int = 4, num_val: int = 2, size: int = 64,
               seed: int = 0) -> Dict[str, str]:
    """Write the set under ``root``; returns the two annotation file paths."""
    rng = np.random.default_rng(seed)
    paths = {}
    ann_id = 1
    for split, count in (('train', num_train), ('val', num_val)):
        folder = f'{split}2017'
        os.makedirs(osp.join(root, folder), exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            image = np.full((size, size, 3), 128, np.uint8)
            image_id = i + 1
            for k, (cat_id, _, colour) in enumerate(CATEGORIES):
                w, h = (int(v) for v in rng.integers(size // 4, size // 2, size=2))
                x = int(rng.integers(0, size - w)) if k == 0 else size - int(w) - 1
                y = int(rng.integers(0, size - h))
                image[y:y + h, x:x + w] = colour
                annotations.append(dict(
                    id=ann_id, image_id=image_id, category_id=cat_id, iscrowd=0,
                    bbox=[x, y, int(w), int(h)], area=float(w * h),
                    segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
                ann_id += 1
            name = f'{image_id:012d}.jpg'
            Image.fromarray(image).save(osp.join(root, folder, name), quality=95)
            images.append(dict(id=image_id, file_name=name, width=size, height=size))
        os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
        paths[split] = osp.join(root, 'annotations', f'instances_{folder}.json')
        with open(paths[split], 'w') as f:
            json.dump(dict(images=images, annotations=annotations,
                           categories=[dict(id=i, name=n, supercategory='thing')
                                       for i, n, _ in CATEGORIES]), f)
    return paths
