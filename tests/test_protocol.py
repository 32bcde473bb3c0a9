"""The image benchmark protocols through ``tools/train.py`` on a tiny ViT and a tiny VTAB task.

``default`` selects the lr on val200 (train800 only), retrains on train800val200 and evaluates
the test split exactly once, after the last epoch; ``legacy`` (the reference code) trains on
train800val200 and reports the best of its periodic test evaluations. Both write
``protocol_record.json`` with what each stage trained on and evaluated.
"""
import json
import os.path as osp
import sys

import pytest
from mmengine.config import Config

sys.path.insert(0, osp.dirname(__file__))

from datagen.fgvc import write_fgvc  # noqa: E402
from runner_utils import PY, REPO, run_tool, write_tiny_vtab  # noqa: E402
from vpetl_mm.apis.protocol import stage_config  # noqa: E402
from vpetl_mm.benchmark import load_seeds_result, to_markdown  # noqa: E402

TINY = osp.join(REPO, 'tests', 'configs', 'image', 'vit-b_vtab_tiny.py')
FGVC_TINY = osp.join(REPO, 'tests', 'configs', 'image', 'vit-b_fgvc_tiny.py')
EPOCHS = 3


def _run(tmp_path, *args, result='protocol_record.json', cfg=TINY):
    if cfg == TINY:
        root = write_tiny_vtab(str(tmp_path / 'vtab'))
    else:  # FGVC: Stanford Dogs' layout, one image per class and split
        root = write_fgvc(str(tmp_path / 'dogs'), 'dogs')
    work = str(tmp_path / 'work')
    opts = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    out = run_tool([PY, 'tools/train.py', cfg, '--work-dir', work, *args, '--cfg-options',
                    *opts], str(tmp_path / 'train.log'))
    with open(osp.join(work, result)) as f:
        return json.load(f), out


def test_default_protocol_selects_on_val_and_tests_once(tmp_path):
    record, out = _run(tmp_path, '--protocol', 'default', '--lr-scales', '1', '2',
                       '--seed', '3')
    assert record['protocol'] == 'default' and record['seed'] == 3
    assert record['candidates'] == pytest.approx([1e-2, 2e-2])
    best = max(range(2), key=lambda i: (record['val_scores'][i], -i))
    assert record['lr'] == pytest.approx(record['candidates'][best])
    *selects, final = record['stages']
    for stage, lr, score in zip(selects, record['candidates'], record['val_scores']):
        assert stage['train_split'] == 'train' and stage['lr'] == pytest.approx(lr)
        # one evaluation, on val200, after the last epoch: the test split is never seen
        assert [(e['split'], e['epoch']) for e in stage['evaluations']] == [('val', EPOCHS)]
        assert stage['evaluations'][0]['value'] == pytest.approx(score)
    assert final['train_split'] == 'trainval' and final['lr'] == pytest.approx(record['lr'])
    assert [(e['split'], e['epoch']) for e in final['evaluations']] == [('test', EPOCHS)]
    assert record['value'] == pytest.approx(final['evaluations'][0]['value'])
    assert 'protocol default: accuracy/top1' in out


def test_legacy_protocol_reports_the_best_test_evaluation(tmp_path):
    record, _ = _run(tmp_path, '--protocol', 'legacy')
    assert record['label'].startswith('legacy') and record['seed'] == 42  # the config's seed
    (stage, ) = record['stages']
    assert stage['train_split'] == 'trainval'
    evaluations = stage['evaluations']
    assert [(e['split'], e['epoch']) for e in evaluations] == [
        ('test', epoch) for epoch in range(1, EPOCHS + 1)]  # val_interval 1
    assert record['value'] == pytest.approx(max(e['value'] for e in evaluations))


def test_default_protocol_on_fgvc_retrains_on_train_plus_val(tmp_path):
    record, _ = _run(tmp_path, '--lr-scales', '1', cfg=FGVC_TINY)
    select, final = record['stages']
    assert (select['train_split'], select['train_size']) == ('train', 120)
    assert [e['split'] for e in select['evaluations']] == ['val']
    assert (final['train_split'], final['train_size']) == ('trainval', 240)
    assert [(e['split'], e['epoch']) for e in final['evaluations']] == [('test', EPOCHS)]


def test_seeds_give_mean_and_std_with_each_seed_recorded(tmp_path):
    summary, out = _run(tmp_path, '--protocol', 'legacy', '--seeds', '1', '2',
                        result='protocol_summary.json')
    assert summary['seeds'] == [1, 2] and summary['label'].startswith('legacy')
    for seed, path, value in zip((1, 2), summary['records'], summary['values']):
        with open(path) as f:
            record = json.load(f)
        assert (record['seed'], record['value']) == (seed, value)
        assert record['stages'][0]['work_dir'].endswith(osp.join(f'seed{seed}', 'legacy'))
    assert summary['mean'] == pytest.approx(sum(summary['values']) / 2)
    assert summary['std'] == pytest.approx(abs(summary['values'][0] - summary['values'][1])
                                           / 2 ** 0.5)
    assert '+-' in out
    # the benchmark table shows the mean and std and names the protocol
    row = load_seeds_result('LoRA', str(tmp_path / 'work' / 'protocol_summary.json'), 1024)
    table = to_markdown([row])
    assert f"{summary['mean']:.2f} ± {summary['std']:.2f}" in table
    assert table.endswith(f"Protocol: {summary['label']}.")


def test_benchmark_configs_default_to_the_fair_protocol():
    cfg = Config.fromfile(TINY)
    assert cfg.protocol == 'default'
    select = stage_config(cfg, 'select', '/tmp/x', seed=1, lr=0.5)
    assert select.train_cfg.val_begin > select.train_cfg.max_epochs  # no mid-training eval
    assert (select.optim_wrapper.optimizer.lr, select.randomness.seed) == (0.5, 1)


def test_a_dataset_without_splits_is_a_clear_error():
    cfg = Config.fromfile(TINY)
    cfg.train_dataloader.dataset = dict(type='CustomDataset', data_root='x')
    with pytest.raises(ValueError, match='has no split option'):
        stage_config(cfg, 'select', '/tmp/x', seed=0)
