"""Host graph breaks that stop ``torch.compile(fullgraph=True)``, removed in our own code.

mmpretrain's ``VisionTransformer`` (and other OpenMMLab backbones) draw the per-block drop-path
rates with ``np.linspace``, so mmcv's ``DropPath`` keeps a ``numpy.float64`` as ``drop_prob``.
``drop_path`` branches on ``drop_prob == 0.``; dynamo cannot fold a numpy scalar into a Python
bool, so every block's drop path becomes a graph break (8 in a 3-block ViT in training mode).
We store ``drop_prob`` as a Python ``float`` instead: the same IEEE double, so the maths and
the RNG draws of ``drop_path`` are unchanged; only its type differs.
"""
import functools
import numbers

import torch.nn as nn
from mmcv.cnn.bricks.drop import DropPath

_MARK = '__vpetl_float_drop_prob__'


def _as_float(value):
    # np.float64 and 0-d arrays are numbers.Real / have .item(); tensors are left alone (a
    # tensor drop_prob is not what mmcv documents, and converting one would sync a device)
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, float)):
        return float(value)
    if type(value).__module__ == 'numpy' and getattr(value, 'ndim', None) == 0:
        return float(value)
    return value


def install_drop_path_float() -> bool:
    """Make mmcv's ``DropPath`` keep ``drop_prob`` as a Python float from now on.

    Idempotent. Instances built before the call are fixed with :func:`float_drop_probs`.

    Returns:
        True if the patch was installed by this call, False if it was already in place.

    Examples:
        >>> import numpy as np
        >>> install_drop_path_float()  # vpetl_mm's import already did it
        False
        >>> type(DropPath(np.linspace(0, 0.1, 3)[1]).drop_prob)
        <class 'float'>
    """
    if getattr(DropPath.__init__, _MARK, False):
        return False
    original = DropPath.__init__

    @functools.wraps(original)
    def __init__(self, drop_prob: float = 0.1) -> None:
        original(self, _as_float(drop_prob))

    setattr(__init__, _MARK, True)
    DropPath.__init__ = __init__
    return True


def float_drop_probs(model: nn.Module) -> int:
    """Convert the numpy ``drop_prob`` of every mmcv ``DropPath`` in ``model`` to a float.

    For models built before :func:`install_drop_path_float` ran.

    Args:
        model: Any module.

    Returns:
        The number of ``DropPath`` modules whose ``drop_prob`` was converted.

    Examples:
        >>> import numpy as np
        >>> drop = nn.Sequential(DropPath())
        >>> drop[0].drop_prob = np.float64(0.1)
        >>> float_drop_probs(drop), type(drop[0].drop_prob)
        (1, <class 'float'>)
    """
    count = 0
    for module in model.modules():
        if isinstance(module, DropPath):
            value = _as_float(module.drop_prob)
            if value is not module.drop_prob:
                module.drop_prob = value
                count += 1
    return count
