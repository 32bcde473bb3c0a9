"""Helpers for the end-to-end tool runs (subprocesses of tools/*.py on tiny data)."""
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

from mmengine.config import Config  # noqa: E402
from mmengine.registry import MODELS, DefaultScope  # noqa: E402
from vpetl_mm.benchmark.record import labels_from_path  # noqa: E402
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
                       head_keys: Set[str], marker: str = 'lora_') -> dict:
    """The checkpoint loads weights-only, holds no frozen host parameter, and its backbone
    tensors are exactly the host buffers plus PETL tensors (names containing ``marker``) of the
    expected total size."""
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    state = ckpt['state_dict']
    host_params = {f'backbone.{n}' for n, _ in host.named_parameters()}
    host_buffers = {f'backbone.{n}' for n, _ in host.named_buffers()}
    assert not host_params & set(state), sorted(host_params & set(state))[:5]
    petl = {k: v for k, v in state.items()
            if k.startswith('backbone.') and k not in host_buffers}
    assert petl and all(marker in k for k in petl), sorted(petl)
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


def result_record(config='configs/lora/vit-b_vtab-dtd.py', seed=0, protocol='default', value=70.,
                  status='done', end='2026-01-01T00:00:00+00:00', **kw) -> dict:
    """A run record as tools/train.py writes it, labelled from the config path."""
    labels = labels_from_path(config)
    record = dict(status=status, config=config, seed=seed, protocol=protocol,
                  protocol_label=protocol, method=labels['method'], backbone=labels['backbone'],
                  dataset=labels['dataset'], benchmark=labels['benchmark'],
                  metric='accuracy/top1', value=value, value_pct=value,
                  metrics={'accuracy/top1': value}, params=294912, end=end)
    record.update(kw)
    return record


def md_row(md: str, name: str) -> list:
    """The cells of the markdown table row that starts with ``| name ``."""
    line = next(x for x in md.splitlines() if x.startswith(f'| {name} '))
    return [c.strip() for c in line.strip().strip('|').split('|')]
