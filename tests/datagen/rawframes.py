"""Write a tiny mmaction2 RAWFRAMES dataset in the real on-disk format.

Layout (what mmaction2's ``RawframeDataset`` reads with its defaults,
``filename_tmpl='img_{:05}.jpg'``, ``start_index=1``)::

    <root>/rawframes/<video_name>/img_00001.jpg ... img_<total_frames>.jpg
    <root>/<ann_name>            lines: "<video_name> <total_frames> <label>"

Each class gets its own colour and a square moving in its own direction, so the clips are
separable (a model can learn them) yet need no video decoding.
"""
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np
from PIL import Image

# class -> (base RGB colour, square velocity (dy, dx) in pixels per frame)
_PALETTE = [((200, 40, 40), (0, 1)), ((40, 200, 40), (1, 0)), ((40, 40, 200), (0, -1)),
            ((200, 200, 40), (-1, 0)), ((200, 40, 200), (1, 1)), ((40, 200, 200), (-1, -1))]


def make_clip(label: int, num_frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(T, H, W, 3)`` uint8 clip whose colour and motion depend on ``label``."""
    colour, (vy, vx) = _PALETTE[label % len(_PALETTE)]
    side = max(size // 4, 2)
    y0, x0 = rng.integers(0, size - side, size=2)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for t in range(num_frames):
        noise = rng.integers(0, 30, size=(size, size, 3))
        frame = np.clip(np.array(colour) // 3 + noise, 0, 255).astype(np.uint8)
        y, x = (y0 + vy * t) % (size - side), (x0 + vx * t) % (size - side)
        frame[y:y + side, x:x + side] = colour
        frames[t] = frame
    return frames


def write_rawframes(root: str, splits: Dict[str, Sequence[int]], num_frames: int = 8,
                    size: int = 32, seed: int = 0, filename_tmpl: str = 'img_{:05}.jpg',
                    frame_dir: str = 'rawframes') -> Dict[str, str]:
    """Write one clip per label listed in ``splits`` and one annotation file per split.

    Args:
        root: Dataset folder to create.
        splits: Split name -> labels of its clips, e.g. ``{'train': [0, 1, 0, 1],
            'val': [0, 1]}``; writes ``<root>/<split>_list_rawframes.txt``.
        num_frames: Frames per clip (``total_frames`` in the list file).
        size: Frame height and width.
        seed: Random seed (clip positions and noise).
        filename_tmpl: Frame file name template; frames are numbered from 1.
        frame_dir: Folder under ``root`` holding one sub-folder per video.

    Returns:
        Split name -> path of its annotation file. The frames folder is
        ``<root>/<frame_dir>`` (``data_prefix=dict(img=...)`` for ``RawframeDataset``).
    """
    rng = np.random.default_rng(seed)
    ann_files = {}
    for split, labels in splits.items():
        lines = []
        for n, label in enumerate(labels):
            video = f'{split}_video_{n:04d}'
            folder = osp.join(root, frame_dir, video)
            os.makedirs(folder, exist_ok=True)
            for t, frame in enumerate(make_clip(int(label), num_frames, size, rng), 1):
                Image.fromarray(frame).save(osp.join(folder, filename_tmpl.format(t)),
                                            quality=95)
            lines.append(f'{video} {num_frames} {int(label)}\n')
        ann_files[split] = osp.join(root, f'{split}_list_rawframes.txt')
        with open(ann_files[split], 'w') as f:
            f.writelines(lines)
    return ann_files
