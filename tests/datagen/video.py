"""Write a tiny video recognition dataset: real mp4 files and both annotation formats.

Layout::

    <root>/videos/{train,val}/0000.mp4 ...   a bright square moving across a dark background
    <root>/{train,val}_list.txt             mmaction2 list: "train/0000.mp4 <label>" (relative
                                            to <root>/videos, i.e. data_prefix=dict(video=...))
    <root>/{train,val}.csv                  V-PETL CSV: "/abs/<root>/videos/train/0000.mp4,<label>"

The label is the direction of motion (0: left to right, 1: right to left, 2: top to bottom,
3: bottom to top), so it can be read off the decoded frames and a model can learn it.
"""
import os
import os.path as osp
from typing import Dict, List

import cv2
import numpy as np

DIRECTIONS = ('left_to_right', 'right_to_left', 'top_to_bottom', 'bottom_to_top')
BACKGROUND, FOREGROUND = 16, 240
FPS = 8


def make_frames(label: int, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(frames, size, size, 3)`` uint8 BGR clip: a square moving in direction ``label``."""
    side = max(size // 4, 2)
    span = size - side
    across = rng.integers(0, span + 1)  # position on the axis the square does not move along
    margin = max(span // 8, 1)
    start, end = rng.integers(0, margin + 1), span - rng.integers(0, margin + 1)
    track = np.rint(np.linspace(start, end, frames)).astype(int)
    if label in (1, 3):
        track = track[::-1]
    clip = np.full((frames, size, size, 3), BACKGROUND, dtype=np.uint8)
    for t, pos in enumerate(track):
        y, x = (across, pos) if label in (0, 1) else (pos, across)
        clip[t, y:y + side, x:x + side] = FOREGROUND
    return clip


def write_mp4(path: str, clip: np.ndarray, fps: int = FPS) -> None:
    """Encode a ``(T, H, W, 3)`` BGR uint8 clip with OpenCV's MPEG-4 Part 2 ('mp4v') encoder."""
    height, width = clip.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f'cv2.VideoWriter cannot write {path} with the mp4v codec.')
    try:
        for frame in clip:
            writer.write(np.ascontiguousarray(frame))
    finally:
        writer.release()


def make_video_dataset(root: str, num_train: int = 8, num_val: int = 4, frames: int = 16,
                       size: int = 32, num_classes: int = 2, seed: int = 0) -> Dict:
    """Write the dataset described in the module docstring.

    Args:
        root: Folder to create.
        num_train: Number of training clips (labels cycle through the classes).
        num_val: Number of validation clips.
        frames: Frames per clip.
        size: Frame height and width (even, for the encoder).
        num_classes: 1 to 4 motion directions.
        seed: Random seed (square positions); the output is the same for the same arguments.

    Returns:
        ``root``, ``video_dir`` (the ``data_prefix['video']`` of the list files),
        ``train_list``, ``val_list``, ``train_csv``, ``val_csv`` (paths),
        ``labels`` (split -> list of labels), ``videos`` (split -> list of absolute mp4 paths),
        ``num_classes``, ``frames`` and ``size``.
    """
    if not 1 <= num_classes <= len(DIRECTIONS):
        raise ValueError(f'num_classes must be in [1, {len(DIRECTIONS)}], got {num_classes}.')
    if size % 2 or size < 8:
        raise ValueError(f'size must be even and >= 8, got {size}.')
    root = osp.abspath(root)
    video_dir = osp.join(root, 'videos')
    rng = np.random.default_rng(seed)
    out: Dict = dict(root=root, video_dir=video_dir, labels={}, videos={},
                     num_classes=num_classes, frames=frames, size=size)
    for split, count in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(video_dir, split), exist_ok=True)
        labels: List[int] = [n % num_classes for n in range(count)]
        list_lines, csv_lines, videos = [], [], []
        for n, label in enumerate(labels):
            rel = f'{split}/{n:04d}.mp4'
            path = osp.join(video_dir, rel)
            write_mp4(path, make_frames(label, frames, size, rng))
            list_lines.append(f'{rel} {label}\n')
            csv_lines.append(f'{path},{label}\n')
            videos.append(path)
        out[f'{split}_list'] = osp.join(root, f'{split}_list.txt')
        out[f'{split}_csv'] = osp.join(root, f'{split}.csv')
        with open(out[f'{split}_list'], 'w') as f:
            f.writelines(list_lines)
        with open(out[f'{split}_csv'], 'w') as f:
            f.writelines(csv_lines)
        out['labels'][split], out['videos'][split] = labels, videos
    return out
