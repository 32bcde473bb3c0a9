"""The benchmark harness, single runs and grids (the interrupted and resumed sweep is in
test_harness.py): a protocol run killed mid-stage resumes that stage and reports what an
uninterrupted run reports, grid files expand into labelled jobs and their commands, and the
dist launcher records a run once.
"""
import json
import os.path as osp
import re
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

sys.path.insert(0, osp.dirname(__file__))

from runner_utils import PY, REPO, run_tool, write_tiny_vtab  # noqa: E402
from test_harness import BITFIT, KILL_HOOK, TINY, _config, _env, _kill_lines  # noqa: E402
from vpetl_mm.benchmark.record import derive_labels, labels_from_path  # noqa: E402
from vpetl_mm.benchmark.store import ResultStore  # noqa: E402
from vpetl_mm.benchmark.sweep import command, expand_grid, load_grid  # noqa: E402


def test_interrupted_protocol_run_resumes_its_stage(tmp_path):
    # legacy protocol: the kill comes after epoch 1's checkpoint and before its test
    # evaluation; the resumed run makes that evaluation, trains epoch 2 only, and reports the
    # same best-of-evaluations as an uninterrupted run
    (tmp_path / 'kill_hook.py').write_text(KILL_HOOK)
    marker = tmp_path / 'kill-marker'
    marker.write_text('kill once')
    data = write_tiny_vtab(str(tmp_path / 'data'))
    # a pretrained backbone, as the real configs have: the frozen weights come from it, not
    # from the process's random init (adapter-only checkpoints hold no frozen tensor)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(7)
        host = MODELS.build(Config.fromfile(TINY).model.backbone.backbone)
    pretrained = str(tmp_path / 'pretrained.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in host.state_dict().items()}},
               pretrained)
    cfg = _config(str(tmp_path), 'lora', 'vtab-dtd', dict(type='LoRA', rank=2, alpha=2), data,
                  _kill_lines(str(marker), 3) + (
                      "model = dict(backbone=dict(backbone=dict(init_cfg=dict(_delete_=True, "
                      f"type='Pretrained', checkpoint={pretrained!r}, prefix='backbone.'))))\n"))
    args = [PY, osp.join(REPO, 'tools', 'benchmark.py'), '--configs', cfg, '--seeds', '3',
            '--protocol', 'legacy', '--store', str(tmp_path / 'r.db'), '--work-root',
            str(tmp_path / 'work')]
    first = subprocess.run(args, cwd=str(tmp_path), env=_env(tmp_path), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
                           start_new_session=True)
    assert first.returncode == -signal.SIGKILL, first.stdout[-3000:]
    out = run_tool(args, str(tmp_path / 'second.log'), env=_env(tmp_path))
    assert '(resuming from its checkpoint)' in out
    work = tmp_path / 'work' / 'lora' / 'vit-t_vtab-dtd' / 'legacy-seed3'
    with open(work / 'protocol_record.json') as f:
        resumed = json.load(f)
    stage = resumed['stages'][0]
    assert stage['resumed'] and [e['epoch'] for e in stage['evaluations']] == [1, 2]
    assert [e['split'] for e in stage['evaluations']] == ['test', 'test']
    attempt = (work / 'benchmark.log').read_text().split('\n=== ')[-1]
    assert not re.search(r'Epoch\(train\) \[1\]', attempt)
    record = ResultStore(str(tmp_path / 'r.db')).get(*expand_grid(
        [cfg], seeds=[3], protocol='legacy')[0].key)
    assert record['status'] == 'done' and record['value'] == resumed['value']
    assert record['protocol_label'].startswith('legacy')

    # the same run, never interrupted
    ref = str(tmp_path / 'ref')
    assert not marker.exists()  # the kill hook fired once and is spent
    run_tool([PY, 'tools/train.py', cfg, '--work-dir', ref, '--protocol', 'legacy', '--seed',
              '3'], str(tmp_path / 'ref.log'), env=_env(tmp_path))
    with open(osp.join(ref, 'protocol_record.json')) as f:
        reference = json.load(f)
    assert resumed['test_evaluations'] == pytest.approx(reference['test_evaluations'])
    assert resumed['value'] == pytest.approx(reference['value'])
    with open(osp.join(ref, 'run_record.json')) as f:
        assert json.load(f)['value'] == reference['value']


def test_grid_files_labels_and_commands(tmp_path):
    (tmp_path / 'grid.yaml').write_text('methods: [lora, adapter]\ndatasets: [fgvc]\n'
                                        'seeds: [0, 1]\nprotocol: legacy\n')
    grid = load_grid(str(tmp_path / 'grid.yaml'))
    jobs = expand_grid(**grid, config_root=osp.join(REPO, 'configs'))
    assert len(jobs) == 2 * 5 * 2 and {j.protocol for j in jobs} == {'legacy'}
    assert jobs[0].labels == dict(method='lora', backbone='vit-b', dataset='fgvc-cub')
    (tmp_path / 'grid.py').write_text(
        f"configs = [{osp.join(REPO, 'configs', 'lora', 'swin-l_*.py')!r}]\nseeds = [0]\n")
    jobs = expand_grid(**load_grid(str(tmp_path / 'grid.py')))
    # each config's own protocol: image configs 'default', dense ones 'none'
    assert [j.protocol for j in jobs] == ['none'] * 3
    assert expand_grid([osp.join(REPO, 'configs/lora/vit-b_vtab-dtd.py')],
                       seeds=[0])[0].protocol == 'default'
    assert expand_grid([osp.join(REPO, 'tests/configs/image/vit-b_vtab_tiny.py')],
                       seeds=[0])[0].protocol == 'default'  # through its _base_
    with pytest.raises(FileNotFoundError, match='No config matches'):
        expand_grid(['nothing/*.py'])
    with pytest.raises(ValueError, match='unknown grid keys'):
        (tmp_path / 'bad.yaml').write_text('method: [lora]\n')
        load_grid(str(tmp_path / 'bad.yaml'))
    job = jobs[0]
    cmd = command(job, 'r.db', resume=True, launcher='dist', gpus=4)
    assert cmd[:2] == ['bash', osp.relpath(osp.join(REPO, 'tools', 'dist_train.sh'))]
    assert cmd[2:4] == [job.config, '4'] and cmd[-1] == '--resume' and '--store' in cmd
    # labels from the generated config's path, else from the config itself
    assert labels_from_path('configs/lora/vit-b_vtab-dtd.py')['benchmark'] == 'vtab'
    labels = derive_labels(Config.fromfile(TINY), TINY)
    assert (labels['method'], labels['petl'], labels['backbone']) == ('LoRA', ['LoRA'],
                                                                      'visiontransformer')
    assert labels['dataset'] == 'vtab-tiny' and labels['benchmark'] == 'vtab'
    assert derive_labels(Config.fromfile(TINY), TINY, dict(dataset='ssv2'))['benchmark'] == \
        'video'


def test_dist_launcher_records_once(tmp_path):
    data = write_tiny_vtab(str(tmp_path / 'data'))
    cfg = _config(str(tmp_path), 'bitfit', 'vtab-dtd', dict(type='BitFit'), data)
    out = run_tool([PY, 'tools/benchmark.py', '--configs', cfg, '--seeds', '0', '--protocol',
                    'none', '--store', str(tmp_path / 'r.db'), '--work-root',
                    str(tmp_path / 'work'), '--launcher', 'dist', '--gpus', '2'],
                   str(tmp_path / 'dist.log'))
    assert '[benchmark] finished: 1/1 done' in out
    [record] = ResultStore(str(tmp_path / 'r.db')).records()
    assert record['launcher'] == 'pytorch' and record['params'] == BITFIT
    log = open(osp.join(record['work_dir'], 'benchmark.log')).read()
    assert 'tools/dist_train.sh' in log and 'GPU number: 2' in log
    assert log.count('run record (done)') == 1  # rank 0 only
