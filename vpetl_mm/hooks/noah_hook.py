"""Sample a NOAH subnet before every training iteration of the supernet (one-shot training)."""
import random
from typing import Optional

from mmengine.hooks import Hook

from ..methods.noah import NOAH
from ..registry import HOOKS
from ..utils import find_petl_backbone


def find_noah_supernet(model):
    """The ``NOAH`` method with ``supernet=True`` of ``model``'s PETL backbone, else ``None``."""
    wrapper = find_petl_backbone(model)
    methods = wrapper.methods if wrapper is not None else []
    return next((m for m in methods if isinstance(m, NOAH) and m.supernet), None)


def iteration_rng(seed: int, iteration: int) -> random.Random:
    """The generator of one iteration's subnet: a function of (seed, iteration) only, so a
    resumed run draws the subnets the uninterrupted run would, and every rank draws the same."""
    return random.Random(f'noah-{seed}-{iteration}')


@HOOKS.register_module()
class NOAHSamplingHook(Hook):
    """Train a NOAH supernet one-shot: a random subnet for every iteration.

    Before each training iteration the NOAH method (``supernet=True``) switches to a subnet
    drawn by ``NOAH.sample`` (NOAH's scheme: per kind a depth, then a width per layer) from a
    generator seeded by ``(seed, iteration)``; its parameter count is logged as
    ``train/noah_params``. Validation and testing during training use the largest subnet (the
    whole supernet), so those numbers are comparable across epochs.

    Args:
        seed: Seed of the draws; ``None``: the runner's seed (``randomness.seed``).

    Examples:
        >>> model = dict(backbone=dict(petl=dict(type='NOAH', supernet=True)))
        >>> custom_hooks = [dict(type='vpetl_mm.NOAHSamplingHook')]
    """
    priority = 'HIGH'  # before hooks that read the model's forward (EMA copies it later)

    def __init__(self, seed: Optional[int] = None) -> None:
        self.seed = seed

    def _method(self, runner):
        method = find_noah_supernet(runner.model)
        if method is None:
            raise ValueError("NOAHSamplingHook needs a NOAH supernet: set model.backbone.petl="
                             "dict(type='NOAH', supernet=True), or remove the hook for a "
                             'fixed subnet.')
        return method

    def before_train(self, runner) -> None:
        self._method(runner)  # fail before the first iteration, not inside it
        if self.seed is None:
            self.seed = int(runner.seed)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        method = self._method(runner)
        method.set_subnet(method.sample(iteration_rng(self.seed, runner.iter)))
        runner.message_hub.update_scalar('train/noah_params', method.count())

    def _largest(self, runner) -> None:
        method = self._method(runner)
        method.set_subnet(method.largest())

    def before_val_epoch(self, runner) -> None:
        self._largest(runner)

    def before_test_epoch(self, runner) -> None:
        self._largest(runner)
