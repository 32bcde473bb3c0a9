"""Build a config's model for inspection (counting, optimizer groups): no weights, no data.

``tools/analysis/params.py`` and ``tools/analysis/recipe.py`` share this path: the config is
read (``--cfg-options`` merged), its default scope set, and the model built with the random
fills skipped and without ``init_weights`` -- so no ``init_cfg`` Pretrained file is read or
downloaded, and a checkpoint that does not exist is no error.
"""
import contextlib
from typing import Iterator, Optional, Union

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

_RANDOM_FILLS = ('uniform_', 'normal_')


@contextlib.contextmanager
def shapes_only() -> Iterator[None]:
    """Skip random weight initialisation while building: counting needs shapes, not values.

    Filling a Swin-L detector's ~250M parameters with random numbers is ~95% of its build time
    (about 2 s, mostly first-touch page faults); with the fills skipped the memory is never
    touched. ``torch.nn.init``'s random initialisers all go through these two in-place methods.
    The built model holds uninitialised values: use it for counting only.

    Examples:
        >>> with shapes_only():
        ...     layer = torch.nn.Linear(4, 2)
        >>> layer.weight.shape
        torch.Size([2, 4])
    """
    saved = {name: getattr(torch.Tensor, name) for name in _RANDOM_FILLS}
    try:
        for name in _RANDOM_FILLS:
            setattr(torch.Tensor, name, lambda self, *args, **kwargs: self)
        yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


def load_config(config: Union[str, Config], cfg_options: Optional[dict] = None) -> Config:
    """A config file (or a ``Config``, copied) with ``cfg_options`` merged.

    Examples:
        >>> cfg = load_config('configs/lora/vit-b_vtab-cifar100.py',
        ...                   {'train_dataloader.batch_size': 32})
        >>> cfg.train_dataloader.batch_size
        32
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config.copy()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_model_shapes(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` in the config's default scope, shapes only (see :func:`shapes_only`).

    Examples:
        >>> model = build_model_shapes(load_config('configs/lora/vit-b_vtab-cifar100.py'))
        >>> type(model).__name__
        'ImageClassifier'
    """
    if 'model' not in cfg:
        raise ValueError('The config has no `model`: pass a complete config (a file under '
                         'configs/<method>/, not a _base_ fragment).')
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    with shapes_only():
        return MODELS.build(cfg.model)  # no init_weights: nothing is loaded or downloaded
