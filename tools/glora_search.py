"""GLoRA step 2: search a trained supernet for the best subnet; write its config and weights.

    python tools/glora_search.py SUPERNET_CONFIG CHECKPOINT [--out SUBNET_CONFIG]
        [--param-limit 1.0] [--min-param-limit 0] [--population 50] [--select 10]
        [--mutation 25] [--crossover 25] [--generations 20] [--m-prob 0.2] [--seed 1]
        [--base CONFIG] [--work-dir DIR] [--cfg-options KEY=VALUE ...]

The supernet config (``petl=dict(type='GLoRA', supernet=True)``) builds the model through
mmengine's Runner, the checkpoint loads as in ``tools/test.py`` (adapter-only ones too), and
every candidate subnet is scored by the config's own validation loop and evaluator (top-1 on
the validation split: val200 on VTAB-1k with ``--protocol none``). The evolution is GLoRA's
(``vpetl_mm/apis/glora_search.py``; defaults: Arnav0400/ViT-Slim@0fed674 ``GLoRA/evolution.py``).

Written:
* ``--out`` (default: ``glora_subnet.py`` in the work dir): a config inheriting ``--base``
  (default: the supernet config's own single base) with ``petl=dict(type='GLoRA', rank=...,
  targets=..., subnet=[...])``;
* next to it, ``<out>.pth``: the supernet checkpoint's weights sliced to that subnet. GLoRA
  does not retrain the searched subnet (ViT-Slim evaluates it with the supernet's weights):
  ``python tools/test.py SUBNET_CONFIG SUBNET_CONFIG.pth``; ``tools/train.py SUBNET_CONFIG``
  trains it from scratch instead;
* ``glora_search.json`` in the work dir: the settings, every evaluated subnet and the best.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

import torch  # noqa: E402
from mmengine.logging import print_log  # noqa: E402

from vpetl_mm.apis import add_common_args, load_config  # noqa: E402
from vpetl_mm.apis.glora_search import (GLoRAEvolutionSearch, glora_settings,  # noqa: E402
                                        subnet_state)
from vpetl_mm.apis.subnet_search import (base_reference, search_parser,  # noqa: E402
                                         search_runner, settings_kwargs, single_base)
from vpetl_mm.compat import load_checkpoint_file  # noqa: E402
from vpetl_mm.methods.glora import GLoRA  # noqa: E402
from vpetl_mm.utils import find_petl_backbone  # noqa: E402

# the training-run reports would describe the whole supernet
_DROPPED_HOOKS = ('PPTHook', 'PETLReportHook', 'EfficiencyHook', 'PETLCalibrationHook')


def parse_args() -> argparse.Namespace:
    parser = search_parser('GLoRA', glora_settings(), 1.0, 'largest subnet in millions of GLoRA '
                           "parameters (default 1.0, ViT-Slim's --param-limits; <= 0: no limit)",
                           out_help='default: glora_subnet.py in the work dir')
    parser.add_argument('--base', help="config the subnet config inherits (default: the "
                        "supernet config's single _base_)")
    add_common_args(parser)
    return parser.parse_args()


def find_glora_supernet(model) -> GLoRA:
    wrapper = find_petl_backbone(model)
    method = next((m for m in (wrapper.methods if wrapper is not None else [])
                   if isinstance(m, GLoRA) and m.supernet), None)
    if method is None:
        raise SystemExit("the config's model has no GLoRA supernet; set model.backbone.petl="
                         "dict(type='GLoRA', supernet=True) and train it first.")
    return method


def write_subnet(path: str, base: str, method: GLoRA, subnet: list, header: list) -> None:
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    layers = ''.join(f'        {layer!r},\n' for layer in subnet)
    with open(path, 'w') as f:
        f.write(''.join(f'# {line}\n' for line in header))
        f.write(f'_base_ = [{base_reference(base, folder)!r}]\n\n'
                "model = dict(backbone=dict(petl=dict(\n"
                f"    _delete_=True, type='GLoRA', rank={method.rank!r},\n"
                f'    targets={list(method.targets)!r},\n    subnet=[\n{layers}    ])))\n')


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args, load_from=args.checkpoint)
    if args.work_dir is None:
        cfg.work_dir = osp.join(cfg.work_dir, 'glora_search')
    petl = cfg.model.get('backbone', {}).get('petl', {})
    if not any(isinstance(p, dict) and p.get('type') == 'GLoRA' and p.get('supernet')
               for p in (petl if isinstance(petl, (list, tuple)) else [petl])):
        raise SystemExit(f'{args.config} is not a GLoRA supernet config (model.backbone.petl = '
                         f"{petl}); it needs petl=dict(type='GLoRA', supernet=True).")
    base = args.base or single_base(args.config)
    args.out = args.out or osp.join(cfg.work_dir, 'glora_subnet.py')
    runner = search_runner(cfg, _DROPPED_HOOKS)
    method = find_glora_supernet(runner.model)
    loop = runner.val_loop

    def evaluate(subnet: list) -> float:
        method.set_subnet(subnet)
        return float(loop.run()[args.metric])

    settings = glora_settings(**settings_kwargs(args))
    search = GLoRAEvolutionSearch(method, evaluate, settings,
                                  log=lambda line: print_log(f'GLoRA search: {line}',
                                                             logger='current'))
    best, score, params = search.run()
    runner.call_hook('after_run')

    summary = dict(search.summary(), config=args.config, checkpoint=args.checkpoint,
                   metric=args.metric, out=args.out)
    with open(osp.join(cfg.work_dir, 'glora_search.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    write_subnet(args.out, base, method, best, [
        'GLoRA subnet found by tools/glora_search.py; test it with the supernet weights: '
        'python tools/test.py <this file> <this file>.pth',
        f'supernet: {args.config}, checkpoint {args.checkpoint}',
        f'validation {args.metric} {score:.4f}; {params:,} GLoRA parameters',
        f'search: {json.dumps(summary["settings"])}'])
    checkpoint = load_checkpoint_file(args.checkpoint)  # weights-only
    state = subnet_state(runner.model, method, checkpoint['state_dict'], best)
    torch.save(dict(state_dict=state, meta=checkpoint.get('meta', {})), f'{args.out}.pth')
    print(f'GLoRA search: best subnet ({params:,} params, {args.metric} {score:.4f}) written '
          f'to {args.out} and {args.out}.pth')


if __name__ == '__main__':
    main()
