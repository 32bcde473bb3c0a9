"""mmpretrain's one-hot targets without a graph break, so a compiled train_step spans the loss.

``mmpretrain.models.losses.utils.convert_to_one_hot`` (mmpretrain 1.2.0) checks its targets with
``assert torch.max(targets).item() < classes``. ``.item()`` is data-dependent Python: dynamo
cannot trace it, so ``LabelSmoothLoss`` (every VTAB config: ``label_smooth_val=0.1,
mode='original'``), ``FocalLoss`` and ``AsymmetricLoss`` with class-index targets break the graph
of a compiled ``train_step`` (mmengine's ``compile=True``) at the loss: 7 breaks, 8 graphs, for
the tiny ViT classifier's ``mode='loss'`` forward.

The replacement runs mmpretrain's own function unchanged in eager mode (same value, same
``AssertionError``). Only while dynamo traces it does it keep the check as a tensor assertion
(``torch._assert_async``: no host sync, raised where the graph runs) before the same
``F.one_hot``, so the loss and its gradient are the same numbers either way. It is scoped: only
the name the three loss modules look up is rebound; ``mmpretrain.models.losses.utils`` and the
package's public ``convert_to_one_hot`` stay mmpretrain's.
"""
import functools
import importlib
from types import ModuleType
from typing import Callable, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.losses import utils as loss_utils

_MARK = '__vpetl_traceable_one_hot__'
# the loss modules that bind ``convert_to_one_hot`` by name (mmpretrain@v1.2.0,
# mmpretrain/models/losses/{label_smooth_loss,focal_loss,asymmetric_loss}.py)
# (imported as modules: the package re-exports functions under two of these names)
_LOSS_MODULES: Tuple[ModuleType, ...] = tuple(
    importlib.import_module(f'mmpretrain.models.losses.{name}')
    for name in ('label_smooth_loss', 'focal_loss', 'asymmetric_loss'))
# mmpretrain's own message (mmpretrain/models/losses/utils.py, convert_to_one_hot)
_MESSAGE = 'Class Index must be less than number of classes'


def _traceable(original: Callable) -> Callable:

    @functools.wraps(original)
    def convert_to_one_hot(targets: torch.Tensor, classes: int) -> torch.Tensor:
        if not torch.compiler.is_compiling():
            return original(targets, classes)
        torch._assert_async(torch.max(targets) < classes, _MESSAGE)
        return F.one_hot(targets.long().squeeze(-1), num_classes=classes)

    setattr(convert_to_one_hot, _MARK, True)
    return convert_to_one_hot


def install_traceable_one_hot() -> bool:
    """Let mmpretrain's one-hot losses trace without a graph break from now on.

    Idempotent; applies to losses built before the call too (the name is looked up per call).

    Returns:
        True if this call installed it, False if it was already in place.

    Examples:
        >>> install_traceable_one_hot()  # vpetl_mm's import already did it
        False
        >>> from mmpretrain.models.losses import LabelSmoothLoss
        >>> loss = LabelSmoothLoss(0.1, num_classes=3)
        >>> round(float(loss(torch.zeros(2, 3), torch.tensor([0, 2]))), 4)
        1.0986
    """
    installed = False
    for module in _LOSS_MODULES:
        if getattr(module.convert_to_one_hot, _MARK, False):
            continue
        module.convert_to_one_hot = _traceable(loss_utils.convert_to_one_hot)
        installed = True
    return installed
