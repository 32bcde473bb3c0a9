"""``tools/analysis/efficiency.py`` on CPU: one worker process per measurement, the JSON records,
the ratios, the inference phase and the peer variants. Timings and memory values are measured,
never asserted (they depend on the host and its load); only their presence, signs, the
parameter accounting and the target bookkeeping are.

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
TIMM_CFG = osp.join(REPO, 'configs', 'benchmark', 'timm-vit-b16_cls.py')
TINY_TIMM = ['model.backbone.backbone.embed_dim=32', 'model.backbone.backbone.depth=2',
             'model.backbone.backbone.num_heads=2', 'model.backbone.backbone.img_size=32',
             'model.backbone.backbone.patch_size=8', 'model.head.in_channels=32']
METHODS = ['Full', 'Frozen', 'Adapter']


def run_efficiency(config: str, out: str, md: str, *extra: str) -> subprocess.CompletedProcess:
    """Run the benchmark with the cheapest settings that still exercise every code path."""
    cmd = [sys.executable, SCRIPT, config, '--iters', '2', '--warmup', '1', '--device', 'cpu',
           '--out', out, '--markdown', md, '--targets', *extra]
    return subprocess.run(cmd, cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED='1'),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900)


def test_efficiency_script_seg(tmp_path):
    out, md = str(tmp_path / 'eff.json'), str(tmp_path / 'eff.md')
    proc = run_efficiency(SEG_CFG, out, md, '--methods', *METHODS, '--img-size', '64',
                          '--batch-size', '2')
    # --targets without --strict never fails the process, so rc 0 means every worker ran.
    assert proc.returncode == 0, proc.stdout[-4000:]
    with open(out) as f:
        report = json.load(f)
    results = report['train']
    assert report['infer'] == {}  # --phases defaults to train
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
    # Accounted memory is exact: Full keeps gradients and AdamW state for every weight, and
    # backward through the backbone keeps activations that Frozen does not.
    assert full['accounted_mb'] > frozen['accounted_mb'] > 0
    acc = full['accounted']
    # AdamW: two moments per weight, plus one scalar step count per tensor
    assert 2 * acc['grads'] <= acc['optimizer'] < 2.01 * acc['grads']
    assert acc['grads'] == acc['params']
    assert adapter['accounted']['saved'] > frozen['accounted']['saved']

    settings = report['settings']
    assert settings['device'].startswith('cpu') and 'RSS' in settings['memory']
    assert settings['img_size'] == 64 and settings['batch_size'] == 2
    assert 'logical cores' in settings['cpu'] and 'mmengine' in settings['packages']
    # Only Adapter's targets have their methods measured; all the others are skipped.
    status = {t['target']: t['status'] for t in report['targets']}
    assert status['Adapter peak memory <= 0.75x Full'] in ('PASS', 'FAIL')
    assert status['Adapter time/iter <= 0.75x Full'] in ('PASS', 'FAIL')
    assert {s for t, s in status.items() if not t.startswith('Adapter')} == {'SKIP'}
    with open(md) as f:
        table = f.read()
    assert all(f'| {m} |' in table for m in METHODS) and 'memory:' in table


def test_efficiency_script_peers_and_inference(tmp_path):
    """Peers and merged inference on a tiny timm ViT (the benchmark's peer config, shrunk)."""
    out, md = str(tmp_path / 'eff.json'), str(tmp_path / 'eff.md')
    proc = run_efficiency(
        TIMM_CFG, out, md, '--methods', 'LoRA', 'Adapter', '--peers', '--phases', 'train',
        'infer', 'interleaved', '--repeats', '2', '--rounds', '2', '--img-size', '32',
        '--batch-size', '2',
        '--cfg-options', *TINY_TIMM)
    assert proc.returncode == 0, proc.stdout[-4000:]
    with open(out) as f:
        report = json.load(f)
    train, infer = report['train'], report['infer']
    peers = ['vpetl_mm-LoRA', 'peft-LoRA', 'mmpretrain-LoRAModel']
    assert list(train) == ['Full', 'Frozen', 'LoRA', 'Adapter'] + peers
    for name, res in train.items():
        assert 'error' not in res, res
        assert len(res['repeat_time_ms']) == 2 and res['finite']
        assert min(res['repeat_time_ms']) <= res['time_ms'] <= max(res['repeat_time_ms'])
    # The same rank-8 update of both fused qkv layers in each library.
    assert {train[p]['backbone_trainable'] for p in peers} == {2 * 8 * (32 + 96)}
    assert list(infer) == ['LoRA', 'Adapter'] + peers  # the baselines are the plain host
    assert infer['LoRA']['mergeable'] and infer['LoRA']['merged_vs_plain'] > 0
    assert infer['vpetl_mm-LoRA']['mergeable']
    for name in ('Adapter', 'peft-LoRA', 'mmpretrain-LoRAModel'):  # nothing folds them
        assert not infer[name]['mergeable'] and infer[name]['merged_ms'] is None
    for res in infer.values():
        assert len(res['rounds_ms']['plain']) == 2 and res['unmerged_vs_plain'] > 0
        # The A/A control: a second plain host, timed in the same rounds.
        assert len(res['rounds_ms']['control']) == 2 and res['control_vs_plain'] > 0
    # All seven models in one process, a step of each in turn: rounds x iters steps each.
    steps = report['interleaved']['steps_ms']
    assert list(steps) == list(train) and {len(s) for s in steps.values()} == {4}
    status = {t['target']: t['status'] for t in report['targets']}
    for target in ('vpetl_mm-LoRA time/iter <= peft-LoRA',
                   'vpetl_mm-LoRA time/iter <= mmpretrain-LoRAModel',
                   'LoRA merged inference <= 1.02x plain host time',
                   'LoRA unmerged inference <= 1.05x plain host time'):
        assert status[target] in ('PASS', 'FAIL'), target
    assert status['SSF merged inference <= 1.02x plain host time'] == 'SKIP'
    with open(md) as f:
        text = f.read()
    for part in ('interleaved in one process', 'Inference', '| peft-LoRA |', '| Target |'):
        assert part in text, part
