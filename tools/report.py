"""Render benchmark tables (and plots) from the results store.

Examples::

    python tools/report.py --store results.db --benchmark vtab --format md
    python tools/report.py --store results.db --benchmark coco --format latex --out coco.tex
    python tools/report.py --store results.db --benchmark all --format csv --out tables/ \
        --plots tables/plots

Tables follow the published V-PETL Bench layouts (vpetl_mm/benchmark/report.py): mean ± std
over seeds, Params, PPT, the published figure where one exists, the protocol named under each.
VTAB-1k shows its mean both ways, labelled: ``Mean (19 tasks)`` (V-PETL Bench's plain mean) and
``Mean (groups)`` (the mean of the three group means, as the PETL papers report it).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from vpetl_mm.benchmark.report import BENCHMARKS, build_table, render  # noqa: E402
from vpetl_mm.benchmark.store import ResultStore  # noqa: E402

EXTENSIONS = dict(md='md', csv='csv', latex='tex')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark tables from the results store')
    parser.add_argument('--store', default='results.db', help='the results store (SQLite)')
    parser.add_argument('--benchmark', default='all',
                        help=f'one of {", ".join(BENCHMARKS)}, another benchmark label of the '
                        'store, or all (every benchmark with results)')
    parser.add_argument('--format', choices=sorted(EXTENSIONS), default='md')
    parser.add_argument('--protocol', choices=['default', 'legacy', 'none'],
                        help='only the runs of this protocol (default: all, one row each)')
    parser.add_argument('--out', help='a file (one benchmark) or a folder (<benchmark>.<ext> '
                        'each); default: print')
    parser.add_argument('--plots', help='also write the plots (PNG and SVG) into this folder')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.store):
        raise SystemExit(f'{args.store} not found: run tools/benchmark.py (or tools/train.py '
                         '--store) first.')
    store = ResultStore(args.store)
    records = store.records(protocol=args.protocol)
    present = sorted({r.get('benchmark') or 'other' for r in records},
                     key=lambda b: (BENCHMARKS.index(b) if b in BENCHMARKS else 99, b))
    wanted = present if args.benchmark == 'all' else [args.benchmark]
    if not wanted:
        raise SystemExit(f'{args.store} holds no finished run.')
    to_folder = args.out and (len(wanted) > 1 or osp.isdir(args.out) or args.out.endswith('/'))
    for benchmark in wanted:
        try:
            table, points = build_table([r for r in records if r.get('benchmark') == benchmark],
                                        benchmark)
        except ValueError as error:
            raise SystemExit(f'tools/report.py: {error} Benchmarks in the store: {present}.')
        text = render(table, args.format)
        if not args.out:
            print(text)
        else:
            path = osp.join(args.out, f'{benchmark}.{EXTENSIONS[args.format]}') \
                if to_folder else args.out
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
            with open(path, 'w') as f:
                f.write(text)
            print(f'{benchmark}: {len(table.rows)} rows -> {path}')
        if args.plots:
            from vpetl_mm.benchmark.plots import make_plots
            for path in make_plots(benchmark, points, args.plots):
                print(f'{benchmark}: plot -> {path}')


if __name__ == '__main__':
    main()
