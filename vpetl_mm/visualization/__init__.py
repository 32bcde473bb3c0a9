"""Visualisation of trained PETL models: attention maps and t-SNE of pre-head features.

The command-line tools are ``tools/visualize/attention_map.py`` and ``tools/visualize/tsne.py``
(docs/visualize.md). matplotlib and scikit-learn are needed only here (``pip install
-e .[demo]``), so they are imported by the functions that use them.
"""
from .attention import AttentionRecorder, BlockAttention, attention_rollout, patch_map
from .features import extract_features, plot_embeddings, tsne_embed
from .loading import image_batches, limited, load_trained_model, split_loader
from .overlay import overlay_figure, save_attention_maps, upsample

__all__ = ['AttentionRecorder', 'BlockAttention', 'attention_rollout', 'patch_map',
           'extract_features', 'plot_embeddings', 'tsne_embed', 'image_batches', 'limited',
           'load_trained_model', 'split_loader', 'overlay_figure', 'save_attention_maps',
           'upsample']
