"""Full fine-tuning: the whole backbone trains (the reference every PETL method is compared to)."""
from ..registry import PETL_METHODS
from .base import BasePETLMethod


@PETL_METHODS.register_module(name=['Full', 'FullFinetune'])
class Full(BasePETLMethod):
    """Train every backbone parameter (85.8M on ViT-B/16, head excluded).

    Examples:
        >>> petl = dict(type='Full')
    """
    TRAINS_ALL = True
