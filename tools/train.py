"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] ...``.

The OpenMMLab ``tools/train.py`` interface, with vpetl_mm imported (its registries, the
mmaction2 and checkpoint work-arounds) and its hooks added to every run.
"""
import argparse
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from vpetl_mm.apis import add_common_args, build_runner, load_config  # noqa: E402
from vpetl_mm.apis.protocol import run_protocol, run_seeds  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model (vpetl_mm)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the given checkpoint, or from the latest checkpoint '
                        'in the work dir if no path is given')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument('--protocol', choices=['default', 'legacy', 'none'],
                        help="image benchmarks: 'default' selects the lr on val and reports "
                        "the final-epoch test top-1 after retraining on train+val; 'legacy' "
                        "reproduces the reference (best test evaluation); 'none' trains the "
                        "config as written. Default: the config's `protocol`, else none.")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument('--seed', type=int, help='random seed (recorded in the run)')
    seeds.add_argument('--seeds', type=int, nargs='+',
                       help='with a protocol: run it once per seed (work_dir/seed<k>) and write '
                       'the mean and std to protocol_summary.json (the benchmark uses 3 seeds)')
    parser.add_argument('--lr-scales', type=float, nargs='+',
                        help='default protocol: candidate multipliers of the config lr '
                        '(default 1 0.5 2)')
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args)
    if args.amp:
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a GPU: mmengine 0.10.7 AmpOptimWrapper supports only '
                             'gpu, npu, mlu or musa devices. Drop --amp on CPU.')
        wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper_type == 'AmpOptimWrapper':
            print('AMP is already enabled in the config.')
        elif wrapper_type != 'OptimWrapper':
            raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper, got {wrapper_type}.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.seed is not None:
        cfg.randomness = dict(cfg.get('randomness', None) or {}, seed=args.seed)
    protocol = args.protocol or cfg.get('protocol', None) or 'none'
    if protocol == 'none' and args.seeds:
        raise SystemExit('--seeds repeats a protocol; pass --protocol default or legacy.')
    if protocol == 'none':
        build_runner(cfg).train()
        return
    if args.resume is not None:
        raise SystemExit('--resume applies to one training run; a protocol runs several. '
                         'Resume a stage with --protocol none and that stage\'s work dir.')
    kwargs = {'lr_scales': args.lr_scales} if args.lr_scales else {}
    if args.seeds:
        summary = run_seeds(cfg, protocol, build_runner, args.seeds, **kwargs)
        print(f"protocol {protocol}: {summary['metric']} = {summary['mean']:.4f} +- "
              f"{summary['std']:.4f} over seeds {summary['seeds']}; "
              f'{cfg.work_dir}/protocol_summary.json')
        return
    record = run_protocol(cfg, protocol, build_runner,
                          seed=cfg.get('randomness', {}).get('seed', None) or 0, **kwargs)
    print(f"protocol {record['protocol']}: {record['metric']} = {record['value']:.4f} "
          f"(lr {record['lr']:.3g}, seed {record['seed']}); {cfg.work_dir}/protocol_record.json")


if __name__ == '__main__':
    main()
