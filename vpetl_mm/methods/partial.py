"""Partial-k: fine-tune only the last ``k`` transformer blocks."""
from typing import Set

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod, block_params


@PETL_METHODS.register_module(name=['Partial', 'PartialK'])
class Partial(BasePETLMethod):
    """Train the last ``k`` blocks (in forward order over all stages).

    Partial-1 on Swin-B trains ``stages.3.blocks.1``: 12,601,632 parameters (published 12.60M);
    on Swin-L 28.34M. Output norms and heads outside the blocks are not included.

    Args:
        k: Number of trailing blocks to train. Defaults to 1.

    Examples:
        >>> petl = dict(type='Partial', k=1)
    """
    DEFAULTS = dict(k=1)

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        if not 1 <= self.k <= len(anatomy.blocks):
            raise ValueError(f'Partial k={self.k} must be in [1, {len(anatomy.blocks)}] (the '
                             'backbone has that many blocks). Use Full to train all of them.')

    def trainable_base_params(self, anatomy: Anatomy) -> Set[str]:
        return block_params(anatomy, anatomy.blocks[-self.k:])
