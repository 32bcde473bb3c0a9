"""What ``tools/noah_search.py`` and ``tools/glora_search.py`` share: the supernet's Runner set
up to score subnets with the config's own validation loop, and the written subnet config's base.
"""
import argparse
import ast
import os.path as osp
from typing import Any, Dict, Sequence

from mmengine.config import Config

from .noah_search import SearchSettings
from .runtime import build_runner


def search_parser(method: str, defaults: SearchSettings, param_limit: float,
                  param_limit_help: str, out_help: str = '') -> argparse.ArgumentParser:
    """The arguments both search tools take: config, checkpoint, ``--out`` (required unless
    ``out_help`` describes its default), the parameter limits (millions; ``param_limit`` is the
    default) and the evolution's sizes (``defaults``).

    Examples:
        >>> parser = search_parser('GLoRA', glora_settings(), 1.0, 'largest subnet (M)')
        >>> settings = glora_settings(**settings_kwargs(parser.parse_args(argv)))
    """
    parser = argparse.ArgumentParser(description=f'{method} evolutionary subnet search '
                                     '(vpetl_mm)')
    parser.add_argument('config', help=f'the supernet config (petl {method}, supernet=True)')
    parser.add_argument('checkpoint', help='the trained supernet checkpoint')
    parser.add_argument('--out', required=not out_help,
                        help='path of the subnet config to write' + (f' ({out_help})'
                                                                     if out_help else ''))
    parser.add_argument('--param-limit', type=float, default=param_limit, help=param_limit_help)
    parser.add_argument('--min-param-limit', type=float, default=0.,
                        help='smallest subnet in millions of parameters')
    for name in ('population', 'select', 'mutation', 'crossover', 'generations', 'seed'):
        parser.add_argument(f'--{name}', type=int, default=getattr(defaults, name))
    parser.add_argument('--m-prob', type=float, default=defaults.m_prob)
    parser.add_argument('--metric', default='accuracy/top1',
                        help='validation metric to maximise (default accuracy/top1)')
    return parser


def settings_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """The :class:`SearchSettings` fields of :func:`search_parser`'s arguments (limits in
    parameters; a ``--param-limit`` <= 0 is no limit).

    Examples:
        >>> SearchSettings(**settings_kwargs(args), s_prob=args.s_prob)
    """
    return dict(population=args.population, select=args.select, mutation=args.mutation,
                crossover=args.crossover, generations=args.generations, m_prob=args.m_prob,
                seed=args.seed, min_param_limit=round(args.min_param_limit * 1e6),
                param_limit=round(args.param_limit * 1e6) if args.param_limit > 0 else None)


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
    absolute across trees, ``scope::`` names as given.

    Examples:
        >>> base_reference('configs/glora/vit-b_vtab-dtd.py', 'configs/glora/searched')
        '../vit-b_vtab-dtd.py'
    """
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
