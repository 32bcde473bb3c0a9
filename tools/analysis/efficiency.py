"""Training and inference efficiency of PETL methods (and peer LoRA libraries) on one config.

Each measurement runs in a *fresh process* (this script with ``--worker``), so allocator
caches and peak counters never leak between variants: no weights loaded, the config's
``optim_wrapper`` (trainable parameters only), a synthetic batch in the model's data format.

* ``train`` (default): trainable parameters, median time per training iteration (forward +
  backward + optimizer step) and peak training memory, as ratios to full fine-tuning (Full)
  and to the frozen backbone (Frozen). ``--repeats N`` runs every worker N times, round-robin
  over the variants, and keeps the median: CPU timings drift with the host's load.
* ``infer``: time per batch of each variant unmerged and merged (methods that fold into the
  host), against the plain host built in the same process, interleaved in ``--rounds``.
* ``interleaved``: the training time of all variants built in one process, one step of each in
  turn (``--rounds`` x ``--iters`` steps): the tight comparison of close variants on a shared
  CPU; the time targets use it where it ran. No memory figures.
* ``--compile`` adds ``<variant>+compile`` for every variant: its ``train_step`` under
  ``torch.compile`` (as mmengine's ``compile=True`` does), measured in the same run, so the
  interleaved table compares compiled and eager steps under the same load (column
  ``Compiled / eager``). ``--compile-backend aot_eager`` skips inductor's C++ build.
* ``--peers`` adds ``vpetl_mm-LoRA``, ``peft-LoRA`` and ``mmpretrain-LoRAModel``: the same
  rank-8 LoRA on every fused qkv (``vpetl_mm/benchmark/efficiency/peers.py``; peft is the
  benchmark-only extra ``pip install -e '.[benchmark]'``).

``--targets`` checks the targets of ``vpetl_mm.benchmark.efficiency.TARGETS``; ``--strict``
exits 1 when one fails. No target is ever asserted by a test: these are benchmarks.

Examples:
    $ python tools/analysis/efficiency.py configs/full/vit-b_vtab-cifar100.py \\
        --methods Full Frozen LoRA Adapter --phases train infer --batch-size 8 --img-size 224 \\
        --iters 5 --warmup 2 --repeats 3 --targets --markdown eff.md --out eff.json
    $ python tools/analysis/efficiency.py configs/benchmark/timm-vit-b16_cls.py \\
        --methods Full Frozen --peers --batch-size 8 --img-size 224 --repeats 3
    $ python tools/analysis/efficiency.py configs/full/vit-b_vtab-cifar100.py \
        --methods VPT VPT:length=10,deep=True --img-size 224   # method arguments
    $ python tools/analysis/efficiency.py configs/full/vit-b_vtab-cifar100.py --methods LoRA \
        --phases interleaved --compile --batch-size 1 --img-size 64   # compiled / eager
"""
import argparse
import json
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
sys.path.insert(0, REPO)
DEFAULT_CONFIG = osp.join(REPO, 'configs', 'full', 'vit-b_vtab-cifar100.py')
# Table order: the two baselines first, then roughly by how much of the backbone trains.
PHASES = ('train', 'infer', 'interleaved')
ORDER = ('Full', 'Frozen', 'BitFit', 'LNTune', 'Partial', 'SSF', 'VPT', 'Adapter', 'LoRA',
         'AdaptFormer', 'Mona', 'LoRand', 'E3VA', 'LST', 'LAST', 'HST')


def run_worker(args: argparse.Namespace) -> Dict[str, Any]:
    from vpetl_mm.benchmark.efficiency import measure_infer, measure_interleaved, measure_train
    return dict(train=measure_train, infer=measure_infer,
                interleaved=measure_interleaved)[args.phase](args)


def measure(variant: str, phase: str, args: argparse.Namespace,
            raw_options: List[str]) -> Dict[str, Any]:
    """Run one worker process: its record, or ``{'method', 'error'}``."""
    cmd = [sys.executable, osp.abspath(__file__), args.config, '--worker', variant,
           '--phase', phase, '--iters', str(args.iters), '--warmup', str(args.warmup),
           '--rounds', str(args.rounds), '--batch-size', str(args.batch_size),
           '--img-size', str(args.img_size), '--device', args.device,
           '--seed', str(args.seed), '--compile-backend', args.compile_backend] + \
        (['--amp'] if args.amp else [])
    cmd += ['--cfg-options'] + raw_options if raw_options else []
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=args.timeout)
        out, rc = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out, rc = str(exc.output or ''), f'timeout after {args.timeout} s'
    # Logs share stdout with the record: take the record line, the last one printed.
    for line in reversed(out.splitlines()):
        if line.startswith('{"method"'):
            return dict(json.loads(line), process_s=time.perf_counter() - start)
    tail = '\n'.join(out.strip().splitlines()[-15:])
    return dict(method=variant, error=f'worker failed (rc {rc}):\n{tail}')


def combine(repeats: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One record from a variant's repeated training workers: medians of time and memory."""
    failed = [r for r in repeats if 'error' in r]
    if failed:
        return failed[0]
    record = dict(repeats[0])
    for field in ('time_ms', 'cpu_time_ms', 'peak_mb'):
        record[field] = statistics.median(r[field] for r in repeats)
    record['repeat_time_ms'] = [r['time_ms'] for r in repeats]
    record['repeat_peak_mb'] = [r['peak_mb'] for r in repeats]
    record['load_avg_1m'] = max(r['load_avg_1m'] for r in repeats)
    return record


def _log(variant: str, phase: str, res: Dict[str, Any]) -> None:
    if 'error' in res:
        msg = f'FAILED\n{res["error"]}'
    elif phase == 'train':
        msg = (f'{res["time_ms"]:.1f} ms/iter, {res["peak_mb"]:.1f} MB peak, '
               f'{res["backbone_trainable"]:,} trainable backbone params')
    else:
        msg = (f'unmerged {res["unmerged_vs_plain"]:.3f}x plain'
               + (f', merged {res["merged_vs_plain"]:.3f}x' if res['merged_ms'] else ''))
    print(f'[efficiency] {phase} {variant}: {msg}', file=sys.stderr, flush=True)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Time/iter, peak memory, inference cost and params of PETL methods')
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG, help='uses PETLBackbone')
    parser.add_argument('--methods', nargs='+',
                        help="default: every registered method; NAME:key=value,... sets its "
                             "arguments (e.g. VPT:length=10)")
    parser.add_argument('--peers', action='store_true',
                        help='add vpetl_mm-LoRA, peft-LoRA and mmpretrain-LoRAModel')
    parser.add_argument('--phases', nargs='+', choices=PHASES, default=['train'])
    parser.add_argument('--iters', type=int, default=10, help='timed iterations (median)')
    parser.add_argument('--warmup', type=int, default=5, help='untimed iterations first')
    parser.add_argument('--repeats', type=int, default=1, help='training workers per variant')
    parser.add_argument('--rounds', type=int, default=5,
                        help='rounds of the infer and interleaved phases')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--img-size', type=int, default=224, help='synthetic square images')
    parser.add_argument('--device', choices=['cpu', 'cuda'], help='default: cuda if available')
    parser.add_argument('--amp', action='store_true', help='autocast (cuda only)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--compile', action='store_true',
                        help='add <variant>+compile, its train_step under torch.compile, for '
                             'each variant (train and interleaved phases)')
    parser.add_argument('--compile-backend', default='inductor',
                        help='torch.compile backend of the twins (aot_eager: no C++ build)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='key=value ...')
    parser.add_argument('--out', help='write all records as JSON here')
    parser.add_argument('--markdown', help='write the markdown report here')
    parser.add_argument('--targets', action='store_true', help='check the efficiency targets')
    parser.add_argument('--strict', action='store_true', help='exit 1 if a target FAILs')
    parser.add_argument('--timeout', type=int, default=3600, help='seconds per worker')
    parser.add_argument('--worker', metavar='VARIANT', help=argparse.SUPPRESS)
    parser.add_argument('--phase', choices=PHASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.repeats < 1 or args.rounds < 1:
        parser.error('--iters, --repeats and --rounds must be >= 1 and --warmup >= 0.')
    import torch
    args.device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no GPU is visible.')
    if args.amp and args.device != 'cuda':
        parser.error('--amp needs --device cuda (mmengine AmpOptimWrapper has no CPU path).')
    return args


def variants(args: argparse.Namespace) -> List[str]:
    """Registered method names (aliases resolved to class names) and peers, baselines first."""
    from vpetl_mm.benchmark.efficiency import COMPILE_SUFFIX, PEERS
    from vpetl_mm.registry import PETL_METHODS
    PETL_METHODS.import_from_location()
    registry = PETL_METHODS.module_dict
    unknown = [m for m in args.methods or ()
               if m.partition(':')[0] not in registry and m not in PEERS]
    if unknown:
        raise SystemExit(f'Unknown method(s) {unknown}; registered: {sorted(registry)}; '
                         f'peers: {sorted(PEERS)}.')
    # Aliases (FullFinetune, LinearProbe, LN-Tune ...) name the same class: measure each class
    # once, under its class name, so baselines and targets find 'Full', 'Frozen', 'E3VA' ...
    canonical = sorted({cls.__name__ for cls in registry.values()},
                       key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m))
    chosen = [m if m in PEERS else registry[m.partition(':')[0]].__name__ + m[len(
        m.partition(':')[0]):] for m in args.methods] if args.methods else canonical
    # Ratios need both baselines; Full goes first, as the slowest, to show the cost early.
    names = list(dict.fromkeys(['Full', 'Frozen'] + chosen + (list(PEERS) if args.peers else [])))
    return names + [n + COMPILE_SUFFIX for n in names] if args.compile else names


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.worker:  # child process: one measurement, one JSON line on stdout
        print(json.dumps(run_worker(args)), flush=True)
        return 0
    from vpetl_mm.benchmark.efficiency import (COMPILE_SUFFIX, add_ratios, check_targets,
                                               machine, markdown)
    names = variants(args)
    # --cfg-options go to the workers as typed (re-serialising parsed values loses tuples).
    raw = argv[argv.index('--cfg-options') + 1:] if '--cfg-options' in argv else []
    raw = raw[:next((i for i, tok in enumerate(raw) if tok.startswith('--')), len(raw))]

    runs: Dict[str, List[Dict[str, Any]]] = {n: [] for n in names}
    if 'train' in args.phases:
        for _ in range(args.repeats):  # round-robin: load drift spreads over all variants
            for name in names:
                runs[name].append(measure(name, 'train', args, raw))
                _log(name, 'train', runs[name][-1])
    train = {n: combine(r) for n, r in runs.items() if r}
    add_ratios(train)
    infer: Dict[str, Dict[str, Any]] = {}
    if 'infer' in args.phases:  # Full and Frozen run as the plain host: nothing to compare
        # Inference is timed eager only: the compiled twins are training-step twins.
        for name in (n for n in names if n not in ('Full', 'Frozen')
                     and not n.endswith(COMPILE_SUFFIX)):
            infer[name] = measure(name, 'infer', args, raw)
            _log(name, 'infer', infer[name])
    interleaved: Dict[str, Any] = {}
    if 'interleaved' in args.phases:
        interleaved = measure(';'.join(names), 'interleaved', args, raw)
        print('[efficiency] interleaved: ' + (f'FAILED\n{interleaved["error"]}'
              if 'error' in interleaved else ', '.join(
                  f'{n} {t:.1f} ms' for n, t in interleaved['time_ms'].items())),
              file=sys.stderr, flush=True)
    ok = [r for r in list(train.values()) + list(infer.values()) + [interleaved]
          if r and 'error' not in r]
    loads = [r['load_avg_1m'] for r in ok]
    settings = dict(
        config=osp.relpath(args.config), device=ok[0]['device_name'] if ok else args.device,
        **machine(args.device),
        memory=next((r['memory_measure'] for r in ok if 'memory_measure' in r), '-'),
        batch_size=args.batch_size, img_size=args.img_size, amp=args.amp,
        iters=f'{args.iters} timed (median), {args.warmup} warm-up, {args.repeats} repeat(s), '
              f'{args.rounds} inference round(s)',
        host_load_1m=f'{min(loads):.2f}-{max(loads):.2f}' if loads else '-',
        compile=f'+compile twins, backend {args.compile_backend}' if args.compile else '-',
        cfg_options=' '.join(raw) or '-')
    targets = check_targets(train, infer, interleaved) if args.targets else []
    report = markdown(train, infer, settings, targets, interleaved)
    print(report)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(settings=settings, train=train, infer=infer, interleaved=interleaved,
                           targets=targets), f, indent=2)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(report)
    failed = sorted({m for m, r in list(train.items()) + list(infer.items()) +
                     [('interleaved', interleaved)] if 'error' in r})
    if failed:
        print(f'[efficiency] failed: {failed}', file=sys.stderr)
        return 1
    return 1 if args.strict and any(t['status'] == 'FAIL' for t in targets) else 0


if __name__ == '__main__':
    sys.exit(main())
