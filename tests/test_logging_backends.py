"""TensorBoard logging through mmengine's ``vis_backends``, switched on by the README's line.

The line is read from README.md ("Logging: TensorBoard and Weights & Biases") and appended to a
config of the tiny image setting; a Runner trains it one epoch and the TensorBoard event file
must hold the loss, the validation top-1 and its PPT (added by PPTHook before LoggerHook),
with the values mmengine's local backend wrote. Skipped where tensorboard is not installed
(``pip install -e '.[log]'``; ``make env`` installs it).
"""
import glob
import json
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(__file__))

from mmengine.config import Config  # noqa: E402
from runner_utils import REPO, write_tiny_vtab  # noqa: E402

from vpetl_mm.apis import build_runner  # noqa: E402

TINY = osp.join(REPO, 'tests', 'configs', 'image', 'vit-b_vtab_tiny.py')


def readme_switch(backend: str) -> str:
    """The README's one-line config switch that adds ``backend``."""
    with open(osp.join(REPO, 'README.md')) as f:
        lines = [line.strip() for line in f
                 if line.startswith('visualizer = dict(vis_backends=') and backend in line]
    assert len(lines) == 1, f'README.md documents no one-line {backend} switch'
    return lines[0]


def test_readme_documents_wandb():
    line = readme_switch('WandbVisBackend')
    # a config line mmengine reads: the backend list keeps the local one
    cfg = Config.fromstring(line, '.py')
    assert [b['type'] for b in cfg.visualizer.vis_backends] == ['LocalVisBackend',
                                                               'WandbVisBackend']


def test_tensorboard_event_file(tmp_path):
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    data = write_tiny_vtab(str(tmp_path / 'vtab'))
    path = tmp_path / 'tb.py'
    path.write_text(f'_base_ = [{TINY!r}]\n{readme_switch("TensorboardVisBackend")}\n')
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict({f'{s}_dataloader.dataset.data_root': data
                         for s in ('train', 'val', 'test')})
    cfg.merge_from_dict({'train_cfg.max_epochs': 1, 'default_hooks.checkpoint.interval': 1})
    cfg.work_dir, cfg.launcher = str(tmp_path / 'work'), 'none'
    build_runner(cfg).train()

    events = glob.glob(osp.join(cfg.work_dir, '*', 'vis_data', 'events.out.tfevents.*'))
    assert len(events) == 1, events
    board = EventAccumulator(events[0])
    board.Reload()
    tags = set(board.Tags()['scalars'])
    assert {'loss', 'lr', 'accuracy/top1', 'accuracy/top1_ppt'} <= tags, tags
    with open(glob.glob(osp.join(cfg.work_dir, '*', 'vis_data', 'scalars.json'))[0]) as f:
        local = [json.loads(line) for line in f]
    val = [r for r in local if 'accuracy/top1' in r]
    for key in ('accuracy/top1', 'accuracy/top1_ppt'):
        (event, ) = board.Scalars(key)
        assert event.step == val[0]['step']
        assert event.value == pytest.approx(val[0][key], rel=1e-6)
    assert len(board.Scalars('loss')) == sum('loss' in r for r in local) > 0
