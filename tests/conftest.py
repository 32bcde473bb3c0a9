"""Shared fixtures: build tiny PETL backbones from the registry x profile tables."""
import contextlib
import copy
import logging
import os
import sys
from typing import Iterator, List

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

import vpetl_mm  # noqa: E402,F401
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.registry import MODELS, DefaultScope  # noqa: E402

from tiny_backbones import TinyBackbone  # noqa: E402


def build_petl(tiny: TinyBackbone, petl, seed: int = 0, profile=None, trainable=(),
               **host_overrides):
    """Build ``PETLBackbone`` around a tiny host backbone (deterministic init)."""
    torch.manual_seed(seed)
    cfg = copy.deepcopy(tiny.cfg)
    cfg.update(host_overrides)
    wrapper_cfg = dict(type='vpetl_mm.PETLBackbone', backbone=cfg, petl=petl,
                       trainable=trainable)
    if profile is not None:
        wrapper_cfg['profile'] = profile
    with DefaultScope.overwrite_default_scope(tiny.scope):
        wrapper = MODELS.build(wrapper_cfg)
    if tiny.input_shape and wrapper.uncalibrated():
        # SCT / GPS select from data: a fixed random "training set" (count-only builds skip)
        wrapper.calibrate(lambda: iter([calibration_batch(tiny)]))
    return wrapper


def calibration_batch(tiny: TinyBackbone, size: int = 4):
    """A deterministic labelled batch (two samples per class) for selection passes."""
    gen = torch.Generator().manual_seed(1234)
    inputs = torch.randn(size, *tiny.input_shape[1:], generator=gen)
    return inputs, torch.arange(size) % 2


@contextlib.contextmanager
def captured() -> Iterator[List[logging.LogRecord]]:
    """The records mmengine's current logger emits inside the block (INFO and above)."""
    logger = MMLogger.get_current_instance()
    records: List[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # the log-level fixture below restores the level afterwards
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def build_host(tiny: TinyBackbone, seed: int = 0):
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope(tiny.scope):
        return MODELS.build(copy.deepcopy(tiny.cfg))


def tensors(output) -> List[torch.Tensor]:
    """Flatten a backbone output (tensor, tuple, list, nested) into a list of tensors."""
    if isinstance(output, torch.Tensor):
        return [output]
    return [t for item in output for t in tensors(item)]


def run(model, tiny: TinyBackbone, seed: int = 1) -> List[torch.Tensor]:
    torch.manual_seed(seed)
    x = torch.randn(*tiny.input_shape)
    return tensors(model(x))


@pytest.fixture(autouse=True)
def _quiet_mmengine_logs():
    """Keep mmengine's per-parameter init dumps out of the test output."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture(autouse=True)
def _isolated_default_scope():
    """Restore mmengine's default-scope stack after every test.

    mmengine's Runner (and ``init_default_scope``) push a process-wide default scope and never
    pop it; a later test building from vpetl_mm's own registries would then search the wrong
    scope (CI once failed test_optim this way, after a test that left 'mmpretrain' behind).
    """
    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
