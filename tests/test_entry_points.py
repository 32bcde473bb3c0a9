"""The run a config describes, started the way OpenMMLab users start it.

The shipped settings declare vpetl_mm's hooks themselves (configs/_base_/runtime/petl_hooks.py),
so each toolbox's own ``tools/train.py`` and ``tools/test.py`` -- the scripts inside the
installed wheel (``<pkg>/.mim/tools/``), which ``mim train`` / ``mim test`` run -- give the same
run as ours: ``petl_report.json``, adapter-only checkpoints that load weights-only, PPT next to
every evaluation, ``efficiency.json``; ``--resume`` continues from the adapter-only checkpoint,
and ``test.py`` evaluates it. One tiny copy of a real setting per toolbox (tests/configs/<family>/
*_tiny.py, which inherit configs/_base_), two or three iterations on data written in the real
layout. The mmpretrain run is repeated with our tools/train.py: same report, same checkpoint
keys, and nothing for it to add.
"""
import argparse
import glob
import importlib.util
import json
import os
import os.path as osp
import re
import sys
from typing import Callable, Dict, List, NamedTuple, Set, Tuple

import pytest
import torch

sys.path.insert(0, osp.dirname(__file__))

from datagen.video import make_video_dataset  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import MODELS, DefaultScope  # noqa: E402
from runner_utils import (PY, REPO, check_adapter_only, expected_ppt, run_tool,  # noqa: E402
                          write_tiny_vtab)
from test_runner_dense_methods import DATA_WRITERS  # noqa: E402

from vpetl_mm.apis import DEFAULT_PETL_HOOKS, add_petl_hooks, declared_hooks, hook_name  # noqa
from vpetl_mm.utils import find_petl_backbone  # noqa: E402

TINY = osp.join(REPO, 'tests', 'configs')
# the repository on the toolbox scripts' path: they import vpetl_mm through custom_imports
ENV = dict(PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get('PYTHONPATH')) if p))


def _tiny_vtab(root: str) -> List[str]:
    data = write_tiny_vtab(root)
    # one epoch of 3 iterations, a checkpoint and a validation each epoch
    return [f'{s}_dataloader.dataset.data_root={data}' for s in ('train', 'val', 'test')] + [
        'train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1']


# The dense tiny settings keep Swin-B / -L widths for realistic method ratios; here a 16-wide
# Swin is enough (the run's plumbing is under test) and keeps the three steps cheap.
_SMALL_SWIN = ['model.backbone.backbone.embed_dims=16', 'model.backbone.backbone.num_heads=(1,2)']


def _voc(root: str) -> List[str]:
    return DATA_WRITERS['voc_det'](root) + _SMALL_SWIN + [
        'model.backbone.petl.type=LoRA', 'model.neck.in_channels=[32]']


def _ade(root: str) -> List[str]:
    return DATA_WRITERS['ade'](root) + _SMALL_SWIN + [
        'model.backbone.petl.type=Adapter', 'model.decode_head.in_channels=[16,32]',
        'model.auxiliary_head.in_channels=32']


def _video(root: str) -> List[str]:
    data = make_video_dataset(root, num_train=4, num_val=2)
    opts = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2', 'model.backbone.petl.type=AdaptFormer']
    for split, ann in (('train', 'train_list'), ('val', 'val_list'), ('test', 'val_list')):
        opts += [f'{split}_dataloader.dataset.ann_file={data[ann]}',
                 f'{split}_dataloader.dataset.data_prefix.video={data["video_dir"]}']
    return opts


class Case(NamedTuple):
    """One toolbox: its package, tiny setting, data and what its run must show."""
    package: str  # the wheel whose .mim/tools/{train,test}.py run
    config: str  # under tests/configs
    scope: str
    data: Callable[[str], List[str]]  # writes the data, returns --cfg-options
    metric: str  # evaluator key (PPT is checked next to it)
    factor: float  # divides the metric into a fraction
    head_keys: Set[str]
    first: str  # the checkpoint the first run ends with
    resume: List[str]  # --cfg-options of the resumed run (one step further)
    resumed: str  # what mmengine logs when it resumed from ``first``
    last: str  # the checkpoint the resumed run ends with


# iteration-based settings: 2 iterations, then --resume to 3
_BY_ITER = ('iter_2.pth', ['train_cfg.max_iters=3'], 'resumed epoch: 0, iter: 2', 'iter_3.pth')
CASES: Dict[str, Case] = dict(
    mmpretrain=Case('mmpretrain', 'image/vit-b_vtab_tiny.py', 'mmpretrain', _tiny_vtab,
                    'accuracy/top1', 100., {'head.layers.head.weight'}, 'epoch_1.pth',
                    ['train_cfg.max_epochs=2'], 'resumed epoch: 1, iter: 3', 'epoch_2.pth'),
    mmdet=Case('mmdet', 'dense/retinanet_swin-l_voc0712_tiny.py', 'mmdet', _voc,
               'pascal_voc/mAP', 1., {'bbox_head.retina_cls.weight'}, *_BY_ITER),
    mmseg=Case('mmseg', 'dense/upernet_swin-l_ade20k_tiny.py', 'mmseg', _ade,
               'mIoU', 100., {'decode_head.conv_seg.weight'}, *_BY_ITER),
    mmaction=Case('mmaction', 'video/videomae-b_hmdb51_tiny.py', 'mmaction', _video,
                  'acc/top1', 1., {'cls_head.fc_cls.weight'}, *_BY_ITER),
)


def wheel_tool(package: str, name: str) -> str:
    """``<site-packages>/<package>/.mim/tools/<name>``: the script ``mim`` runs."""
    spec = importlib.util.find_spec(package)
    path = osp.join(osp.dirname(spec.origin), '.mim', 'tools', name)
    assert osp.isfile(path), f'{package} ships no {path}'
    return path


def tiny_config(case: Case, options: List[str]) -> Config:
    """The case's config with the model options of its run (data paths are irrelevant)."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)  # as the tools parse it
    cfg = Config.fromfile(osp.join(TINY, case.config))
    model = [o for o in options if o.startswith('model.')]
    if model:
        cfg.merge_from_dict(parser.parse_args(['--cfg-options', *model]).cfg_options)
    return cfg


def expectations(case: Case, options: List[str]) -> Tuple[int, torch.nn.Module]:
    """Trainable backbone parameters of the run's model, and its plain host backbone."""
    cfg = tiny_config(case, options)
    with DefaultScope.overwrite_default_scope(case.scope):
        return (find_petl_backbone(MODELS.build(cfg.model)).num_trainable(),
                MODELS.build(cfg.model.backbone.backbone))


def first_scalars(work_dir: str) -> List[dict]:
    """Records of the first run's ``vis_data/scalars.json`` (the one that validated)."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    assert files, f'no scalars.json under {work_dir}'
    with open(files[0]) as f:
        return [json.loads(line) for line in f if line.strip()]


def check_petl_run(case: Case, work: str, log: str, expected: int, host) -> dict:
    """The run's PETL outputs: report, adapter-only checkpoint, efficiency log, PPT."""
    with open(osp.join(work, 'petl_report.json')) as f:
        report = json.load(f)
    assert report['backbone_trainable'] == expected, report
    ckpt = check_adapter_only(osp.join(work, case.first), host, expected, case.head_keys,
                              marker='petl_')
    with open(osp.join(work, 'efficiency.json')) as f:
        assert json.load(f)['iters'] > 0
    val = [s for s in first_scalars(work) if case.metric in s]
    assert val, log[-3000:]
    assert val[-1][f'{case.metric}_ppt'] == expected_ppt(val[-1][case.metric] / case.factor,
                                                         expected)
    assert 'vpetl_mm added' not in log  # every hook came from the config
    return {'report': report, 'keys': sorted(ckpt['state_dict'])}


# Runs scripts one after another in one interpreter, each as ``python SCRIPT ARGS`` would
# (``__main__``, its own sys.argv): the toolbox and torch are imported once per toolbox, not
# once per step (an import costs ~5 s of CPU).
_DRIVER = """
import json, runpy, sys
for argv in json.loads(sys.argv[1]):
    print('=== step: ' + ' '.join(argv[:2]), flush=True)
    sys.argv = argv
    try:
        runpy.run_path(argv[0], run_name='__main__')
    except SystemExit as stop:
        if stop.code not in (None, 0):
            raise
"""


# the resumed run: training only (its one step would otherwise end in another validation)
_NO_VAL = ['val_dataloader=None', 'val_cfg=None', 'val_evaluator=None']


def run_steps(steps: List[List[str]], log: str) -> List[str]:
    """Run the scripts (each ``[script, *args]``) in one fresh interpreter; each one's log."""
    out = run_tool([PY, '-c', _DRIVER, json.dumps(steps)], log, env=ENV)
    return out.split('=== step: ')[1:]


@pytest.mark.parametrize('name', sorted(CASES))
def test_toolbox_train_resume_test(name, tmp_path):
    """The wheel's train.py, then its train.py --resume, then its test.py (and, for
    mmpretrain, our tools/train.py on the same config: the same run)."""
    case = CASES[name]
    cfg, work = osp.join(TINY, case.config), str(tmp_path / 'work')
    opts = case.data(str(tmp_path / 'data'))
    train = [wheel_tool(case.package, 'train.py'), cfg, '--work-dir', work]
    steps = [train + ['--cfg-options', *opts],
             # --resume reads the adapter-only checkpoint weights-only (the frozen weights come
             # from the config's init) and trains one step further
             train + ['--resume', '--cfg-options', *opts, *case.resume, *_NO_VAL],
             [wheel_tool(case.package, 'test.py'), cfg, osp.join(work, case.last),
              '--work-dir', str(tmp_path / 'test'), '--cfg-options', *opts]]
    ours = str(tmp_path / 'ours')
    if name == 'mmpretrain':
        steps.append([osp.join(REPO, 'tools', 'train.py'), cfg, '--work-dir', ours,
                      '--protocol', 'none', '--cfg-options', *opts])
    logs = run_steps(steps, str(tmp_path / 'steps.log'))
    expected, host = expectations(case, opts)
    outputs = check_petl_run(case, work, logs[0], expected, host)

    assert case.resumed in logs[1], logs[1][-3000:]
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read().strip().endswith(case.last)
    assert torch.load(osp.join(work, case.last), map_location='cpu',
                      weights_only=True)['meta']['petl']['adapter_only']

    assert 'Adapter-only checkpoint: initialising the model first' in logs[2]
    assert re.search(rf'{re.escape(case.metric)}_ppt: [0-9.]+', logs[2]), logs[2][-3000:]

    if name == 'mmpretrain':  # ours: the same report and checkpoint, nothing added
        assert check_petl_run(case, ours, logs[3], expected, host) == outputs


def test_mim_train(tmp_path):
    """``mim train mmpretrain CONFIG --gpus 0``: openmim runs the same wheel script.

    openmim is not part of the environment: it pulls openxlab / opendatalab, which pin
    setuptools 60.2, requests 2.28, packaging 24.2, urllib3 1.26 and tqdm 4.65 (downgrades of
    the pinned stack, checked with ``pip install --dry-run openmim``), and ``mim train`` only
    starts ``<pkg>/.mim/tools/train.py``, which test_toolbox_train_resume_test runs directly.
    Where mim is installed, this runs it once.
    """
    pytest.importorskip('mim', reason='openmim is not installed (see the docstring)')
    case = CASES['mmpretrain']
    work = str(tmp_path / 'work')
    opts = case.data(str(tmp_path / 'data'))
    log = run_tool(['mim', 'train', 'mmpretrain', osp.join(TINY, case.config), '--gpus', '0',
                    '--work-dir', work, '--cfg-options', *opts], str(tmp_path / 'mim.log'),
                   env=dict(ENV, PATH=os.pathsep.join((osp.dirname(PY), os.environ['PATH']))))
    check_petl_run(case, work, log, *expectations(case, opts))


def test_shipped_settings_declare_the_hooks_tools_train_adds():
    """Every setting base and example declares exactly DEFAULT_PETL_HOOKS, so tools/train.py
    adds nothing to them; a config of one's own without them gets them all."""
    names = [hook_name(h) for h in DEFAULT_PETL_HOOKS]
    fragment = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'runtime', 'petl_hooks.py'))
    assert [hook_name(h) for h in fragment.custom_hooks] == names
    # the model bases (the generated <backbone>_<dataset>.py settings inherit them, as do the
    # method configs: tests/data/config_digests.json pins their custom_hooks), one generated
    # setting per family, every example, and GPS (its own calibration entry)
    base = osp.join(REPO, 'configs', '_base_')
    paths = [osp.join(base, 'dense', f) for f in sorted(os.listdir(osp.join(base, 'dense')))]
    paths += [osp.join(base, f) for f in ('image/vit-b16.py', 'image/vit-b16_fgvc-cub.py',
                                          'video/videomae-b.py', 'video/videoswin-b_ssv2.py')]
    paths += [osp.join(REPO, 'configs', 'examples', f)
              for f in sorted(os.listdir(osp.join(REPO, 'configs', 'examples')))]
    paths += [osp.join(REPO, 'configs', 'demo', 'vit-tiny_digits5-9_lora.py'),
              osp.join(REPO, 'configs', 'benchmark', 'swin-b_cls.py'),
              osp.join(REPO, 'configs', 'gps', 'vit-b_vtab-dtd.py')]  # last: read below
    for path in paths:
        cfg = Config.fromfile(path, import_custom_modules=False)
        assert set(names) <= declared_hooks(cfg), path
        assert 'vpetl_mm' in cfg.custom_imports['imports'], path
        assert cfg.default_hooks.checkpoint.type == 'CheckpointHook', path
        before = list(cfg.custom_hooks)
        assert add_petl_hooks(cfg).custom_hooks == before, path
    gps = Config.fromfile(paths[-1], import_custom_modules=False)
    calibration = [h for h in gps.custom_hooks if hook_name(h) == 'PETLCalibrationHook']
    assert len(calibration) == 1 and calibration[0]['views'] == 2

    own = Config(dict(custom_hooks=[dict(type='EMAHook'),
                                    dict(type='vpetl_mm.PPTHook', metrics={'acc': 1.})]))
    added = add_petl_hooks(own).custom_hooks
    assert [hook_name(h) for h in added] == ['EMAHook', 'PPTHook'] + [
        n for n in names if n != 'PPTHook']
    assert added[1]['metrics'] == {'acc': 1.}  # a declared hook keeps its options
