"""End-to-end runs of ``tools/train.py`` on CPU: mmpretrain image classification (VTAB-1k
layout) and mmaction2 video recognition (RAWFRAMES), each with LoRA, real metrics, PETL hooks,
adapter-only checkpoints and ``--resume``.

Each run is a subprocess on tiny models and data written into ``tmp_path`` (no network).
"""
import glob
import json
import math
import os
import os.path as osp
import re
import subprocess
import sys
from typing import Dict, List, Sequence, Set

import numpy as np
import torch

sys.path.insert(0, osp.dirname(__file__))

from datagen.rawframes import write_rawframes  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import MODELS, DefaultScope  # noqa: E402
from vpetl_mm.datasets import write_vtab1k  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PY = sys.executable
VIT_CFG = osp.join(REPO, 'tests', 'configs', 'vit-tiny_vtab-petl.py')
VIDEO_CFG = osp.join(REPO, 'tests', 'configs', 'videomae-tiny_rawframes-petl.py')
TIMEOUT = 600


# -- helpers shared with test_tools.py -------------------------------------------------------
def run_tool(args: Sequence[str], log: str, env: Dict[str, str] = None,
             timeout: int = TIMEOUT) -> str:
    """Run a command from the repository root, save its output to ``log``; assert rc == 0."""
    full_env = dict(os.environ, PYTHONUNBUFFERED='1')
    full_env.update(env or {})
    proc = subprocess.run(list(args), cwd=REPO, env=full_env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    with open(log, 'w') as f:
        f.write(proc.stdout)
    assert proc.returncode == 0, f'{args} failed (rc {proc.returncode}):\n{proc.stdout[-6000:]}'
    return proc.stdout


def train(cfg: str, work_dir: str, options: Sequence[str], extra: Sequence[str] = (),
          log_name: str = 'train.log') -> str:
    os.makedirs(work_dir, exist_ok=True)
    return run_tool([PY, 'tools/train.py', cfg, '--work-dir', work_dir, *extra,
                     '--cfg-options', *options], osp.join(work_dir, log_name))


def write_tiny_vtab(root: str, num_classes: int = 4, n_train: int = 12, n_val: int = 6,
                    n_test: int = 8, size: int = 32, seed: int = 0) -> str:
    """Class-coloured noisy 32x32 images in the VTAB-1k layout (via ``write_vtab1k``)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val + n_test
    labels = np.arange(n) % num_classes
    colours = rng.integers(0, 256, size=(num_classes, 3))
    images = np.clip(colours[labels][:, None, None, :]
                     + rng.normal(0, 40, size=(n, size, size, 3)), 0, 255).astype(np.uint8)
    idx = list(range(n))
    return write_vtab1k(root, images, labels, dict(
        train=idx[:n_train], val=idx[n_train:n_train + n_val], test=idx[n_train + n_val:]))


def vtab_options(root: str) -> List[str]:
    return [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')]


def rawframes_options(root: str, ann: Dict[str, str]) -> List[str]:
    opts = []
    for split, ann_split in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        opts += [f'{split}_dataloader.dataset.ann_file={ann[ann_split]}',
                 f'{split}_dataloader.dataset.data_prefix.img={osp.join(root, "rawframes")}']
    return opts


def latest_scalars(work_dir: str) -> List[dict]:
    """Records of the newest run's ``vis_data/scalars.json``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    assert files, f'no scalars.json under {work_dir}'
    with open(files[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def host_backbone(cfg_path: str, scope: str):
    """The plain host backbone of a config (built without vpetl_mm's wrapper)."""
    cfg = Config.fromfile(cfg_path)
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg.model.backbone.backbone)


def expected_ppt(metric_fraction: float, params: int) -> float:
    """V-PETL Bench PPT, written out here independently of vpetl_mm.evaluation."""
    return round(metric_fraction * math.exp(-math.log10(params / 1e7 + 1)), 4)


def check_adapter_only(ckpt_path: str, host, expected_petl_params: int,
                       head_keys: Set[str]) -> dict:
    """The checkpoint loads weights-only, holds no frozen host parameter, and its backbone
    tensors are exactly the host buffers plus LoRA tensors of the expected total size."""
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    state = ckpt['state_dict']
    host_params = {f'backbone.{n}' for n, _ in host.named_parameters()}
    host_buffers = {f'backbone.{n}' for n, _ in host.named_buffers()}
    assert not host_params & set(state), sorted(host_params & set(state))[:5]
    petl = {k: v for k, v in state.items()
            if k.startswith('backbone.') and k not in host_buffers}
    assert petl and all('lora_' in k for k in petl), sorted(petl)
    assert sum(v.numel() for v in petl.values()) == expected_petl_params
    assert head_keys <= set(state), sorted(state)
    assert ckpt['meta']['petl']['adapter_only'] is True
    assert ckpt['meta']['petl']['dropped_frozen'] == len(host_params)
    return ckpt


def check_report(work_dir: str, expected: int) -> None:
    with open(osp.join(work_dir, 'petl_report.json')) as f:
        report = json.load(f)
    assert report['backbone_trainable'] == expected, report
    assert report['groups']['backbone'][0] == expected


def check_resume(work_dir: str, out: str, start: int, stop: int) -> None:
    assert f'resumed epoch: 0, iter: {start}' in out, out[-3000:]
    iters = [int(m) for m in re.findall(rf'Iter\(train\) \[\s*(\d+)/{stop}\]', out)]
    assert iters == list(range(start + 1, stop + 1)), iters
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip().endswith(f'iter_{stop}.pth')
    ckpt = torch.load(osp.join(work_dir, f'iter_{stop}.pth'), map_location='cpu',
                      weights_only=True)
    assert ckpt['meta']['iter'] == stop


# -- tests -----------------------------------------------------------------------------------
def test_mmpretrain_vit_lora_vtab_train_and_resume(tmp_path):
    data = write_tiny_vtab(str(tmp_path / 'vtab'))
    work = str(tmp_path / 'work')
    opts = vtab_options(data)
    train(VIT_CFG, work, opts)

    # LoRA rank r on q and v of the fused qkv: per block 2 updates of r*(C + C) parameters.
    blocks, C, r = 3, 32, 4
    expected = blocks * 4 * C * r
    check_report(work, expected)
    host = host_backbone(VIT_CFG, 'mmpretrain')
    check_adapter_only(osp.join(work, 'iter_6.pth'), host, expected,
                       {'head.layers.head.weight', 'head.layers.head.bias'})
    assert osp.isfile(osp.join(work, 'efficiency.json'))

    val = [s for s in latest_scalars(work) if 'accuracy/top1' in s]
    assert len(val) == 1 and val[0]['step'] == 6
    top1 = val[0]['accuracy/top1']
    assert 0. <= top1 <= 100.
    assert val[0]['accuracy/top1_ppt'] == expected_ppt(top1 / 100., expected)

    out = train(VIT_CFG, work, opts + ['train_cfg.max_iters=9'], ['--resume'],
                log_name='resume.log')
    assert 'Auto resumed from the latest checkpoint' in out
    assert re.search(r'Load report \(checkpoint load\): 0/\d+ host tensors and 6/6 PETL tensors '
                     r'loaded \(adapter-only checkpoint', out)
    check_resume(work, out, 6, 9)
    val = [s for s in latest_scalars(work) if 'accuracy/top1' in s]
    assert val and val[-1]['step'] == 9 and 'accuracy/top1_ppt' in val[-1]


def test_mmaction_videomae_lora_rawframes_train_and_resume(tmp_path):
    root = str(tmp_path / 'rawframes_data')
    ann = write_rawframes(root, dict(train=[0, 1, 2, 0, 1, 2], val=[0, 1, 2, 0]),
                          num_frames=8, size=32)
    assert osp.isfile(osp.join(root, 'rawframes', 'train_video_0000', 'img_00008.jpg'))
    with open(ann['train']) as f:
        assert f.readline().split() == ['train_video_0000', '8', '0']
    work = str(tmp_path / 'work')
    opts = rawframes_options(root, ann)
    train(VIDEO_CFG, work, opts)

    blocks, C, r = 2, 32, 4
    expected = blocks * 4 * C * r
    check_report(work, expected)
    host = host_backbone(VIDEO_CFG, 'mmaction')
    check_adapter_only(osp.join(work, 'iter_4.pth'), host, expected,
                       {'cls_head.fc_cls.weight', 'cls_head.fc_cls.bias'})

    val = [s for s in latest_scalars(work) if 'acc/top1' in s]
    assert len(val) == 1 and val[0]['step'] == 4
    top1 = val[0]['acc/top1']
    assert top1 in {i / 4 for i in range(5)}  # 4 validation clips
    assert val[0]['acc/top1_ppt'] == expected_ppt(top1, expected)

    out = train(VIDEO_CFG, work, opts + ['train_cfg.max_iters=6'], ['--resume'],
                log_name='resume.log')
    # 1 host tensor: VideoMAE's sinusoidal pos_embed buffer, saved with the adapters
    assert re.search(r'Load report \(checkpoint load\): 1/\d+ host tensors and 4/4 PETL tensors '
                     r'loaded \(adapter-only checkpoint', out)
    check_resume(work, out, 4, 6)
    val = [s for s in latest_scalars(work) if 'acc/top1' in s]
    assert val and val[-1]['step'] == 6 and 'acc/top1_ppt' in val[-1]
