"""LN-tune: train the affine parameters of the backbone's normalisation layers."""
from typing import Set

import torch.nn as nn

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod

_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


@PETL_METHODS.register_module(name=['LNTune', 'LN-Tune', 'NormTuning'])
class LNTune(BasePETLMethod):
    """Train gamma and beta of every norm layer (selected by type, not by name).

    ViT-B/16: 38,400 (norm1, norm2 of 12 blocks and the final norm); Swin-B: 0.06M.

    Examples:
        >>> petl = dict(type='LNTune')
    """

    def trainable_base_params(self, anatomy: Anatomy) -> Set[str]:
        return {f'{path}.{n}' if path else n
                for path, mod in anatomy.backbone.named_modules() if isinstance(mod, _NORMS)
                for n, _ in mod.named_parameters(recurse=False)}
