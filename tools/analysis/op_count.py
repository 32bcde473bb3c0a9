"""ATen operator calls per training step (forward + backward + optimizer), and a brief profile.

Each variant is built as ``tools/analysis/efficiency.py`` builds it (the config's model with
``petl=dict(type=VARIANT, ...)``, nothing pretrained, the config's optimizer, a synthetic batch),
then one ``train_step`` is counted with a ``TorchDispatchMode``
(:mod:`vpetl_mm.benchmark.efficiency.opcount`): every call is a kernel launch on a GPU, so the
count is the launch-bound cost of the step on any device. ``--profile N`` also runs
``torch.profiler`` over one step and lists the N ops with the most self CPU time: where the
time goes, in the method's own ops (e.g. Mona's depthwise convolutions) or in the host's.

Examples:
    $ python tools/analysis/op_count.py configs/benchmark/swin-b_cls.py \\
        --methods LNTune Mona LoRand --img-size 64 --profile 8 --markdown ops.md
"""
import argparse
import json
import os.path as osp
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')))

import torch  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402

from vpetl_mm.benchmark.efficiency.measure import _build, _setup  # noqa: E402
from vpetl_mm.benchmark.efficiency.opcount import count_train_step  # noqa: E402
from vpetl_mm.benchmark.efficiency.synthetic import synthetic_batch  # noqa: E402


def profile_step(model, batch: dict, optim_wrapper, top: int) -> List[Dict[str, Any]]:
    """The ``top`` ops by self CPU time over one training step (after the counted steps)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        model.train_step(batch, optim_wrapper)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.
    return [dict(op=e.key, calls=e.count, self_ms=e.self_cpu_time_total / 1e3,
                 share=e.self_cpu_time_total / total) for e in events[:top]]


def count_variant(args: argparse.Namespace, variant: str) -> Dict[str, Any]:
    """Build ``variant``, count one training step's ATen calls, optionally profile one step."""
    cfg = _setup(args, variant)
    model = _build(cfg, args)[0].train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = synthetic_batch(model, args.batch_size, args.img_size, args.device, args.seed)
    record = dict(method=variant, **count_train_step(model, batch, optim_wrapper))
    start = time.perf_counter()
    model.train_step(batch, optim_wrapper)
    record['step_ms'] = (time.perf_counter() - start) * 1e3
    if args.profile:
        record['profile'] = profile_step(model, batch, optim_wrapper, args.profile)
    return record


def markdown(records: List[Dict[str, Any]], top_ops: int = 6) -> str:
    """One table of counts, then each variant's profile (if any)."""
    lines = ['| variant | ATen calls / step | compute calls (no views) | forward + backward | '
             'optimizer | top ops (calls) |', '|---|---:|---:|---:|---:|---|']
    for r in records:
        top = ', '.join(f'{op.replace("aten.", "")} {n}' for op, n in
                        list(r['by_op'].items())[:top_ops])
        lines.append(f'| {r["method"]} | {r["ops"]:,} | {r["compute_ops"]:,} | '
                     f'{r["model_ops"]:,} | {r["optimizer_ops"]:,} | {top} |')
    for r in (r for r in records if r.get('profile')):
        lines += ['', f'Profile of one step, {r["method"]} ({r["step_ms"]:.0f} ms unprofiled):',
                  '', '| op | calls | self CPU ms | share |', '|---|---:|---:|---:|']
        lines += [f'| {p["op"]} | {p["calls"]} | {p["self_ms"]:.1f} | {p["share"]:.1%} |'
                  for p in r['profile']]
    return '\n'.join(lines) + '\n'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='ATen calls per training step of PETL variants')
    parser.add_argument('config', help='a config whose model.backbone is vpetl_mm.PETLBackbone')
    parser.add_argument('--methods', nargs='+', required=True,
                        help='variants as in efficiency.py (NAME or NAME:key=value,...)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--img-size', type=int, default=64)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='also list the N ops with the most self CPU time in one step')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='key=value ...')
    parser.add_argument('--markdown', help='write the table here')
    parser.add_argument('--out', help='write the records as JSON here')
    args = parser.parse_args(argv)
    args.amp = False
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    records = [count_variant(args, variant) for variant in args.methods]
    report = markdown(records)
    print(report)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(report)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(records, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
