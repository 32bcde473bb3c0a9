"""Pre-head features of a trained classifier, their t-SNE, and a side-by-side figure."""
import inspect
import os.path as osp
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .loading import gt_labels


def _pre_logits(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The features the head's last layer receives, ``(B, D)``."""
    extract = getattr(model, 'extract_feat', None)
    if extract is None:
        raise ValueError(f'{type(model).__name__} has no extract_feat(): pre-head features are '
                         'defined for mmpretrain-style classifiers.')
    head = getattr(model, 'head', None)
    if 'stage' in inspect.signature(extract).parameters and hasattr(head, 'pre_logits'):
        feats = extract(inputs, stage='pre_logits')  # neck output through head.pre_logits
    else:
        feats = extract(inputs)
        if hasattr(head, 'pre_logits'):
            feats = head.pre_logits(feats)
    if isinstance(feats, (tuple, list)):
        feats = feats[-1]
    if feats.dim() > 2:  # a feature map: global average pool, as the usual heads do
        feats = feats.flatten(2).mean(dim=2)
    return feats


@torch.no_grad()
def extract_features(model: nn.Module, batches: Iterable[dict]
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """Pre-head features and labels of every sample.

    The features are what the classification head's final layer receives: in mmpretrain,
    ``model.extract_feat(inputs)`` (backbone, then neck) passed through ``head.pre_logits``
    (e.g. the CLS token, or the hidden layer of a ViT head that has one).

    Args:
        model: A classifier in eval mode.
        batches: Collated batches (``inputs`` / ``data_samples`` lists) with ground truth.

    Returns:
        ``features (N, D)`` float32 and ``labels (N, )`` int64.
    """
    feats: List[np.ndarray] = []
    labels: List[int] = []
    for batch in batches:
        data = model.data_preprocessor(batch, False)
        feats.append(_pre_logits(model, data['inputs']).float().cpu().numpy())
        batch_labels = gt_labels(batch)
        if any(label is None for label in batch_labels):
            raise ValueError('A sample has no ground-truth label: t-SNE colours points by class, '
                             'so use a split with labels.')
        labels += batch_labels
    if not feats:
        raise ValueError('No samples: the split is empty.')
    return np.concatenate(feats), np.asarray(labels, dtype=np.int64)


def tsne_embed(features: np.ndarray, random_state: int = 0, perplexity: float = 30.
               ) -> np.ndarray:
    """2-D t-SNE (scikit-learn) of ``features (N, D)``.

    ``perplexity`` is clipped to ``N - 1`` (scikit-learn needs it below the sample count);
    initialisation is PCA and the learning rate ``'auto'``, so a seed gives one result.

    Returns:
        ``(N, 2)`` float32.
    """
    from sklearn.manifold import TSNE
    n = len(features)
    if n < 3:
        raise ValueError(f't-SNE needs at least 3 samples, got {n}.')
    tsne = TSNE(n_components=2, perplexity=float(min(perplexity, n - 1)), init='pca',
                learning_rate='auto', random_state=random_state)
    return tsne.fit_transform(np.asarray(features, dtype=np.float32)).astype(np.float32)


def _colours(num: int) -> np.ndarray:
    import matplotlib
    cmap = matplotlib.colormaps['tab10' if num <= 10 else 'tab20' if num <= 20 else 'turbo']
    if num <= 20:
        return np.asarray([cmap(i) for i in range(num)])
    return cmap(np.linspace(0, 1, num))


def plot_embeddings(embeddings: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                    names: Sequence[str], out: str,
                    class_names: Optional[Sequence[str]] = None) -> List[str]:
    """One scatter panel per method, points coloured by class; writes PNG and SVG.

    Args:
        embeddings: Per method ``(N_i, 2)``.
        labels: Per method ``(N_i, )`` class indices.
        names: Panel titles.
        out: Output path; the PNG and SVG are written next to each other (``.png``/``.svg``).
        class_names: Legend names of the classes (default: the indices).

    Returns:
        The written paths.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    if not len(embeddings) == len(labels) == len(names):
        raise ValueError(f'{len(embeddings)} embeddings, {len(labels)} label sets and '
                         f'{len(names)} names: give one of each per method.')
    num_classes = int(max(int(np.max(lab)) for lab in labels)) + 1
    colours = _colours(num_classes)
    panels = len(embeddings)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 4.4), squeeze=False)
    for ax, emb, lab, name in zip(axes[0], embeddings, labels, names):
        for c in np.unique(lab):
            pts = emb[lab == c]
            label = str(class_names[c]) if class_names is not None else str(int(c))
            ax.scatter(pts[:, 0], pts[:, 1], s=10, color=colours[int(c)], label=label)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    if num_classes <= 20:
        handles, legend = axes[0][-1].get_legend_handles_labels()
        axes[0][-1].legend(handles, legend, loc='center left', bbox_to_anchor=(1.0, 0.5),
                           fontsize=7, title='class')
    fig.tight_layout()
    stem = osp.splitext(out)[0]
    paths = [f'{stem}.png', f'{stem}.svg']
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches='tight')
    plt.close(fig)
    return paths
