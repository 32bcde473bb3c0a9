"""Attention maps of a trained model overlaid on its input images (matplotlib PNGs)."""
import json
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import AttentionRecorder
from .loading import display_images, gt_labels


def upsample(grid_map: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Bilinear upsampling of an ``(h, w)`` map to ``size = (H, W)``."""
    t = torch.as_tensor(np.asarray(grid_map, dtype=np.float32))[None, None]
    return F.interpolate(t, size=tuple(size), mode='bilinear', align_corners=False)[0, 0].numpy()


def _normalise(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def overlay_figure(image: np.ndarray, maps: Dict[str, np.ndarray], out: str,
                   title: str = '', alpha: float = 0.5) -> None:
    """One figure: the image, then each map upsampled, min-max scaled and overlaid on it.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        maps: Panel title -> ``(h, w)`` map on the patch grid.
        out: PNG path.
        title: Figure title.
        alpha: Opacity of the heat map.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = 1 + len(maps)
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 3.6), squeeze=False)
    axes = axes[0]
    axes[0].imshow(image)
    axes[0].set_title('image')
    for ax, (name, grid_map) in zip(axes[1:], maps.items()):
        ax.imshow(image)
        ax.imshow(_normalise(upsample(grid_map, image.shape[:2])), cmap='jet', alpha=alpha,
                  vmin=0., vmax=1.)
        ax.set_title(name)
    for ax in axes:
        ax.axis('off')
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _stem(sample, index: int) -> str:
    path = sample.get('img_path', None) if hasattr(sample, 'get') else None
    name = osp.splitext(osp.basename(path))[0] if path else 'image'
    return f'{index:04d}_' + ''.join(c if c.isalnum() or c in '-_' else '_' for c in name)


@torch.no_grad()
def save_attention_maps(model: nn.Module, batches: Iterable[dict], out_dir: str,
                        layer: int = -1, rollout: bool = True,
                        class_names: Optional[Sequence[str]] = None) -> List[dict]:
    """Run batches through ``model`` and write, per image, a figure and the raw maps.

    For image ``k`` named ``<stem>``: ``<k>_<stem>.png`` (image, the CLS-to-patch attention of
    block ``layer`` and, with ``rollout``, the attention rollout), ``<k>_<stem>_layer<i>.npy``
    and ``<k>_<stem>_rollout.npy`` (float32, on the patch grid); ``index.json`` lists them.

    Args:
        model: A classifier holding a sequence-layout backbone (see :class:`AttentionRecorder`).
        batches: Collated batches (``inputs`` / ``data_samples`` lists) from the test pipeline.
        out_dir: Output folder (created).
        layer: Block whose attention is shown (Python indexing: -1 is the last block).
        rollout: Also compute and show the rollout over all blocks.
        class_names: Names of the classes, for the titles.

    Returns:
        The ``index.json`` records.
    """
    os.makedirs(out_dir, exist_ok=True)
    records: List[dict] = []
    recorder = AttentionRecorder(model)
    depth = len(recorder.anatomy.blocks)
    if not -depth <= layer < depth:
        raise ValueError(f'--layer {layer} is out of range for {depth} blocks.')
    block = layer % depth
    for batch in batches:
        images = display_images(model, batch)
        data = model.data_preprocessor(batch, False)
        with recorder:
            samples = model(**data, mode='predict')
        if len(recorder.grid) != 2:
            raise ValueError(f'The patch grid {recorder.grid} is not 2-D: overlays need images '
                             '(use AttentionRecorder directly for video backbones).')
        maps = {f'layer{block}': recorder.last_map(block).float().numpy()}
        if rollout:
            maps['rollout'] = recorder.rollout_map().float().numpy()
        for i, (image, sample, gt) in enumerate(zip(images, samples, gt_labels(batch))):
            stem = _stem(batch['data_samples'][i], len(records))
            files = {}
            for name, values in maps.items():
                files[name] = f'{stem}_{name}.npy'
                np.save(osp.join(out_dir, files[name]), values[i].astype(np.float32))
            pred = int(sample.pred_label.flatten()[0]) if 'pred_label' in sample else None
            score = float(sample.pred_score.max()) if 'pred_score' in sample else None
            named = (lambda c: str(c) if c is None or not class_names else class_names[c])
            title = f'pred {named(pred)}' + (f' ({score:.2f})' if score is not None else '')
            if gt is not None:
                title += f', true {named(gt)}'
            panels = {f'block {block} CLS attention' if name.startswith('layer')
                      else 'attention rollout': values[i] for name, values in maps.items()}
            overlay_figure(image, panels, osp.join(out_dir, f'{stem}.png'), title)
            records.append(dict(image=batch['data_samples'][i].get('img_path', None),
                                figure=f'{stem}.png', maps=files, grid=list(recorder.grid),
                                pred=pred, score=score, gt=gt))
    with open(osp.join(out_dir, 'index.json'), 'w') as f:
        json.dump(records, f, indent=2)
    return records
