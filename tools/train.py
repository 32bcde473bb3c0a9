"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] ...``.

The OpenMMLab ``tools/train.py`` interface, with vpetl_mm imported (its registries, the
mmaction2 and checkpoint work-arounds). The shipped configs declare vpetl_mm's hooks themselves
(configs/_base_/runtime/petl_hooks.py), so a toolbox's own ``tools/train.py`` runs them too;
this script adds only those a config of one's own does not declare (``add_petl_hooks``). Every run ends by
writing ``<work_dir>/run_record.json`` (vpetl_mm/benchmark/record.py: config, method, dataset,
seed, protocol, metrics, trainable parameters, PPT, memory, time per iteration, git revision;
``status='failed'`` and the error if it raised) and, with ``--store results.db``, adds it to the
results store that ``tools/report.py`` renders.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
import traceback
from typing import List, Optional

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from vpetl_mm.apis import add_common_args, build_runner, load_config  # noqa: E402
from vpetl_mm.apis.protocol import run_protocol, run_seeds  # noqa: E402
from vpetl_mm.benchmark.record import (build_record, derive_labels, failed_record,  # noqa
                                       now, parse_labels, write_record)
from vpetl_mm.compat import CheckpointError  # noqa: E402
from vpetl_mm.hooks import MetricRecorderHook  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model (vpetl_mm)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the given checkpoint, or from the latest checkpoint '
                        'in the work dir if no path is given')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument('--compile', action='store_true',
                        help="torch.compile the training step (mmengine's cfg.compile = True; "
                        'a dict compile in the config, e.g. from --cfg-options '
                        'compile.backend=aot_eager, is kept as it is)')
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
    parser.add_argument('--labels', nargs='+', metavar='KEY=VALUE',
                        help='labels of the run record that override the derived ones, e.g. '
                        'method=lora dataset=vtab-dtd benchmark=vtab (tools/benchmark.py '
                        'passes them)')
    parser.add_argument('--store', help='also add the run record to this results store '
                        '(SQLite, e.g. results.db; see tools/report.py)')
    add_common_args(parser)
    return parser.parse_args()


def _is_rank0() -> bool:
    from mmengine.dist import get_rank, is_distributed
    if is_distributed():
        return get_rank() == 0
    return int(os.environ.get('RANK', os.environ.get('SLURM_PROCID', 0))) == 0


def _save_records(records: List[dict], store: Optional[str]) -> None:
    """Write each record to its work dir and, with ``--store``, to the store (rank 0)."""
    if not _is_rank0():
        return
    for record in records:
        path = write_record(record, record['work_dir'])
        print(f"run record ({record['status']}): {path}", flush=True)
    if store:
        from vpetl_mm.benchmark.store import ResultStore
        try:
            results = ResultStore(store)
            for record in records:
                results.put(record)
        except Exception as error:  # the record files stay: tools/benchmark.py --collect
            print(f'Could not add the run record to {store}: {error!r}. It is in the work '
                  'dir; add it later with tools/benchmark.py --collect.', flush=True)


def _train_as_written(cfg):
    """``--protocol none``: one training; its result is the last validation evaluation."""
    runner = build_runner(cfg)
    recorder = MetricRecorderHook()
    if hasattr(runner, 'register_hook'):
        runner.register_hook(recorder)
    runner.train()
    val = [r for r in recorder.records if r['mode'] == 'val']
    last = (val or recorder.records or [None])[-1]
    metrics = {k: v for k, v in last.items() if k not in ('mode', 'epoch')} if last else None
    return getattr(runner, 'seed', None), metrics, 'val' if val else None


def main() -> None:
    args = parse_args()
    start, t0 = now(), time.time()
    explicit = parse_labels(args.labels)
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
    if args.compile and not isinstance(cfg.get('compile', None), dict):
        cfg.compile = True
    if args.seed is not None:
        cfg.randomness = dict(cfg.get('randomness', None) or {}, seed=args.seed)
    protocol = args.protocol or cfg.get('protocol', None) or 'none'
    # a protocol resumes stage by stage (run_protocol(resume=True)), each from its own work dir
    if protocol == 'none' and args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif protocol == 'none' and args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if protocol == 'none' and args.seeds:
        raise SystemExit('--seeds repeats a protocol; pass --protocol default or legacy.')
    if protocol != 'none' and args.resume not in (None, 'auto'):
        raise SystemExit('--resume CHECKPOINT applies to one training run; a protocol runs '
                         'several. Pass --resume without a path: finished stages are kept and '
                         'the interrupted one resumes from its last checkpoint.')
    labels = derive_labels(cfg, args.config, explicit)
    common = dict(config_path=args.config, labels=labels, protocol=protocol,
                  start=start, start_time=t0)
    extra = dict(cfg_options=args.cfg_options, resumed=args.resume is not None,
                 launcher=args.launcher, labels_given=explicit)
    seed = cfg.get('randomness', {}).get('seed', None)
    try:
        records = _run(args, cfg, protocol, common, extra)
    except Exception:
        seeds = args.seeds or [args.seed if args.seed is not None else seed]
        _save_records([failed_record(
            config_path=args.config, labels=labels, seed=s, protocol=protocol,
            work_dir=osp.join(cfg.work_dir, f'seed{s}') if args.seeds else cfg.work_dir,
            error=traceback.format_exc(), start=start, duration_s=time.time() - t0,
            extra=extra) for s in seeds], args.store)
        raise
    _save_records(records, args.store)


def _run(args, cfg, protocol: str, common: dict, extra: dict) -> List[dict]:
    """Train as the protocol says; the run records (one per seed)."""
    if protocol == 'none':
        seed, metrics, split = _train_as_written(cfg)
        return [build_record(**common, seed=seed, metrics=metrics, split=split,
                             stats_dir=cfg.work_dir, work_dir=cfg.work_dir,
                             end_time=time.time(), extra=extra)]
    kwargs = {'lr_scales': args.lr_scales} if args.lr_scales else {}
    kwargs['resume'] = args.resume is not None
    if args.seeds:
        summary = run_seeds(cfg, protocol, build_runner, args.seeds, **kwargs)
        print(f"protocol {protocol}: {summary['metric']} = {summary['mean']:.4f} +- "
              f"{summary['std']:.4f} over seeds {summary['seeds']}; "
              f'{cfg.work_dir}/protocol_summary.json')
        records = []
        for path in summary['records']:
            with open(path) as f:
                records.append(_protocol_run_record(json.load(f), osp.dirname(path), common,
                                                    extra))
        return records
    record = run_protocol(cfg, protocol, build_runner,
                          seed=cfg.get('randomness', {}).get('seed', None) or 0, **kwargs)
    print(f"protocol {record['protocol']}: {record['metric']} = {record['value']:.4f} "
          f"(lr {record['lr']:.3g}, seed {record['seed']}); {cfg.work_dir}/protocol_record.json")
    return [_protocol_run_record(record, cfg.work_dir, common, extra)]


def _protocol_run_record(record: dict, work_dir: str, common: dict, extra: dict) -> dict:
    """The run record of a protocol run: its reported value, measured on the test split by
    the last stage (whose hooks wrote the parameter count and efficiency files)."""
    details = {k: record[k] for k in ('lr', 'base_lr', 'candidates', 'val_scores',
                                      'test_evaluations') if k in record}
    return build_record(**common, seed=record['seed'], metrics={record['metric']: record['value']},
                        split='test', stats_dir=record['stages'][-1]['work_dir'],
                        work_dir=work_dir, end_time=time.time(),
                        extra=dict(extra, protocol_details=details))


if __name__ == '__main__':
    try:
        main()
    except CheckpointError as err:  # --resume / load_from of a bad file: its one line
        raise SystemExit(f'error: {err}') from None
