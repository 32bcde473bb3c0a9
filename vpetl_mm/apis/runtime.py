"""Runtime set-up shared by ``tools/train.py`` and ``tools/test.py``."""
import os
from typing import List

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log

DEFAULT_PETL_HOOKS: List[dict] = [
    dict(type='vpetl_mm.PETLCheckpointHook'),
    dict(type='vpetl_mm.PETLReportHook'),
    dict(type='vpetl_mm.EfficiencyHook'),
    dict(type='vpetl_mm.PPTHook'),
]


def add_petl_hooks(cfg: Config) -> Config:
    """Add vpetl_mm's hooks to ``cfg.custom_hooks`` unless the config already has them.

    A config opts out with ``petl_default_hooks = False``; a hook it lists itself (with its own
    options) is kept as written.
    """
    if not cfg.get('petl_default_hooks', True):
        return cfg
    hooks = list(cfg.get('custom_hooks', None) or [])
    present = {str(h.get('type')).split('.')[-1] for h in hooks if isinstance(h, dict)}
    for hook in DEFAULT_PETL_HOOKS:
        if hook['type'].split('.')[-1] not in present:
            hooks.append(dict(hook))
    cfg.custom_hooks = hooks
    return cfg


def setup_distributed_cpu(cfg: Config, launcher: str) -> Config:
    """Make ``--launcher pytorch`` work without GPUs (gloo, DDP without ``device_ids``).

    mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrapper passes
    ``device_ids=[LOCAL_RANK]``; both fail on CPU. We initialise the gloo process group
    ourselves (mmengine then skips its own) and build DDP with ``device_ids=None``.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    if launcher != 'pytorch':
        raise ValueError(f'--launcher {launcher} needs GPUs; on CPU only --launcher pytorch '
                         '(torchrun / tools/dist_train.sh) is supported.')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg', None) or dict(type='MMDistributedDataParallel'))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    print_log(f'CPU distributed run: gloo backend, rank {os.environ.get("RANK")} of '
              f'{os.environ.get("WORLD_SIZE")}.', logger='current')
    return cfg
