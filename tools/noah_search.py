"""NOAH step 2: search a trained supernet for the best subnet, written as a config to retrain.

    python tools/noah_search.py SUPERNET_CONFIG CHECKPOINT --out SUBNET_CONFIG
        [--param-limit 0.43] [--population 50] [--select 10] [--mutation 25] [--crossover 25]
        [--generations 15] [--m-prob 0.2] [--s-prob 0.4] [--seed 0]
        [--retrain-base CONFIG] [--work-dir DIR] [--cfg-options KEY=VALUE ...]

The supernet config (``petl=dict(type='NOAH', supernet=True)``) builds the model through
mmengine's Runner, the checkpoint loads as in ``tools/test.py`` (adapter-only ones too), and
every candidate subnet is scored by the config's own validation loop and evaluator (top-1 on
the validation split: val200 on VTAB-1k with ``--protocol none``). The evolution is NOAH's
(``vpetl_mm/apis/noah_search.py``; defaults: its VTAB settings). The best subnet is written to
``--out`` as a config inheriting ``--retrain-base`` (default: the supernet config's own base,
i.e. the dataset's NOAH config) with ``petl=dict(type='NOAH', vpt=..., lora=..., adapter=...)``;
``python tools/train.py SUBNET_CONFIG`` retrains it from scratch (NOAH's step 3). The work dir
gets ``noah_search.json``: the settings, every evaluated subnet and the best.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.config import Config  # noqa: E402
from mmengine.logging import print_log  # noqa: E402

from vpetl_mm.apis import add_common_args, load_config  # noqa: E402
from vpetl_mm.apis.noah_search import EvolutionSearch, SearchSettings  # noqa: E402
from vpetl_mm.apis.subnet_search import (base_reference, search_parser,  # noqa: E402
                                         search_runner, settings_kwargs, single_base)
from vpetl_mm.hooks.noah_hook import find_noah_supernet  # noqa: E402

# hooks that have no business in a search: the sampler (the search sets the subnets), and the
# training-run reports (their PPT / counts would describe the whole supernet)
_DROPPED_HOOKS = ('NOAHSamplingHook', 'PPTHook', 'PETLReportHook', 'EfficiencyHook',
                  'PETLCalibrationHook')


def parse_args() -> argparse.Namespace:
    d = SearchSettings()
    parser = search_parser('NOAH', d, 0.43, 'largest subnet in millions of trainable '
                           'parameters (default 0.43, the published VTAB-1k average; <= 0: no '
                           'limit)')
    parser.add_argument('--retrain-base', help='config the subnet config inherits (default: '
                        "the supernet config's single _base_)")
    parser.add_argument('--s-prob', type=float, default=d.s_prob)
    add_common_args(parser)
    return parser.parse_args()


def check_retrain_base(base: str) -> None:
    if '::' in base:
        return
    hooks = Config.fromfile(base).get('custom_hooks', None) or []
    if any(str(h.get('type', '')).endswith('NOAHSamplingHook') for h in hooks):
        raise SystemExit(f'--retrain-base {base} trains a supernet (NOAHSamplingHook); give the '
                         'config the supernet config inherits (the dataset NOAH config).')


def write_subnet_config(path: str, base: str, subnet: dict, lines: list) -> None:
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    rel = base_reference(base, folder)
    widths = ',\n'.join(f'    {kind}={list(subnet[kind])}' for kind in ('vpt', 'lora', 'adapter'))
    with open(path, 'w') as f:
        f.write(''.join(f'# {line}\n' for line in lines))
        f.write(f"_base_ = [{rel!r}]\n\nmodel = dict(backbone=dict(petl=dict(\n"
                f"    _delete_=True, type='NOAH',\n{widths})))\n")


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args, load_from=args.checkpoint)
    if args.work_dir is None:
        cfg.work_dir = osp.join(cfg.work_dir, 'noah_search')
    petl = cfg.model.get('backbone', {}).get('petl', {})
    if not (isinstance(petl, dict) and petl.get('type') == 'NOAH' and petl.get('supernet')):
        raise SystemExit(f'{args.config} is not a NOAH supernet config (model.backbone.petl = '
                         f"{petl}); it needs petl=dict(type='NOAH', supernet=True).")
    base = args.retrain_base or single_base(args.config)
    check_retrain_base(base)

    runner = search_runner(cfg, _DROPPED_HOOKS)
    method = find_noah_supernet(runner.model)
    loop = runner.val_loop
    largest = float(loop.run()[args.metric])  # the whole supernet
    print_log(f'NOAH search: the largest subnet ({method.count():,} params) scores '
              f'{largest:.4f} {args.metric}', logger='current')

    def evaluate(subnet: dict) -> float:
        method.set_subnet(subnet)
        return float(loop.run()[args.metric])

    settings = SearchSettings(**settings_kwargs(args), s_prob=args.s_prob)
    search = EvolutionSearch(method, evaluate, settings,
                             log=lambda line: print_log(f'NOAH search: {line}', logger='current'))
    best, score, params = search.run()
    runner.call_hook('after_run')

    summary = dict(search.summary(), config=args.config, checkpoint=args.checkpoint,
                   metric=args.metric, largest_subnet_score=largest, out=args.out)
    with open(osp.join(cfg.work_dir, 'noah_search.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    write_subnet_config(args.out, base, best, [
        'NOAH subnet found by tools/noah_search.py (retrain: python tools/train.py <this file>)',
        f'supernet: {args.config}, checkpoint {args.checkpoint}',
        f'validation {args.metric} {score:.4f} with the supernet weights; {params:,} trainable '
        'backbone parameters',
        f'search: {json.dumps(summary["settings"])}'])
    print(f'NOAH search: best subnet {best} ({params:,} params, {args.metric} {score:.4f}) '
          f'written to {args.out}')


if __name__ == '__main__':
    main()
