"""Frozen backbone: linear probing for classification, frozen-backbone baselines elsewhere."""
from ..registry import PETL_METHODS
from .base import BasePETLMethod


@PETL_METHODS.register_module(name=['Frozen', 'LinearProbe'])
class Frozen(BasePETLMethod):
    """Train no backbone parameter; the head (and neck) train as the config says.

    Published ``Params`` is 0 for this method (head excluded).

    Examples:
        >>> petl = dict(type='LinearProbe')
    """
