"""The benchmark harness end to end on the CPU: run records, the results store, sweeps
(interrupted and resumed), the published-layout tables and the plots.

The sweep is real: ``tools/benchmark.py`` runs ``tools/train.py`` subprocesses on generated
tiny VTAB-1k tasks (2 methods x 2 tasks x 2 seeds, 2 epochs each, plus a config that fails on
purpose). A hook kills the whole sweep (its process group) right after one run saved its first
checkpoint; rerunning the sweep must skip what finished, resume that run from its checkpoint and
run the rest. The store's concurrency and the tables on constructed records are in
test_results_store.py; single protocol runs, grid files and the dist launcher in
test_harness_runs.py, which imports this file's tiny-config helpers.
"""
import json
import math
import os
import os.path as osp
import re
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, osp.dirname(__file__))

from runner_utils import (PY, REPO, expected_ppt, latest_scalars, md_row, result_record,  # noqa
                          run_tool, write_tiny_vtab)
from vpetl_mm.benchmark.store import ResultStore  # noqa: E402
from vpetl_mm.benchmark.slurm import slurm_commands  # noqa: E402
from vpetl_mm.benchmark.sweep import expand_grid  # noqa: E402

TINY = osp.join(REPO, 'tests', 'configs', 'image', 'vit-b_vtab_tiny.py')
# trainable backbone parameters on the tiny ViT (2 blocks, width 32, MLP 64, patch 8)
BITFIT = 2 * (32 + 96 + 32 + 32 + 64 + 32) + 32 + 32  # block biases, patch embed, final norm
LORA = 2 * 2 * (2 * 32 + 32 * 2)  # blocks x (q, v) x rank-2 A and B
# A hook that kills its own process group (the sweep and its run) once, after the first epoch's
# checkpoint is saved and before that epoch's validation: what a killed job looks like.
KILL_HOOK = '''
import os, signal
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillOnceHook(Hook):
    priority = 'LOWEST'  # after CheckpointHook saved epoch_1.pth

    def __init__(self, marker, seed):
        self.marker, self.seed = marker, seed

    def after_train_epoch(self, runner):
        if runner.epoch == 0 and runner.seed == self.seed and os.path.exists(self.marker):
            os.remove(self.marker)
            os.killpg(os.getpgid(0), signal.SIGKILL)
'''


def _pretrained(path: str) -> str:
    """The tiny host's weights in the host's key layout (what a Pretrained init_cfg loads)."""
    import mmpretrain.models  # noqa: F401  (registers the host)
    import torch
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    torch.manual_seed(7)
    host = MODELS.build(Config.fromfile(TINY).model.backbone.backbone.to_dict())
    torch.save(dict(state_dict=host.state_dict()), path)
    return path


def _config(root, method: str, dataset: str, petl: dict, data: str, kill: str = '') -> str:
    folder = osp.join(root, 'configs', method)
    os.makedirs(folder, exist_ok=True)
    path = osp.join(folder, f'vit-t_{dataset}.py')
    host = osp.join(root, 'host.pth')
    if not osp.isfile(host):
        _pretrained(host)
    init = dict(_delete_=True, type='Pretrained', checkpoint=host)
    with open(path, 'w') as f:
        f.write(f'_base_ = [{TINY!r}]\n'
                f'model = dict(backbone=dict(petl=dict(_delete_=True, **{petl!r}),\n'
                f'                           backbone=dict(init_cfg={init!r})))\n'
                f"_root = {data!r}\n"
                "train_dataloader = dict(dataset=dict(data_root=_root))\n"
                "val_dataloader = dict(dataset=dict(data_root=_root))\n"
                "test_dataloader = dict(dataset=dict(data_root=_root))\n"
                "train_cfg = dict(max_epochs=2)\n"
                "param_scheduler = dict(t_initial=2)\n"
                "default_hooks = dict(checkpoint=dict(interval=1))\n" + kill)
    return path


def _kill_lines(marker: str, seed: int) -> str:
    return ("custom_imports = dict(imports=['vpetl_mm', 'kill_hook'], "
            "allow_failed_imports=False)\n"
            f"custom_hooks = [dict(type='KillOnceHook', marker={marker!r}, seed={seed})]\n")


@pytest.fixture()
def tiny_grid(tmp_path):
    """configs/{bitfit,lora,broken}/vit-t_vtab-{dtd,eurosat}.py on two tiny tasks; LoRA on
    dtd kills its sweep once, with seed 1."""
    (tmp_path / 'kill_hook.py').write_text(KILL_HOOK)
    marker = tmp_path / 'kill-marker'
    marker.write_text('kill once')
    data = {d: write_tiny_vtab(str(tmp_path / 'data' / d), seed=s)
            for s, d in enumerate(('dtd', 'eurosat'))}
    for dataset, root in data.items():
        _config(str(tmp_path), 'bitfit', f'vtab-{dataset}', dict(type='BitFit'), root)
        _config(str(tmp_path), 'lora', f'vtab-{dataset}', dict(type='LoRA', rank=2, alpha=2),
                root, _kill_lines(str(marker), 1) if dataset == 'dtd' else '')
    _config(str(tmp_path), 'broken', 'vtab-dtd', dict(type='NoSuchPETLMethod'), data['dtd'])
    return tmp_path


def _sweep_args(root, *extra):
    return [PY, osp.join(REPO, 'tools', 'benchmark.py'), '--configs',
            str(root / 'configs' / '*' / 'vit-t_vtab-*.py'), '--seeds', '0', '1',
            '--protocol', 'none', '--store', str(root / 'results.db'),
            '--work-root', str(root / 'work'), *extra]


def _env(root):
    return dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, str(root)]), PYTHONUNBUFFERED='1')


def test_tiny_sweep_interrupted_resumed_store_tables_plots_visualised_exported(tiny_grid):
    root = tiny_grid
    # (1) the first sweep: 4 BitFit runs, 2 failing runs, LoRA dtd seed 0, then the kill
    first = subprocess.run(_sweep_args(root), cwd=str(root), env=_env(root), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900,
                           start_new_session=True)
    assert first.returncode == -signal.SIGKILL, first.stdout[-3000:]
    out = first.stdout
    assert '[benchmark] 10 runs: 0 already in the store, 0 recovered from their work dirs, ' \
           '10 to run' in out
    assert re.search(r'broken/vit-t_vtab-dtd\.py seed 0 \(none\): FAILED \(exit code 1', out)
    assert re.search(r'\| 7/10 finished \(2 failed\), 3 left \| [\d.]+ s per run, ETA \d:\d\d:\d\d',
                     out), out
    assert 'run 8/10: ' in out and 'lora/vit-t_vtab-dtd.py seed 1' in out
    store = ResultStore(str(root / 'results.db'))
    # every finished run is in the store at once; the killed one is not
    done = store.records()
    assert sorted((r['method'], r['dataset'], r['seed']) for r in done) == sorted(
        [('bitfit', d, s) for d in ('vtab-dtd', 'vtab-eurosat') for s in (0, 1)]
        + [('lora', 'vtab-dtd', 0)])
    failed = store.records(status='failed')
    assert [(r['method'], r['seed']) for r in failed] == [('broken', 0), ('broken', 1)]
    assert 'NoSuchPETLMethod' in failed[0]['error']
    killed = root / 'work' / 'lora' / 'vit-t_vtab-dtd' / 'none-seed1'
    assert (killed / 'last_checkpoint').read_text().strip().endswith('epoch_1.pth')
    assert not (killed / 'run_record.json').exists()

    # (2) the same command again: skips the finished runs (and, asked, the failed ones),
    # resumes the killed run from its checkpoint, runs the two left
    rc, out = _sweep(root, '--skip-failed', log='second.log')
    assert rc == 1  # not every run is done: the broken config's are not
    assert '[benchmark] 10 runs: 7 already in the store, 0 recovered from their work dirs, ' \
           '3 to run' in out
    assert re.search(r'run 1/3: \S+lora/vit-t_vtab-dtd\.py seed 1 \(none\) \(resuming from its '
                     r'checkpoint\)', out), out
    assert '[benchmark] finished: 8/10 done, 0 failed in this sweep' in out
    log = (killed / 'benchmark.log').read_text()
    attempts = log.split('\n=== ')[1:]
    assert len(attempts) == 2 and '--resume' in attempts[1] and '--resume' not in attempts[0]
    assert 'resumed epoch: 1' in attempts[1]
    assert not re.search(r'Epoch\(train\) \[1\]', attempts[1])  # epoch 1 is not trained again
    assert re.search(r'Epoch\(train\) \[2\]', attempts[1])
    for skipped in ('bitfit/vit-t_vtab-dtd/none-seed0', 'lora/vit-t_vtab-dtd/none-seed0'):
        assert (root / 'work' / skipped / 'benchmark.log').read_text().count('\n=== ') == 1

    # (3) the store: 8 done runs with what each run measured
    done = store.records()
    assert len(done) == 8 and len(store) == 10 and store.integrity() == 'ok'
    git = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO, capture_output=True,
                         text=True).stdout.strip()
    for r in done:
        assert r['benchmark'] == 'vtab' and r['backbone'] == 'vit-t' and r['protocol'] == 'none'
        assert r['params'] == dict(bitfit=BITFIT, lora=LORA)[r['method']]
        assert r['petl'] == [dict(bitfit='BitFit', lora='LoRA')[r['method']]]
        val = [s for s in latest_scalars(r['work_dir']) if 'accuracy/top1' in s]
        assert r['value'] == pytest.approx(val[-1]['accuracy/top1']) and r['split'] == 'val'
        assert r['ppt'] == pytest.approx(expected_ppt(r['value'] / 100, r['params']))
        assert r['git'] == git and r['time_per_iter_s'] > 0 and r['peak_mem_mb'] > 0
        assert r['metric'] == 'accuracy/top1' and r['host'] and r['start'] <= r['end']
    # a third sweep has nothing to do (idempotent)
    rc, out = _sweep(root, '--skip-failed', log='third.log')
    assert rc == 1 and ', 0 to run' in out and len(store) == 10

    # (4) tables and plots from the store
    values = {(m, d): sorted((r['seed'], r['value']) for r in done
                             if (r['method'], r['dataset']) == (m, d))
              for m in ('bitfit', 'lora') for d in ('vtab-dtd', 'vtab-eurosat')}
    md = run_tool([PY, 'tools/report.py', '--store', str(root / 'results.db'), '--benchmark',
                   'vtab', '--format', 'md', '--plots', str(root / 'plots')],
                  str(root / 'report.log'))
    cells = md_row(md, 'LoRA')
    dtd = [v for _, v in values[('lora', 'vtab-dtd')]]
    euro = [v for _, v in values[('lora', 'vtab-eurosat')]]
    # columns: Method, 19 tasks, 3 group means, Mean (19 tasks), Mean (groups), Params, PPT, ...
    assert cells[3] == _pm(dtd) and cells[9] == _pm(euro)
    assert cells[20] == _pm(dtd) + '*' and cells[21] == _pm(euro) + '*' and cells[22] == '-'
    seed_means = [(a + b) / 2 for a, b in zip(dtd, euro)]
    # the mean of the groups: Natural (DTD) and Specialized (EuroSAT) only, so the same here
    assert cells[23] == cells[24] == _pm(seed_means) + '*'
    assert cells[25] == f'{LORA / 1e6:.2g}' and cells[27] == '-'  # no published ViT-T figure
    assert 'Protocol: none (the config as written; the last validation evaluation).' in md
    for name in ('accuracy_vs_params', 'ppt'):
        for ext in ('png', 'svg'):
            path = root / 'plots' / f'vtab_{name}.{ext}'
            assert path.stat().st_size > 1000, path
    assert (root / 'plots' / 'vtab_ppt.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert '<svg' in (root / 'plots' / 'vtab_accuracy_vs_params.svg').read_text()

    # (5) the sweep's own runs through the other tools: the two visualisations and the export
    # of the merged LoRA model, loaded strictly by stock mmpretrain (no vpetl_mm)
    # (eurosat: LoRA's dtd config imports the kill hook from the test's folder)
    runs = {m: (str(root / 'configs' / m / 'vit-t_vtab-eurosat.py'),
                (root / 'work' / m / 'vit-t_vtab-eurosat' / 'none-seed0' / 'last_checkpoint')
                .read_text().strip()) for m in ('bitfit', 'lora')}
    attn = root / 'attn'
    run_tool([PY, 'tools/visualize/attention_map.py', *runs['lora'], '--split', 'test', '--num',
              '2', '--out', str(attn)], str(root / 'attn.log'))
    index = json.loads((attn / 'index.json').read_text())
    assert len(index) == 2 and {'rollout'} < set(index[0]['maps'])
    fig = root / 'tsne' / 'fig.png'
    run_tool([PY, 'tools/visualize/tsne.py', *runs['bitfit'], *runs['lora'], '--names',
              'BitFit', 'LoRA', '--split', 'test', '--out', str(fig)], str(root / 'tsne.log'))
    svg = fig.with_suffix('.svg').read_text()
    assert fig.stat().st_size > 1000 and len(re.findall(r'<g id="axes_\d+"', svg)) == 2
    log = run_tool([PY, 'tools/export.py', *runs['lora'], str(root / 'export'), '--name', 'lora',
                    '--verify-shape', '2', '3', '32', '32'], str(root / 'export.log'))
    assert 'loaded it strictly without vpetl_mm' in log
    info = json.loads((root / 'export' / 'lora.json').read_text())
    assert info['mode'] == 'merged' and info['stock_check']['vpetl_mm_imported'] == []
    assert info['stock_check']['max_abs_diff'] < 1e-5


def _sweep(root, *extra, log='sweep.log'):
    """Run tools/benchmark.py on the tiny grid; (exit code, output). It exits 1 while runs
    are not done (the broken config's)."""
    proc = subprocess.run(_sweep_args(root, *extra), cwd=str(root), env=_env(root), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
    (root / log).write_text(proc.stdout)
    return proc.returncode, proc.stdout


def _pm(values):
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f'{mean:.2f} ± {std:.2f}'


def test_print_slurm_array_script_runs_each_task(tiny_grid, tmp_path):
    root = tiny_grid
    store = ResultStore(str(root / 'results.db'))
    jobs = expand_grid([str(root / 'configs' / '*' / 'vit-t_vtab-*.py')], seeds=[0, 1],
                       protocol='none', work_root=str(root / 'work'))
    store.put(result_record(config=jobs[0].key[0], seed=0, protocol='none'))  # one job is done
    args = _sweep_args(root) + ['--print', 'slurm', '--partition', 'p1', '--gpus', '4',
                                '--gpus-per-node', '2', '--max-parallel', '3',
                                '--python', 'python3']
    script = run_tool(args, str(tmp_path / 'print.log'), env=_env(root))
    assert script.startswith('#!/usr/bin/env bash\n')
    for line in ('#SBATCH --array=0-8%3', '#SBATCH --partition=p1', '#SBATCH --ntasks=4',
                 '#SBATCH --ntasks-per-node=2', '#SBATCH --gres=gpu:2', '#SBATCH --nodes=2'):
        assert line + '\n' in script
    path = tmp_path / 'array.sh'
    path.write_text(script)
    subprocess.run(['bash', '-n', str(path)], check=True)
    # run array task 2 with a fake srun that prints its command line
    fake = tmp_path / 'bin'
    fake.mkdir()
    (fake / 'srun').write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    (fake / 'srun').chmod(0o755)
    env = dict(os.environ, PATH=f'{fake}{os.pathsep}{os.environ["PATH"]}',
               SLURM_ARRAY_TASK_ID='2')
    out = subprocess.run(['bash', str(path)], env=env, capture_output=True, text=True,
                         check=True).stdout.split('\n')
    job = jobs[3]  # jobs[0] is done, so array index 2 is the fourth job
    assert out[:2] == ['-p', 'p1'] and '--ntasks=4' in out and 'python3' in out
    i = out.index(osp.join(REPO, 'tools', 'train.py'))
    assert out[i + 1] == job.config and out[i + 2] == f'--work-dir={job.work_dir}'
    assert out[i + 3] == '--launcher=slurm'  # then the sweep's arguments
    assert out[i + 4:i + 10] == ['--seed', '1', '--protocol', 'none', '--store',
                                 str(root / 'results.db')]
    assert '--resume' not in out
    # the plain commands, and tools/slurm_train.sh ones
    cmds = run_tool(_sweep_args(root) + ['--print', 'commands'], str(tmp_path / 'c.log'),
                    env=_env(root)).strip().splitlines()
    assert len(cmds) == 9 and cmds[0].split()[1].endswith('tools/train.py')
    pending = [j for j in jobs if store.status(*j.key) != 'done']
    slurm = slurm_commands(pending, str(root / 'results.db'), gpus=8).strip().splitlines()
    assert len(slurm) == 9 and all(re.match(r'GPUS=8 PYTHON=\S+ bash \S*tools/slurm_train.sh '
                                            r'gpu vpetl-bench-\d ', s) for s in slurm)
