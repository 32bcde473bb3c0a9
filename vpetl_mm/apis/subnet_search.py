"""What ``tools/noah_search.py`` and ``tools/glora_search.py`` share: the supernet's Runner set
up to score subnets with the config's own validation loop, and the written subnet config's base.
"""
import ast
import os.path as osp
from typing import Sequence

from mmengine.config import Config

from .runtime import build_runner


def single_base(config: str) -> str:
    """The one ``_base_`` file of ``config`` (resolved against its folder).

    Examples:
        >>> single_base('work/supernet.py')
        'configs/noah/vit-b_vtab-dtd.py'
    """
    with open(config) as f:
        tree = ast.parse(f.read(), filename=config)
    bases = [node.value for node in tree.body if isinstance(node, ast.Assign)
             and any(getattr(t, 'id', None) == '_base_' for t in node.targets)]
    value = ast.literal_eval(bases[-1]) if bases else None
    value = [value] if isinstance(value, str) else value
    if not value or len(value) != 1:
        raise SystemExit(f'{config} has {len(value or [])} _base_ files; pass --retrain-base '
                         'CONFIG (the dataset config the retrain run should inherit).')
    base = value[0]
    return base if '::' in base else osp.normpath(osp.join(osp.dirname(config), base))


def base_reference(base: str, folder: str) -> str:
    """``base`` as the ``_base_`` of a config in ``folder``: relative within one tree,
    absolute across trees, ``scope::`` names as given."""
    if '::' in base:
        return base
    base_abs = osp.abspath(base)
    return (osp.relpath(base_abs, folder) if osp.commonpath([base_abs, folder]) != osp.sep
            else base_abs)


def search_runner(cfg: Config, dropped_hooks: Sequence[str]):
    """The Runner of the supernet ``cfg`` (``load_from``: the trained checkpoint), loaded and
    ready for ``runner.val_loop.run()`` once per candidate subnet.

    ``dropped_hooks``: hook types that have no business in a search (the supernet's sampler,
    the training-run reports). ``PETLCheckpointHook`` is added where missing, so adapter-only
    checkpoints load. The caller calls ``runner.call_hook('after_run')`` at the end.

    Examples:
        >>> runner = search_runner(cfg, ('NOAHSamplingHook', ))
        >>> top1 = runner.val_loop.run()['accuracy/top1']
    """
    hooks = [h for h in cfg.get('custom_hooks', None) or []
             if str(h.get('type', '')).split('.')[-1] not in dropped_hooks]
    if not any(str(h.get('type', '')).endswith('PETLCheckpointHook') for h in hooks):
        hooks.append(dict(type='vpetl_mm.PETLCheckpointHook'))  # loads adapter-only files
    cfg.custom_hooks, cfg.petl_default_hooks = hooks, False
    runner = build_runner(cfg)
    # Runner.val()'s steps, with the loop run once per candidate before after_run
    runner.call_hook('before_run')
    runner.load_or_resume()  # the checkpoint (load_from)
    return runner
