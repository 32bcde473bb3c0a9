"""Smoke test of ``tools/analysis/efficiency.py`` on CPU: one worker process per method, the
JSON record and the ratios. Timings and memory values are measured, never asserted (they depend
on the host and its load); only their presence, signs and the parameter accounting are.

Examples:
    $ .venv/bin/python -m pytest tests/test_efficiency_script.py -q
"""
import json
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPT = osp.join(REPO, 'tools', 'analysis', 'efficiency.py')
SEG_CFG = osp.join(REPO, 'tests', 'configs', 'upernet_swin-tiny-petl.py')
METHODS = ['Full', 'Frozen', 'Adapter']


def run_efficiency(config: str, out: str, md: str) -> subprocess.CompletedProcess:
    """Run the benchmark with the cheapest settings that still exercise every code path."""
    cmd = [sys.executable, SCRIPT, config, '--methods', *METHODS, '--iters', '2', '--warmup', '1',
           '--img-size', '64', '--batch-size', '2', '--device', 'cpu', '--out', out,
           '--markdown', md, '--targets']
    return subprocess.run(cmd, cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED='1'),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)


def test_efficiency_script_seg(tmp_path):
    out, md = str(tmp_path / 'eff.json'), str(tmp_path / 'eff.md')
    proc = run_efficiency(SEG_CFG, out, md)
    # --targets without --strict never fails the process, so rc 0 means every worker ran.
    assert proc.returncode == 0, proc.stdout[-4000:]
    with open(out) as f:
        report = json.load(f)
    results = report['results']
    assert list(results) == METHODS  # baselines first, one record per method
    for name, res in results.items():
        assert 'error' not in res, res
        assert res['time_ms'] > 0 and len(res['times_ms']) == 2
        assert res['peak_mb'] > 0, res['memory_measure']
        assert res['finite'], res
        # The synthetic batch went through the data preprocessor at --img-size (batch 2: UPerNet's
        # 1x1 pyramid-pooling BatchNorm cannot train on one image).
        assert res['input_shape'] == [2, 3, 64, 64]

    full, frozen, adapter = (results[m] for m in METHODS)
    assert full['mem_vs_full'] == 1 and full['time_vs_full'] == 1
    assert frozen['mem_vs_frozen'] == 1 and frozen['time_vs_frozen'] == 1
    assert adapter['time_vs_full'] == adapter['time_ms'] / full['time_ms']
    assert frozen['backbone_trainable'] == 0
    assert full['backbone_trainable'] > adapter['backbone_trainable'] > 0
    # build_optim_wrapper holds exactly the trainable parameters (frozen ones left out).
    for res in results.values():
        assert res['optimizer_params'] == res['trainable'] <= res['total']
    assert full['trainable'] == full['total'] > adapter['trainable'] > frozen['trainable']

    settings = report['settings']
    assert settings['device'].startswith('cpu') and 'RSS' in settings['memory']
    assert settings['img_size'] == 64 and settings['batch_size'] == 2
    # Only Adapter's target has its methods measured; the E3VA/Mona/LoRA ones are skipped.
    status = {t['target']: t['status'] for t in report['targets']}
    assert status['Adapter peak memory < Full'] in ('PASS', 'FAIL')
    assert {s for t, s in status.items() if not t.startswith('Adapter')} == {'SKIP'}
    with open(md) as f:
        table = f.read()
    assert all(f'| {m} |' in table for m in METHODS) and 'memory:' in table
