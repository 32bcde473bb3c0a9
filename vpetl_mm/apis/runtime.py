"""Runtime set-up shared by ``tools/train.py`` and ``tools/test.py``."""
import argparse
import os
import os.path as osp
from typing import Any, List, Optional, Set

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction
from mmengine.logging import print_log

# The hooks that make a run a PETL run. The setting bases and examples declare the same list
# themselves (configs/_base_/runtime/petl_hooks.py), so that every entry point runs them.
DEFAULT_PETL_HOOKS: List[dict] = [
    dict(type='vpetl_mm.PETLCheckpointHook'),
    # the selection pass of SCT / GPS before training (a no-op for other methods)
    dict(type='vpetl_mm.PETLCalibrationHook'),
    dict(type='vpetl_mm.PETLReportHook'),
    dict(type='vpetl_mm.EfficiencyHook'),
    dict(type='vpetl_mm.PPTHook'),
    # load_from of a plain backbone file ({'model': ...}, e.g. the VideoMAE pretrain)
    dict(type='vpetl_mm.PretrainedLoadFromHook'),
]


def hook_name(hook: Any) -> Optional[str]:
    """The class name a hook config (or hook object) stands for, without its scope.

    Examples:
        >>> hook_name(dict(type='vpetl_mm.PPTHook'))
        'PPTHook'
    """
    kind = hook.get('type') if isinstance(hook, dict) else type(hook)
    if kind is None:
        return None
    return kind.__name__ if isinstance(kind, type) else str(kind).split('.')[-1]


def declared_hooks(cfg: Config) -> Set[str]:
    """Names of the hooks a config declares, in ``custom_hooks`` or ``default_hooks``.

    Examples:
        >>> sorted(declared_hooks(Config(dict(custom_hooks=[dict(type='vpetl_mm.PPTHook')],
        ...                                   default_hooks=dict(checkpoint=None)))))
        ['PPTHook']
    """
    hooks = list(cfg.get('custom_hooks', None) or [])
    hooks += [h for h in (cfg.get('default_hooks', None) or {}).values() if h is not None]
    return {name for name in map(hook_name, hooks) if name}


def add_petl_hooks(cfg: Config) -> Config:
    """Add the vpetl_mm hooks a config does not declare to ``cfg.custom_hooks``.

    The shipped configs declare them all (configs/_base_/runtime/petl_hooks.py), so nothing is
    added and every entry point runs the same hooks; a config of one's own that lacks some gets
    them here, with a note that other entry points will not. A config opts out with
    ``petl_default_hooks = False``; a hook it declares itself (with its own options, in
    ``custom_hooks`` or ``default_hooks``) is kept as written.

    Examples:
        >>> cfg = add_petl_hooks(Config(dict(custom_hooks=[dict(type='vpetl_mm.PPTHook')])))
        >>> len(cfg.custom_hooks) == len(DEFAULT_PETL_HOOKS)
        True
    """
    if not cfg.get('petl_default_hooks', True):
        return cfg
    present = declared_hooks(cfg)
    missing = [dict(h) for h in DEFAULT_PETL_HOOKS if hook_name(h) not in present]
    if missing:
        cfg.custom_hooks = list(cfg.get('custom_hooks', None) or []) + missing
        print_log(f'vpetl_mm added {[hook_name(h) for h in missing]} to custom_hooks: the config '
                  'does not declare them, so a run started by another entry point (a toolbox '
                  "tools/train.py, mim, Runner.from_cfg) would lack them. Inherit "
                  "configs/_base_/runtime/petl_hooks.py to declare them.", logger='current')
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


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The flags ``tools/train.py`` and ``tools/test.py`` share (OpenMMLab names)."""
    parser.add_argument('--work-dir', help='the dir to save logs, checkpoints and results')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config options, key=value pairs (xxx=yyy)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(path: str, args: argparse.Namespace,
                load_from: Optional[str] = None) -> Config:
    """Load ``path`` with the common flags applied: options, work dir, launcher."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(path)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    if load_from is not None:
        cfg.load_from = load_from
    return cfg


def build_runner(cfg: Config):
    """Add the PETL hooks, set up CPU distribution if needed, and build the Runner."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    add_petl_hooks(cfg)
    setup_distributed_cpu(cfg, cfg.launcher)
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
