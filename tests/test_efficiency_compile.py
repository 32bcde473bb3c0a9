"""``tools/analysis/efficiency.py --compile``: the compiled twin ``<variant>+compile`` of every
variant runs in the same interleaved run and gets its ``Compiled / eager`` ratio. Times are
measured, never asserted; the backend is ``aot_eager`` (no C++ build), so this takes seconds.
"""
import importlib.util
import os.path as osp

import pytest
import torch

from test_efficiency_script import REPO, SCRIPT
from vpetl_mm.benchmark.efficiency import (interleaved_markdown, measure_interleaved,
                                           split_compiled)
from vpetl_mm.benchmark.efficiency.compiled import warmup_steps

TINY_VIT = osp.join(REPO, 'tests', 'configs', 'vit-tiny_vtab-petl.py')


def _tool():
    spec = importlib.util.spec_from_file_location('efficiency_tool', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compile_adds_twins_to_the_interleaved_run():
    tool = _tool()
    args = tool.parse_args([TINY_VIT, '--methods', 'Frozen', '--compile', '--compile-backend',
                            'aot_eager', '--device', 'cpu', '--rounds', '1', '--iters', '1',
                            '--warmup', '0', '--img-size', '32', '--batch-size', '1'])
    names = tool.variants(args)
    assert names == ['Full', 'Frozen', 'Full+compile', 'Frozen+compile']
    # the interleaved worker, in this process, on the cheapest pair: one eager, one compiled
    args.worker, args.phase = 'Frozen;Frozen+compile', 'interleaved'
    record = measure_interleaved(args)
    times = record['time_ms']
    assert list(times) == ['Frozen', 'Frozen+compile'] and all(t > 0 for t in times.values())
    table = interleaved_markdown(record)
    ratio = times['Frozen+compile'] / times['Frozen']
    assert 'Compiled / eager' in table
    assert f'| Frozen+compile | {times["Frozen+compile"]:.1f} | {ratio:.3f} | {ratio:.3f} |' \
        in table


def test_twin_names_and_table():
    assert split_compiled('VPT:length=10+compile') == ('VPT:length=10', True)
    assert split_compiled('LoRA') == ('LoRA', False)

    class Args:
        warmup = 0
    assert warmup_steps(Args, 'LoRA+compile') == 2 and warmup_steps(Args, 'LoRA') == 0
    table = interleaved_markdown(dict(time_ms={'Full': 10., 'LoRA': 8., 'LoRA+compile': 6.}))
    assert '| LoRA+compile | 6.0 | 0.600 | 0.750 |' in table and '| LoRA | 8.0 | 0.800 | - |' in table
    plain = interleaved_markdown(dict(time_ms={'Full': 10., 'LoRA': 8.}))
    assert 'Compiled' not in plain


@pytest.mark.parametrize('backend', ['aot_eager'])
def test_compiled_train_step_matches_eager(backend):
    """The twin runs the same step: one compiled train_step gives the eager loss."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, init_default_scope
    from vpetl_mm.benchmark.efficiency import build_cfg, compile_train_step, synthetic_batch
    cfg = build_cfg(TINY_VIT, 'LoRA', {'model.backbone.backbone.drop_path_rate': 0.}, 32, False)
    init_default_scope('mmpretrain')
    losses = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).train()
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        if compiled:
            compile_train_step(model, backend)
        batch = synthetic_batch(model, 2, 32, 'cpu')
        losses.append([float(model.train_step(batch, optim_wrapper)['loss']) for _ in range(2)])
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-5)
