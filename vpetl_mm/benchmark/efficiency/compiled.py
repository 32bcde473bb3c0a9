"""Compiled twins: ``<variant>+compile`` is ``<variant>`` with its training step compiled.

``tools/analysis/efficiency.py --compile`` adds the twin of every variant to the same run, so
eager and compiled steps are timed under the same load (interleaved: in the same rounds).
"""
import argparse
from typing import Tuple

import torch

COMPILE_SUFFIX = '+compile'


def split_compiled(variant: str) -> Tuple[str, bool]:
    """``'LoRA+compile'`` -> ``('LoRA', True)``: a compiled twin names its eager variant.

    Examples:
        >>> split_compiled('VPT:length=10+compile'), split_compiled('Full')
        (('VPT:length=10', True), ('Full', False))
    """
    if variant.endswith(COMPILE_SUFFIX):
        return variant[:-len(COMPILE_SUFFIX)], True
    return variant, False


def compile_train_step(model, backend: str = 'inductor') -> None:
    """Compile ``model.train_step`` as mmengine's Runner does with ``compile=True``.

    ``Runner._maybe_compile('train_step')`` (mmengine 0.10.7, runner/runner.py) replaces the
    bound method by ``torch.compile`` of it, so the twin times what a compiled training run
    runs: preprocessing, forward, backward and optimizer step (dynamo splits at
    ``loss.backward()``; the backbone's forward and backward are one graph each).

    Examples:
        >>> compile_train_step(model, backend='aot_eager')  # compiles at the first step
        >>> model.train_step(batch, optim_wrapper)
    """
    # Every twin compiles the same code object (BaseModel.train_step) for another model; past
    # dynamo's recompile limit (8) it would silently run eager. Benchmark processes only.
    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, 64)
    model.train_step = torch.compile(model.train_step, backend=backend)


def warmup_steps(args: argparse.Namespace, variant: str) -> int:
    """Untimed steps before timing ``variant``: ``args.warmup``, at least 2 for a twin.

    Examples:
        >>> warmup_steps(argparse.Namespace(warmup=1), 'LoRA+compile')
        2
    """
    # A compiled twin compiles at its first step and may recompile at its second (dynamo
    # specialises on what changed, e.g. optimizer state created at step 1): two untimed.
    return max(args.warmup, 2) if split_compiled(variant)[1] else args.warmup
