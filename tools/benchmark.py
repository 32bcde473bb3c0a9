"""Run a benchmark grid (methods x datasets x seeds) and gather the results in one store.

Examples::

    # LoRA and Adapter on the 19 VTAB-1k tasks, 3 seeds, the fair protocol, one GPU
    python tools/benchmark.py --methods lora adapter --datasets vtab --seeds 0 1 2 \
        --protocol default --store results.db
    # the same grid from a file (YAML or .py), 8 GPUs per run through tools/dist_train.sh
    python tools/benchmark.py --grid grid.yaml --launcher dist --gpus 8
    # configs by glob; print a slurm array script instead of running
    python tools/benchmark.py --configs 'configs/*/swin-l_ade20k.py' --seeds 0 \
        --print slurm --partition gpu --gpus 8 > ade20k.sh && sbatch ade20k.sh
    # gather run_record.json files written elsewhere
    python tools/benchmark.py --collect work_dirs/benchmark --store results.db

Rerunning the same command continues the sweep: finished runs are skipped, an interrupted run
resumes from its checkpoint, failed runs are retried (``--skip-failed`` to not). Render the
tables and plots with ``tools/report.py``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from vpetl_mm.benchmark.store import ResultStore  # noqa: E402
from vpetl_mm.benchmark.slurm import slurm_array_script, slurm_commands  # noqa: E402
from vpetl_mm.benchmark.sweep import (DEFAULT_SEEDS, command, expand_grid, has_checkpoint,  # noqa
                                      load_grid, run_sweep, select)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Run a benchmark grid (vpetl_mm)')
    grid = parser.add_argument_group('grid (command-line values override the grid file)')
    grid.add_argument('--grid', help='a YAML or .py grid file (keys: configs, methods, '
                      'datasets, backbone, seeds, protocol, cfg_options, work_root)')
    grid.add_argument('--configs', nargs='+', help='config paths or globs')
    grid.add_argument('--methods', nargs='+', help='method folders of configs/ (lora ...)')
    grid.add_argument('--datasets', nargs='+',
                      help='dataset keys (vtab-dtd, fgvc-cub, ssv2, ade20k ...; vtab and fgvc '
                      'name all their tasks)')
    grid.add_argument('--backbone', help='backbone key of the config names (default vit-b)')
    grid.add_argument('--seeds', type=int, nargs='+',
                      help=f'seeds of every config (default {" ".join(map(str, DEFAULT_SEEDS))})')
    grid.add_argument('--protocol', choices=['default', 'legacy', 'none'],
                      help="the protocol of every run (default: each config's own)")
    grid.add_argument('--cfg-options', nargs='+', metavar='KEY=VALUE',
                      help='config overrides for every run')
    grid.add_argument('--only', help='run only the configs matching this glob')
    parser.add_argument('--store', default='results.db', help='the results store (SQLite)')
    parser.add_argument('--work-root', help='where the runs\' work dirs go '
                        '(default work_dirs/benchmark)')
    parser.add_argument('--launcher', choices=['none', 'dist'], default='none',
                        help="none: python tools/train.py; dist: tools/dist_train.sh")
    parser.add_argument('--gpus', type=int, default=8,
                        help='processes per run for --launcher dist and slurm (default 8)')
    parser.add_argument('--skip-failed', action='store_true',
                        help='do not retry runs the store records as failed')
    parser.add_argument('--print', dest='print_mode',
                        choices=['plan', 'commands', 'slurm', 'slurm-commands'],
                        help='print instead of running: the plan, the commands, a slurm array '
                        'script, or tools/slurm_train.sh commands (pending runs only)')
    parser.add_argument('--partition', default='gpu', help='slurm partition')
    parser.add_argument('--gpus-per-node', type=int, default=8)
    parser.add_argument('--cpus-per-task', type=int, default=5)
    parser.add_argument('--max-parallel', type=int, help='slurm array: at most this many '
                        'runs at once')
    parser.add_argument('--python', default=sys.executable,
                        help='the interpreter of the runs (default: this one)')
    parser.add_argument('--collect', nargs='+', metavar='DIR',
                        help='add every run_record.json under these folders to the store '
                        'and exit')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    store = ResultStore(args.store)
    if args.collect:
        added = store.collect(args.collect)
        print(f'[benchmark] {added} run records added to {args.store} ({len(store)} in all)')
        return
    grid = load_grid(args.grid) if args.grid else {}
    for key in ('configs', 'methods', 'datasets', 'backbone', 'seeds', 'protocol',
                'cfg_options', 'work_root'):
        value = getattr(args, key)
        if value is not None:
            grid[key] = value
    grid.setdefault('work_root', 'work_dirs/benchmark')
    try:
        jobs = select(expand_grid(**grid), args.only)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f'tools/benchmark.py: {error}')
    if not args.print_mode:
        try:
            counts = run_sweep(jobs, store, launcher=args.launcher, gpus=args.gpus,
                               python=args.python, skip_failed=args.skip_failed)
        except KeyboardInterrupt:
            print('[benchmark] interrupted: finished runs are in the store; rerun the same '
                  'command to resume.', flush=True)
            sys.exit(130)
        sys.exit(1 if counts['done'] < len(jobs) else 0)
    pending = [j for j in jobs if store.status(*j.key) != 'done'
               and not (args.skip_failed and store.status(*j.key) == 'failed')]
    if args.print_mode == 'plan':
        for job in jobs:
            print(f'{store.status(*job.key) or "pending":8} {job.name} -> {job.work_dir}')
        print(f'# {len(jobs)} runs, {len(pending)} pending')
    elif args.print_mode == 'commands':
        import shlex
        for job in pending:
            print(shlex.join(command(job, args.store, has_checkpoint(job.work_dir),
                                     args.launcher, args.gpus, args.python)))
    elif args.print_mode == 'slurm':
        print(slurm_array_script(pending, args.store, partition=args.partition, gpus=args.gpus,
                                 gpus_per_node=args.gpus_per_node,
                                 cpus_per_task=args.cpus_per_task,
                                 max_parallel=args.max_parallel, python=args.python,
                                 work_root=grid['work_root']), end='')
    else:
        print(slurm_commands(pending, args.store, partition=args.partition, gpus=args.gpus,
                             python=args.python), end='')


if __name__ == '__main__':
    main()
