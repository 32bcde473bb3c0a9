"""Checkpoints: safe and universal (issue 20, section 2).

Real files only: a stock mmengine run (no vpetl_mm hook: ``HistoryBuffer`` and numpy state in
the file) through ``tools/train.py``, resumed by ``tools/train.py --resume`` into a run whose
``PETLCheckpointHook`` also writes safetensors, tested by ``tools/test.py``; then files that are
not a checkpoint, are truncated, or belong to another model, each with its one-line error.
"""
import os.path as osp
import pickle
import subprocess

import mmengine
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner
from torch import nn

from runner_utils import (PY, REPO, VIT_CFG, check_resume, run_tool, train,  # noqa: I100
                          vtab_options, write_tiny_vtab)
from vpetl_mm.apis import load_petl_checkpoint
from vpetl_mm.apis.petl_checkpoint import read_checkpoint
from vpetl_mm.apis.stock_check import build_model
from vpetl_mm.compat import CheckpointError, load_checkpoint_file
from vpetl_mm.hooks import PETLCheckpointHook


def _config(path, body: str) -> str:
    with open(path, 'w') as f:
        f.write(f'_base_ = [{VIT_CFG!r}]\n{body}')
    return str(path)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """A stock run (6 iters) and ours resumed from its checkpoint (to 8), on tiny data."""
    tmp = tmp_path_factory.mktemp('ckpt')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(7)
        host = MODELS.build(Config.fromfile(VIT_CFG).model.backbone.backbone)
    pretrained = str(tmp / 'pretrained_vit.pth')  # a model-zoo style file: plain state dict
    torch.save({f'backbone.{k}': v for k, v in host.state_dict().items()}, pretrained)
    init = (f"model = dict(backbone=dict(backbone=dict(init_cfg=dict(\n"
            f"    _delete_=True, type='Pretrained', checkpoint={pretrained!r}, "
            f"prefix='backbone.'))))\n")
    stock_cfg = _config(tmp / 'stock.py', init + 'petl_default_hooks = False\n')
    dump = str(tmp / 'preds.pkl')
    ours_cfg = _config(tmp / 'ours.py', init + (
        "custom_hooks = [dict(type='vpetl_mm.PETLCheckpointHook', format='safetensors')]\n"
        "test_evaluator = [dict(type='Accuracy', topk=(1, )),\n"
        f"                  dict(type='DumpResults', out_file_path={dump!r})]\n"))
    opts = vtab_options(write_tiny_vtab(str(tmp / 'vtab')))
    work = str(tmp / 'work')
    train(stock_cfg, work, opts)
    stock = osp.join(work, 'iter_6.pth')
    resumed = train(ours_cfg, work, [*opts, 'train_cfg.max_iters=8'],
                    extra=['--resume', stock], log_name='resume.log')
    return dict(tmp=tmp, work=work, stock=stock, stock_cfg=stock_cfg, ours_cfg=ours_cfg,
                opts=opts, resumed=resumed, pretrained=pretrained, dump=dump)


def _tool_error(args) -> str:
    """Run a tool expected to fail; its output, which must be one error line, no traceback."""
    proc = subprocess.run([PY, *args], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=600)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


# -- stock checkpoints load weights-only, scoped -----------------------------------------------
def test_stock_checkpoint_loads_weights_only_with_scoped_allow_list(runs):
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer|numpy'):
        torch.load(runs['stock'], weights_only=True)  # what mmengine hits on torch >= 2.6
    ckpt = load_checkpoint_file(runs['stock'])
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert ckpt['meta']['iter'] == 6 and 'petl' not in ckpt['meta']
    assert {'optimizer', 'param_schedulers'} <= set(ckpt)
    log, _ = ckpt['message_hub']['log_scalars']['train/loss'].data
    assert isinstance(log, np.ndarray) and len(log) == 6
    with pytest.raises(pickle.UnpicklingError):  # the allow-list ended with the load
        torch.load(runs['stock'], weights_only=True)
    zoo = load_checkpoint_file(runs['pretrained'])  # a plain model-zoo state dict
    assert all(isinstance(v, torch.Tensor) for v in zoo.values())


class _Toy(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, x, mode='loss'):
        out = self.fc(x)
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


def _toy_runner(work_dir: str, epochs: int, **kwargs) -> Runner:
    data = [dict(x=torch.full((2, ), float(i))) for i in range(4)]
    return Runner(model=_Toy(), work_dir=work_dir, train_cfg=dict(by_epoch=True, max_epochs=epochs),
                  train_dataloader=dict(dataset=data, batch_size=2, collate_fn=dict(
                      type='default_collate'), sampler=dict(type='DefaultSampler', shuffle=False)),
                  optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
                  param_scheduler=dict(type='MultiStepLR', milestones=[1]),
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
                  **kwargs)


def test_a_plain_mmengine_runner_resumes_its_stock_checkpoint(tmp_path):
    # any entry point that builds a Runner (a toolbox's tools/train.py, mim, a script) resumes
    # once vpetl_mm is imported (the config's custom_imports); no vpetl_mm hook involved
    _toy_runner(str(tmp_path), 1, experiment_name='first').train()
    runner = _toy_runner(str(tmp_path), 2, experiment_name='second', resume=True,
                         load_from=str(tmp_path / 'epoch_1.pth'))
    runner.train()
    assert runner.train_loop.epoch == 2
    loss = runner.message_hub.get_scalar('train/loss')
    assert loss.data[1].size == 4  # two iterations restored from the file, two trained


def test_train_resumes_a_stock_checkpoint(runs):
    check_resume(runs['work'], runs['resumed'], 6, 8)
    assert 'local_weights_only backend' in runs['resumed']


def test_test_py_evaluates_a_stock_checkpoint(runs, tmp_path):
    out = str(tmp_path / 'metrics.json')
    run_tool([PY, 'tools/test.py', runs['stock_cfg'], runs['stock'], '--work-dir',
              str(tmp_path / 'test'), '--out', out, '--cfg-options', *runs['opts']],
             str(tmp_path / 'test.log'))
    assert osp.isfile(out)


# -- safetensors adapter-only checkpoints ------------------------------------------------------
def _outputs(cfg_path: str, checkpoint: str) -> torch.Tensor:
    cfg = Config.fromfile(cfg_path)
    torch.manual_seed(99)  # another random init: only the files decide the outputs
    model = build_model(cfg).eval()
    report = load_petl_checkpoint(model, checkpoint)
    assert report['adapter_only'] and report['restored_from_init'] > 0
    with torch.no_grad():
        return model(torch.linspace(-1, 1, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32), mode='tensor')


def test_safetensors_adapter_checkpoint_round_trips(runs):
    st = osp.join(runs['work'], 'iter_8.safetensors')
    with open(st, 'rb') as f:
        assert b'\x80\x02' not in f.read(64)  # no pickle header: a JSON header, then tensors
    ckpt = read_checkpoint(st)
    assert ckpt['meta']['petl']['adapter_only'] is True and ckpt['meta']['iter'] == 8
    pth = read_checkpoint(osp.join(runs['work'], 'iter_8.pth'))
    assert set(ckpt['state_dict']) == set(pth['state_dict'])
    a = _outputs(runs['ours_cfg'], st)
    b = _outputs(runs['ours_cfg'], osp.join(runs['work'], 'iter_8.pth'))
    assert torch.equal(a, b)


def test_test_py_reads_safetensors_like_pth(runs, tmp_path):
    scores = []
    for ext in ('pth', 'safetensors'):
        run_tool([PY, 'tools/test.py', runs['ours_cfg'], osp.join(runs['work'], f'iter_8.{ext}'),
                  '--work-dir', str(tmp_path / ext), '--cfg-options', *runs['opts']],
                 str(tmp_path / f'{ext}.log'))
        scores.append(torch.stack([torch.as_tensor(s['pred_score'])
                                   for s in mmengine.load(runs['dump'])]))
    assert torch.equal(scores[0], scores[1])


def test_checkpoint_hook_refuses_unknown_format():
    with pytest.raises(ValueError, match="format='bin'"):
        PETLCheckpointHook(format='bin')


# -- bad files: one line each ------------------------------------------------------------------
def _one_line(err: pytest.ExceptionInfo, path: str) -> str:
    msg = str(err.value)
    assert '\n' not in msg and path in msg, msg
    return msg


def test_text_file_is_not_a_checkpoint(tmp_path):
    path = str(tmp_path / 'notes.pth')
    with open(path, 'w') as f:
        f.write('this is a text file\n')
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert 'not a checkpoint' in _one_line(err, path)


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = str(tmp_path / 'noise.pth')
    with open(path, 'wb') as f:
        f.write(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert 'not a checkpoint' in _one_line(err, path)


def test_truncated_checkpoint(runs, tmp_path):
    path = str(tmp_path / 'half.pth')
    with open(runs['stock'], 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert 'truncated' in _one_line(err, path)


def _model(runs):
    cfg = Config.fromfile(runs['stock_cfg'])
    return build_model(cfg)


def test_checkpoint_without_the_petl_tensors(runs, tmp_path):
    path = str(tmp_path / 'host_only.pth')
    state = read_checkpoint(runs['stock'])['state_dict']
    torch.save({'state_dict': {k: v for k, v in state.items() if 'lora' not in k}}, path)
    with pytest.raises(CheckpointError) as err:
        load_petl_checkpoint(_model(runs), path)
    assert 'these PETL tensors are missing' in _one_line(err, path)
    line = _tool_error(['tools/test.py', runs['stock_cfg'], path, '--work-dir',
                        str(tmp_path / 'test'), '--cfg-options', *runs['opts']])
    assert path in line and 'these PETL tensors are missing' in line, line


def test_checkpoint_with_host_tensors_of_another_shape(runs, tmp_path):
    path = str(tmp_path / 'other_host.pth')
    state = read_checkpoint(runs['stock'])['state_dict']
    key = next(k for k, v in state.items() if 'lora' not in k and k.startswith('backbone.')
               and v.dim() == 2)
    state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
    torch.save({'state_dict': state}, path)
    with pytest.raises(CheckpointError) as err:
        load_petl_checkpoint(_model(runs), path)
    msg = _one_line(err, path)
    assert 'another shape' in msg and key in msg


class _Payload:
    """A class no allow-list names: a pickle that would construct it must be refused."""


def test_objects_outside_the_allow_list_are_refused(tmp_path):
    path = str(tmp_path / 'payload.pth')
    torch.save({'state_dict': {}, 'meta': {'x': _Payload()}}, path)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert 'does not allow' in _one_line(err, path) and '_Payload' in str(err.value)


class _Exploit:
    """Unpickling it would call ``print``: weights-only loading must refuse it."""

    def __reduce__(self):
        return print, ('unpickled code ran', )


@pytest.mark.parametrize('name,payload', [
    ('stock.pth', dict(state_dict={'w': torch.ones(2)}, meta=dict(seed=np.int64(3)),
                       message_hub=dict(log_scalars={'loss': HistoryBuffer([1.0], [1])}))),
    ('exploit.pth', dict(state_dict={'w': torch.ones(2)}, meta=_Exploit()))])
def test_remote_checkpoints_load_weights_only(tmp_path, monkeypatch, name, payload):
    """mmengine's http / model-zoo schemes download through the weights-only loader (torch's
    ``load_state_dict_from_url`` would unpickle anything): no network, the download is a copy."""
    served = tmp_path / 'served.pth'
    torch.save(payload, served)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file',
                        lambda url, dst, *a, **k: served.rename(dst))
    url = f'https://download.example.invalid/zoo/{name}'
    if name == 'exploit.pth':
        with pytest.raises(CheckpointError) as err:
            mmengine.runner.CheckpointLoader.load_checkpoint(url, map_location='cpu')
        _one_line(err, name)
        return
    ckpt = mmengine.runner.CheckpointLoader.load_checkpoint(url, map_location='cpu')
    assert ckpt['meta']['seed'] == 3 and torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    assert (tmp_path / 'hub' / 'checkpoints' / name).is_file()  # torch hub's own cache path
