"""ATen operator calls per training step: the kernel launches a GPU pays, counted on any device.

:class:`OpCounter` is a ``TorchDispatchMode`` that counts every ATen operator reaching the
dispatcher below autograd (forward, backward and the optimizer's own ops alike). On a GPU at
small batch sizes each call is at least one kernel launch (a few microseconds of CPU time
each), so this count is the launch-bound cost of a training step, independent of the device.
:func:`count_train_step` counts one ``model.train_step`` after a warm-up step (so lazily
created optimizer state is not counted as per-step work).
"""
import collections
from typing import Any, Dict

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# Shape-only ops that never launch a kernel: listed separately so the launch count excludes them.
VIEW_OPS = frozenset({
    'aten.view', 'aten._unsafe_view', 'aten.reshape', 'aten.t', 'aten.transpose', 'aten.permute',
    'aten.expand', 'aten.slice', 'aten.select', 'aten.unsqueeze', 'aten.squeeze',
    'aten.as_strided', 'aten.alias', 'aten.detach', 'aten.split', 'aten.unbind', 'aten.flatten',
    'aten.split_with_sizes', 'aten.chunk', 'aten.narrow', 'aten.unflatten', 'aten.diagonal',
    'aten.lift_fresh', 'aten.empty_like', 'aten.empty', 'aten.empty_strided',
    'aten._reshape_alias', 'aten.is_same_size', 'aten.sym_size', 'aten.sym_stride',
    'aten.sym_numel', 'aten.sym_storage_offset', 'aten.new_empty', 'aten.new_empty_strided',
    'aten.set_', 'aten.dim', 'aten.size', 'aten.stride', 'aten.is_contiguous',
    'aten.sym_is_contiguous'})


class OpCounter(TorchDispatchMode):
    """Count ATen operator calls by overload packet (``aten.add``, ``aten.convolution`` ...).

    Examples:
        >>> with OpCounter() as counter:
        ...     torch.ones(2).add(1).mul(2)
        >>> counter.counts['aten.add'], counter.total()
        (1, 3)
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter = collections.Counter()
        self.phase = 'model'  # the optimizer step is counted apart (see count_train_step)
        self.by_phase: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        op = str(func.overloadpacket)
        self.counts[op] += 1
        if op not in VIEW_OPS:
            self.by_phase[self.phase] += 1
        return func(*args, **(kwargs or {}))

    def total(self, views: bool = True) -> int:
        """All calls, or (``views=False``) only those that compute (no view / metadata op)."""
        return sum(n for op, n in self.counts.items() if views or op not in VIEW_OPS)


def count_train_step(model, batch: dict, optim_wrapper, warmup: int = 1) -> Dict[str, Any]:
    """ATen calls of one ``model.train_step`` (forward + backward + optimizer step).

    Args:
        model: A built OpenMMLab model in training mode.
        batch: A raw batch as its dataloader yields (see ``synthetic_batch``).
        optim_wrapper: The config's optimizer wrapper.
        warmup: Untimed steps first (optimizer state is created at the first step).

    Returns:
        ``ops`` (all calls), ``compute_ops`` (less view / metadata ops), of which
        ``model_ops`` (forward + backward) and ``optimizer_ops`` (the optimizer's step), and
        ``by_op`` (calls per op).

    Examples:
        >>> record = count_train_step(model, batch, optim_wrapper)
        >>> record['compute_ops'] <= record['ops']
        True
    """
    for _ in range(warmup):
        model.train_step(batch, optim_wrapper)
    optimizer = optim_wrapper.optimizer
    step = optimizer.step

    def counted_step(*args, **kwargs):
        counter.phase = 'optimizer'
        try:
            return step(*args, **kwargs)
        finally:
            counter.phase = 'model'

    optimizer.step = counted_step  # an instance attribute: removed below, class method back
    try:
        with OpCounter() as counter:
            model.train_step(batch, optim_wrapper)
    finally:
        del optimizer.step
    return dict(ops=counter.total(), compute_ops=counter.total(views=False),
                model_ops=counter.by_phase['model'],
                optimizer_ops=counter.by_phase['optimizer'],
                by_op=dict(counter.counts.most_common()))
