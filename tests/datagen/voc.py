"""Tiny Pascal VOC sets in the real ``VOCdevkit`` on-disk layout (no network).

Detection (read by mmdet's ``VOCDataset`` through ``mmdet::_base_/datasets/voc0712.py``)::

    VOCdevkit/VOC2007/{Annotations/<id>.xml, JPEGImages/<id>.jpg,
                       ImageSets/Main/{train,val,trainval,test}.txt}
    VOCdevkit/VOC2012/{Annotations, JPEGImages, ImageSets/Main/{train,val,trainval}.txt}

VOC2012 has no annotated test split (its test set is evaluated on the server), so, as in the
real devkit, only VOC2007 carries ``test.txt``; ``voc0712.py`` trains on both ``trainval``
lists and evaluates on the VOC2007 ``test`` list.

Segmentation with the SBD augmentation (read by mmseg's ``PascalVOCDataset`` through
``mmseg::_base_/datasets/pascal_voc12_aug.py``)::

    VOCdevkit/VOC2012/{JPEGImages/<id>.jpg,
                       SegmentationClass/<id>.png      palette PNG, 255 = void border,
                       SegmentationClassAug/<id>.png   grayscale class indices (SBD, no border),
                       ImageSets/Segmentation/{train,val,trainval,aug,trainaug}.txt}

``aug.txt`` holds the SBD ids that are neither in ``train`` nor ``val`` (what mmseg's
``tools/dataset_converters/voc_aug.py`` writes), ``trainaug.txt`` is ``train`` plus ``aug``.

Images are coloured rectangles on a grey background, one colour per class, so boxes and masks
are real. Everything is deterministic for a given seed. Both writers may target the same root:
they use disjoint image ids.
"""
import os
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image

# mmdet's VOCDataset class order; mmseg's PascalVOCDataset prepends 'background' (index 0).
DET_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair',
               'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
               'sheep', 'sofa', 'train', 'tvmonitor')
SEG_CLASSES = ('background', ) + DET_CLASSES
# The few classes the tiny sets draw, with the colour of their rectangles.
COLOURS = {'car': (40, 40, 220), 'person': (220, 40, 40), 'dog': (40, 200, 40)}
POSES = ('Frontal', 'Left', 'Rear', 'Right', 'Unspecified')
VOID = 255  # VOC's "void" label: object borders and difficult regions, ignored by mmseg
Box = Tuple[int, int, int, int]  # 0-based, end-exclusive (x0, y0, x1, y1)


def voc_colormap(n: int = 256) -> np.ndarray:
    """The official VOC label colour map (``labelcolormap.m`` of the devkit), ``(n, 3)``."""
    cmap = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            # the bits of the label are spread over the high bits of r, g and b
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def _draw(rng: np.random.Generator, size: int, names: Sequence[str]
          ) -> Tuple[np.ndarray, List[Tuple[str, Box]]]:
    """Grey image with one rectangle per name: the first near the top-left corner, the next
    near the bottom-right (later ones occlude earlier ones, like real overlapping objects).

    Sides exceed ``size // 2`` so that, at 64 px, objects pass ``voc0712.py``'s
    ``bbox_min_size=32`` filter instead of all becoming ignored.
    """
    image = np.full((size, size, 3), 128, np.uint8)
    objects = []
    for k, name in enumerate(names):
        w, h = (int(v) for v in rng.integers(size // 2 + 1, size * 5 // 8 + 1, size=2))
        if k % 2 == 0:
            x0, y0 = (int(v) for v in rng.integers(0, size // 16 + 1, size=2))
        else:
            dx, dy = (int(v) for v in rng.integers(0, size // 16 + 1, size=2))
            x0, y0 = size - w - dx, size - h - dy
        x1, y1 = x0 + w, y0 + h
        image[y0:y1, x0:x1] = COLOURS[name]
        objects.append((name, (x0, y0, x1, y1)))
    # mild noise so the JPEGs are not perfectly flat
    noise = rng.integers(-6, 7, size=image.shape)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8), objects


def _sub(parent: ET.Element, tag: str, text=None) -> ET.Element:
    node = ET.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


def _voc_xml(year: str, img_id: str, size: int, objects: Sequence[Tuple[str, Box, int]],
             rng: np.random.Generator) -> ET.ElementTree:
    """An ``Annotations/<id>.xml`` as the devkit ships it (1-based inclusive bndbox)."""
    root = ET.Element('annotation')
    _sub(root, 'folder', year)
    _sub(root, 'filename', f'{img_id}.jpg')
    source = _sub(root, 'source')
    _sub(source, 'database', f'The {year} Database')
    _sub(source, 'annotation', f'PASCAL {year}')
    _sub(source, 'image', 'flickr')
    size_node = _sub(root, 'size')
    for tag, value in (('width', size), ('height', size), ('depth', 3)):
        _sub(size_node, tag, value)
    _sub(root, 'segmented', 0)
    for name, (x0, y0, x1, y1), difficult in objects:
        obj = _sub(root, 'object')
        _sub(obj, 'name', name)
        _sub(obj, 'pose', POSES[int(rng.integers(len(POSES)))])
        truncated = int(x0 == 0 or y0 == 0 or x1 == size or y1 == size)
        _sub(obj, 'truncated', truncated)
        _sub(obj, 'difficult', difficult)
        box = _sub(obj, 'bndbox')
        # pixel (x0, y0) is (x0 + 1, y0 + 1) in VOC's 1-based inclusive convention, the last
        # covered pixel (x1 - 1) is x1; XMLDataset subtracts the 1 again on loading
        for tag, value in (('xmin', x0 + 1), ('ymin', y0 + 1), ('xmax', x1), ('ymax', y1)):
            _sub(box, tag, value)
    ET.indent(root, space='\t')
    return ET.ElementTree(root)


def _write_list(path: str, ids: Sequence[str]) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.writelines(f'{i}\n' for i in ids)


def write_voc_detection(root: str, num_trainval: int = 4, num_test: int = 2, size: int = 64,
                        seed: int = 0) -> str:
    """Write ``root/VOCdevkit/VOC{2007,2012}`` detection data; returns the VOCdevkit path.

    Every image has two full-size objects (of two of the drawn classes); every other image
    adds a small ``difficult`` one, which VOC evaluation ignores.

    Args:
        root: Folder that receives ``VOCdevkit``.
        num_trainval: Images per year in ``trainval`` (the first half is ``train``).
        num_test: VOC2007 ``test`` images.
        size: Side of the square images.
        seed: Seed of the layout and colours' noise.

    Returns:
        The ``VOCdevkit`` folder (the ``data_root`` of ``voc0712.py``).
    """
    rng = np.random.default_rng(seed)
    devkit = osp.join(root, 'VOCdevkit')
    names = list(COLOURS)
    for year, splits in (('VOC2007', dict(trainval=num_trainval, test=num_test)),
                         ('VOC2012', dict(trainval=num_trainval))):
        base = osp.join(devkit, year)
        for sub in ('Annotations', 'JPEGImages'):
            os.makedirs(osp.join(base, sub), exist_ok=True)
        ids: Dict[str, List[str]] = {}
        counter = 0
        for split, count in splits.items():
            ids[split] = []
            for _ in range(count):
                counter += 1
                # id styles of the real sets: '000005' (2007) and '2008_000008' (2012)
                img_id = f'{counter:06d}' if year == 'VOC2007' else f'2008_{counter:06d}'
                pair = [names[(counter + j) % len(names)] for j in range(2)]
                image, objects = _draw(rng, size, pair)
                labelled = [(n, b, 0) for n, b in objects]
                if counter % 2 == 0:
                    # a small object: below bbox_min_size and marked difficult, as VOC does
                    s = size // 8
                    x0 = y0 = size // 2 - s // 2
                    name = names[(counter + 2) % len(names)]
                    image[y0:y0 + s, x0:x0 + s] = COLOURS[name]
                    labelled.append((name, (x0, y0, x0 + s, y0 + s), 1))
                Image.fromarray(image).save(osp.join(base, 'JPEGImages', f'{img_id}.jpg'),
                                            quality=95)
                _voc_xml(year, img_id, size, labelled, rng).write(
                    osp.join(base, 'Annotations', f'{img_id}.xml'))
                ids[split].append(img_id)
        half = len(ids['trainval']) // 2
        lists = dict(train=ids['trainval'][:half], val=ids['trainval'][half:], **ids)
        for split, split_ids in lists.items():
            _write_list(osp.join(base, 'ImageSets', 'Main', f'{split}.txt'), split_ids)
    return devkit


def _void_border(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels on either side of a label change, grown by ``width - 1`` pixels: VOC's
    hand-drawn void outline around objects."""
    edge = np.zeros(mask.shape, bool)
    for _ in range(width):
        # one 4-neighbour step: a pixel joins when it differs from (or touches) a neighbour
        grown = edge.copy()
        for a, b in (((slice(None, -1),), (slice(1, None),)),
                     ((slice(None), slice(None, -1)), (slice(None), slice(1, None)))):
            change = (mask[a] != mask[b]) | edge[a] | edge[b]
            grown[a] |= change
            grown[b] |= change
        edge = grown
    return edge


def write_voc_segmentation(root: str, num_train: int = 4, num_val: int = 2, num_aug: int = 4,
                           size: int = 64, seed: int = 0, border: int = 1) -> str:
    """Write ``root/VOCdevkit/VOC2012`` segmentation data with the SBD augmentation.

    Args:
        root: Folder that receives ``VOCdevkit``.
        num_train: Images of the original ``train`` list (palette masks, SBD masks too).
        num_val: Images of ``val`` (palette masks only, as SBD's val overlap is excluded).
        num_aug: SBD-only images (``aug.txt``: grayscale masks only).
        size: Side of the square images.
        seed: Seed of the layout.
        border: Width of the void (255) outline drawn around objects in the palette masks.

    Returns:
        The ``VOC2012`` folder (the ``data_root`` of ``pascal_voc12_aug.py``).
    """
    rng = np.random.default_rng(seed)
    base = osp.join(root, 'VOCdevkit', 'VOC2012')
    for sub in ('JPEGImages', 'SegmentationClass', 'SegmentationClassAug'):
        os.makedirs(osp.join(base, sub), exist_ok=True)
    palette = voc_colormap().reshape(-1).tolist()
    names = list(COLOURS)
    ids: Dict[str, List[str]] = {}
    # real ids: train/val from the 2007-2011 VOC segmentation set, aug from SBD
    for split, count, year in (('train', num_train, 2007), ('val', num_val, 2010),
                               ('aug', num_aug, 2011)):
        ids[split] = []
        for i in range(count):
            img_id = f'{year}_{i + 1:06d}'
            pair = [names[(i + j) % len(names)] for j in range(2)]
            image, objects = _draw(rng, size, pair)
            label = np.zeros((size, size), np.uint8)
            for name, (x0, y0, x1, y1) in objects:
                label[y0:y1, x0:x1] = SEG_CLASSES.index(name)
            Image.fromarray(image).save(osp.join(base, 'JPEGImages', f'{img_id}.jpg'),
                                        quality=95)
            if split in ('train', 'aug'):
                # SBD masks: plain class indices, no void outline
                Image.fromarray(label).save(
                    osp.join(base, 'SegmentationClassAug', f'{img_id}.png'))
            if split in ('train', 'val'):
                voc = label.copy()
                voc[_void_border(label, border)] = VOID
                png = Image.fromarray(voc)
                png.putpalette(palette)  # turns the 'L' image into a 'P' (palette) PNG
                png.save(osp.join(base, 'SegmentationClass', f'{img_id}.png'))
            ids[split].append(img_id)
    lists = dict(ids, trainval=ids['train'] + ids['val'], trainaug=ids['train'] + ids['aug'])
    for split, split_ids in lists.items():
        _write_list(osp.join(base, 'ImageSets', 'Segmentation', f'{split}.txt'), split_ids)
    return base
