"""The command-line tools: ``tools/analysis/params.py``, ``tools/dist_train.sh`` (2 CPU
processes over gloo), ``tools/test.py`` on an adapter-only checkpoint whose frozen backbone
comes from a Pretrained ``init_cfg``, and ``tools/train.py --amp``."""
import importlib.util
import json
import os.path as osp
import re
import socket
import sys

import mmengine
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(__file__))

from runner_utils import (PY, REPO, VIDEO_CFG, VIT_CFG, check_adapter_only,  # noqa
                                   expected_ppt, host_backbone, latest_scalars, run_tool,
                                   train, vtab_options, write_tiny_vtab)

VIT_HEAD = 32 * 4 + 4  # VisionTransformerClsHead: C * classes + classes
VIDEO_HEAD = 32 * 3 + 3  # TimeSformerHead


def write_config(path, base: str, body: str) -> str:
    with open(path, 'w') as f:
        f.write(f'_base_ = [{base!r}]\n{body}')
    return str(path)


def params_json(cfg: str, tmp_path, name: str) -> dict:
    out = run_tool([PY, 'tools/analysis/params.py', cfg, '--json'],
                   str(tmp_path / f'{name}.log'))
    return json.loads(out.strip().splitlines()[-1])


def host_total(cfg: str, scope: str) -> int:
    return sum(p.numel() for p in host_backbone(cfg, scope).parameters())


# -- (1) params.py ---------------------------------------------------------------------------
def test_params_json(tmp_path):
    # LoRA rank 4 on q and v of the fused qkv: blocks * 4 * C * r.
    lora = 3 * 4 * 32 * 4
    assert params_json(VIT_CFG, tmp_path, 'vit_lora') == dict(
        backbone_trainable=lora, trainable=lora + VIT_HEAD,
        total=host_total(VIT_CFG, 'mmpretrain') + lora + VIT_HEAD)

    # Adapter after the MLP, bottleneck m: per block 2*C*m + m + C.
    adapter_cfg = write_config(tmp_path / 'vit_adapter.py', VIT_CFG, (
        "model = dict(backbone=dict(petl=dict(_delete_=True, type='Adapter', bottleneck=8)))\n"))
    adapter = 3 * (2 * 32 * 8 + 8 + 32)
    assert params_json(adapter_cfg, tmp_path, 'vit_adapter') == dict(
        backbone_trainable=adapter, trainable=adapter + VIT_HEAD,
        total=host_total(VIT_CFG, 'mmpretrain') + adapter + VIT_HEAD)

    video_lora = 2 * 4 * 32 * 4
    assert params_json(VIDEO_CFG, tmp_path, 'videomae_lora') == dict(
        backbone_trainable=video_lora, trainable=video_lora + VIDEO_HEAD,
        total=host_total(VIDEO_CFG, 'mmaction') + video_lora + VIDEO_HEAD)


# -- (2) dist_train.sh, 2 CPU processes -------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_two_cpu_processes(tmp_path):
    data = write_tiny_vtab(str(tmp_path / 'vtab'))  # 6 val images
    work = str(tmp_path / 'work')
    out = run_tool(['bash', 'tools/dist_train.sh', VIT_CFG, '2', '--work-dir', work,
                    '--cfg-options', *vtab_options(data)], str(tmp_path / 'dist.log'),
                   env=dict(PYTHON=PY, PORT=str(free_port())))
    assert 'Distributed training: True' in out
    assert 'GPU number: 2' in out  # mmengine prints the world size under this name
    assert 'CPU distributed run: gloo backend, rank 0 of 2.' in out
    # The validation set (6 images, batch 2) is sharded over the 2 ranks: 2 batches each,
    # against 3 in a single-process run; training ran to the end on both ranks (DDP's
    # gradient all-reduce needs both) and rank 0 saved the adapter-only checkpoint.
    assert re.search(r'Iter\(val\) \[2/2\]', out) and not re.search(r'Iter\(val\) \[3/3\]', out)
    assert re.search(r'Iter\(train\) \[6/6\]', out)
    cfg_dump = Config.fromfile(osp.join(work, 'vit-tiny_vtab-petl.py'))
    assert cfg_dump.model_wrapper_cfg.device_ids is None
    assert cfg_dump.env_cfg.dist_cfg.backend == 'gloo'
    check_adapter_only(osp.join(work, 'iter_6.pth'), host_backbone(VIT_CFG, 'mmpretrain'),
                       3 * 4 * 32 * 4, {'head.layers.head.weight'})
    val = [s for s in latest_scalars(work) if 'accuracy/top1' in s]
    assert len(val) == 1 and 'accuracy/top1_ppt' in val[0]


# -- (3) test.py on an adapter-only checkpoint with a Pretrained backbone -------------------------
def _scores(cfg: Config, state_dict: dict, pretrained_init: bool) -> torch.Tensor:
    """Test-set scores of the config's model, in this process."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(1234)  # a different random init from the training run's
        # as the Runner does: the top-level data_preprocessor (mean/std/to_rgb) goes to the model
        model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
        if pretrained_init:
            model.init_weights()
        _, unexpected = model.load_state_dict(state_dict, strict=False)
        assert not unexpected
        model.eval()
        loader = Runner.build_dataloader(cfg.test_dataloader)
        with torch.no_grad():
            samples = [s for batch in loader for s in model.test_step(batch)]
    return torch.stack([s.pred_score for s in samples])


def test_test_py_adapter_only_checkpoint_uses_pretrained_backbone(tmp_path):
    # The "pretrained" backbone: a host ViT with its own random weights, saved in the layout of
    # a full mmpretrain checkpoint (backbone.* keys), loaded with prefix='backbone.'.
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(7)
        host = MODELS.build(Config.fromfile(VIT_CFG).model.backbone.backbone)
        with torch.no_grad():  # built, not initialised: give the zero tokens values too
            host.pos_embed.normal_(std=0.5)
            host.cls_token.normal_(std=0.5)
    pretrained = str(tmp_path / 'pretrained_vit.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in host.state_dict().items()}},
               pretrained)
    dump = str(tmp_path / 'preds.pkl')
    cfg_path = write_config(tmp_path / 'vit_pretrained.py', VIT_CFG, (
        f"model = dict(backbone=dict(backbone=dict(init_cfg=dict(\n"
        f"    _delete_=True, type='Pretrained', checkpoint={pretrained!r}, prefix='backbone.'))))\n"
        f"test_evaluator = [dict(type='Accuracy', topk=(1, )),\n"
        f"                  dict(type='DumpResults', out_file_path={dump!r})]\n"))
    data = write_tiny_vtab(str(tmp_path / 'vtab'))
    opts = vtab_options(data)
    work = str(tmp_path / 'work')
    out = train(cfg_path, work, opts)
    assert re.search(r'Load report \(host init_weights\): (\d+)/\1 host tensors', out)
    ckpt_path = osp.join(work, 'iter_6.pth')
    lora = 3 * 4 * 32 * 4
    ckpt = check_adapter_only(ckpt_path, host, lora, {'head.layers.head.weight'})

    metrics_file = str(tmp_path / 'metrics.json')
    out = run_tool([PY, 'tools/test.py', cfg_path, ckpt_path, '--work-dir',
                    str(tmp_path / 'test'), '--out', metrics_file, '--cfg-options', *opts],
                   str(tmp_path / 'test.log'))
    assert 'Adapter-only checkpoint: initialising the model first' in out
    assert re.search(r'Load report \(host init_weights\): (\d+)/\1 host tensors', out)
    assert re.search(r'Load report \(checkpoint load\): 0/\d+ host tensors and 6/6 PETL', out)
    with open(metrics_file) as f:
        metrics = json.load(f)
    top1 = metrics['accuracy/top1']
    assert 0. <= top1 <= 100.
    assert metrics['accuracy/top1_ppt'] == expected_ppt(top1 / 100., lora)

    # The evaluated model is pretrained backbone + trained adapters and head: its scores are
    # those of the same model assembled here, and not those of a randomly initialised backbone.
    cfg = Config.fromfile(cfg_path)
    cfg.merge_from_dict({o.split('=')[0]: o.split('=')[1] for o in opts})
    dumped = torch.stack([torch.as_tensor(s['pred_score']) for s in mmengine.load(dump)])
    expected = _scores(cfg, ckpt['state_dict'], pretrained_init=True)
    assert torch.allclose(dumped, expected, atol=1e-5), (dumped - expected).abs().max()
    random_backbone = _scores(cfg, ckpt['state_dict'], pretrained_init=False)
    assert not torch.allclose(dumped, random_backbone, atol=1e-3)
    with open(osp.join(data, 'test.txt')) as f:
        labels = torch.tensor([int(line.split()[1]) for line in f])
    accuracy = 100. * float((expected.argmax(1) == labels).float().mean())
    assert top1 == pytest.approx(accuracy, abs=1e-3)


# -- (4) train.py --amp -----------------------------------------------------------------------
def _load_train_tool():
    spec = importlib.util.spec_from_file_location('vpetl_tools_train',
                                                  osp.join(REPO, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dry_train(monkeypatch, argv) -> Config:
    """Run ``tools/train.py``'s main() with a fake Runner; return the config it would use."""
    tool = _load_train_tool()
    seen = {}

    class FakeRunner:
        @staticmethod
        def from_cfg(cfg):
            seen['cfg'] = cfg
            return FakeRunner()

        def train(self):
            seen['trained'] = True

    monkeypatch.setattr('mmengine.runner.Runner', FakeRunner)  # what build_runner builds
    monkeypatch.setattr(sys, 'argv', ['tools/train.py', *argv])
    tool.main()
    assert seen.get('trained')
    return seen['cfg']


def test_train_amp_flag_refuses_cpu_clearly(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit, match='--amp needs a GPU'):
        _dry_train(monkeypatch, [VIT_CFG, '--work-dir', str(tmp_path / 'a'), '--amp'])


def test_train_amp_flag_sets_amp_optim_wrapper(monkeypatch, tmp_path):
    # mmengine's AmpOptimWrapper asserts a GPU/NPU/MLU/MUSA device, so no real CPU AMP run:
    # pretend a GPU and check what train.py hands to the Runner.
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = _dry_train(monkeypatch, [VIT_CFG, '--work-dir', str(tmp_path / 'a'), '--amp'])
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.optim_wrapper.constructor == 'vpetl_mm.PETLOptimWrapperConstructor'
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    hooks = {h['type'] for h in cfg.custom_hooks}
    assert {'vpetl_mm.PETLCheckpointHook', 'vpetl_mm.PPTHook'} <= hooks

    cfg = _dry_train(monkeypatch, [VIT_CFG, '--work-dir', str(tmp_path / 'b')])
    assert cfg.optim_wrapper.type == 'OptimWrapper'

    already = write_config(tmp_path / 'amp.py', VIT_CFG, (
        "optim_wrapper = dict(type='AmpOptimWrapper', loss_scale=512.)\n"))
    cfg = _dry_train(monkeypatch, [already, '--work-dir', str(tmp_path / 'c'), '--amp'])
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.loss_scale == 512.

    other = write_config(tmp_path / 'apex.py', VIT_CFG, (
        "optim_wrapper = dict(type='ApexOptimWrapper')\n"))
    with pytest.raises(ValueError, match='--amp needs optim_wrapper.type OptimWrapper'):
        _dry_train(monkeypatch, [other, '--work-dir', str(tmp_path / 'd'), '--amp'])
