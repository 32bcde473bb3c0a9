"""The GPU check: training throughput of the PETL methods where a GPU is launch- or FLOP-bound.

Run by ``tools/analysis/gpu_check.sh`` (which first installs the stack from carried wheels).
In one process, within a time budget (``--budget-s``, default 480 s: it stops starting cases
when the budget is spent and marks the rest skipped), it times ``model.train_step`` (forward +
backward + optimizer step) on synthetic batches:

1. ViT-B/16 at 224 px (``configs/full/vit-b_vtab-cifar100.py``), bf16 autocast
   (``AmpOptimWrapper(dtype='bfloat16')``), batch 128: Full, Frozen, LoRA, Adapter,
   AdaptFormer, SSF, VPT-deep (10 tokens), BitFit, eager; then Swin-B UperNet at 512 px
   (``configs/examples/upernet_swin-t_adapter_ade20k.py`` widened to Swin-B): Full, Mona, E3VA,
   LoRA, eager; then the ViT-B/16 cases compiled (``torch.compile`` of ``train_step``, as
   mmengine's ``compile=True``), in the order of the list, as the budget allows.
2. For each: images/s, peak memory (``max_memory_allocated``), time relative to Full in the
   same mode, and the fraction of the device's dense bf16 peak that the model's FLOPs reach:
   ViT-B/16 forward is about 35 GFLOP per image at 224 px, so a training step costs about 105
   (Full: forward + input gradients + weight gradients), 70 for a method that backpropagates
   through the frozen backbone (no weight gradients) and 35 for Frozen (no backward through the
   backbone); methods' own FLOPs are below 1% and ignored.

It writes one Markdown table (``--out``). ``--dry-run`` builds every case at tiny size and runs
one step of each on the CPU (fp32, compiled with ``aot_eager``): the test suite runs it.

Examples:
    $ python tools/analysis/gpu_check.py --out gpu_check.md          # on the GPU machine
    $ python tools/analysis/gpu_check.py --dry-run --out /tmp/dry.md  # here, ~30 s
"""
import argparse
import gc
import importlib.util
import os.path as osp
import statistics
import sys
import time
import traceback
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
sys.path.insert(0, REPO)

import torch  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import MODELS, init_default_scope  # noqa: E402

from vpetl_mm.benchmark.efficiency import (build_cfg, compile_train_step,  # noqa: E402
                                           synthetic_batch)

VIT_CONFIG = osp.join(REPO, 'configs', 'full', 'vit-b_vtab-cifar100.py')
SEG_CONFIG = osp.join(REPO, 'configs', 'examples', 'upernet_swin-t_adapter_ade20k.py')
VIT_METHODS = ('Full', 'Frozen', 'LoRA', 'Adapter', 'AdaptFormer', 'SSF',
               'VPT:length=10,deep=True', 'BitFit')
SEG_METHODS = ('Full', 'Mona', 'E3VA', 'LoRA')
# mmseg's Swin-B (swin-base-patch4-window12 UperNet config) on the Swin-T example config
SWIN_B = {'model.backbone.backbone.embed_dims': 128, 'model.backbone.backbone.depths': [2, 2, 18, 2],
          'model.backbone.backbone.num_heads': [4, 8, 16, 32],
          'model.backbone.backbone.window_size': 12,
          'model.decode_head.in_channels': [128, 256, 512, 1024],
          'model.auxiliary_head.in_channels': 512}
TINY = dict(
    vit={'model.backbone.backbone.arch': dict(_delete_=True, embed_dims=32, num_layers=2,
                                              num_heads=2, feedforward_channels=64),
         'model.backbone.backbone.img_size': 32, 'model.head.in_channels': 32},
    seg={'model.backbone.backbone.embed_dims': 16, 'model.backbone.backbone.depths': [2, 2, 2, 2],
         'model.backbone.backbone.num_heads': [1, 2, 4, 8], 'model.backbone.backbone.window_size': 2,
         'model.decode_head.in_channels': [16, 32, 64, 128], 'model.decode_head.channels': 16,
         'model.auxiliary_head.in_channels': 64, 'model.auxiliary_head.channels': 16})
# ViT-B/16 training GFLOP per 224 px image (see the module docstring)
GFLOP = dict(Full=105., Frozen=35.)
GFLOP_THROUGH_BACKBONE = 70.
# Dense bf16 tensor-core peaks (TFLOP/s, vendor data sheets); first match of the device name.
PEAK_BF16 = (('H200', 989.), ('H100 PCIe', 756.), ('H100', 989.), ('A100', 312.),
             ('L40S', 362.), ('A10', 125.))


class Case(NamedTuple):
    task: str  # 'vit' or 'seg'
    variant: str
    compiled: bool


def cases(methods: Sequence[str], seg_methods: Sequence[str],
          compiled: Sequence[str]) -> List[Case]:
    """Every case in run order: eager ViT, eager Swin UperNet, then compiled ViT.

    Examples:
        >>> [c.variant for c in cases(['Full', 'LoRA'], ['Mona'], ['LoRA'])]
        ['Full', 'LoRA', 'Mona', 'LoRA']
    """
    return ([Case('vit', m, False) for m in methods] + [Case('seg', m, False) for m in seg_methods]
            + [Case('vit', m, True) for m in compiled])


def build_case(case: Case, args: argparse.Namespace):
    """The model (on the device, training mode), its optimizer wrapper and a synthetic batch."""
    config, size = (VIT_CONFIG, args.img_size) if case.task == 'vit' else \
        (SEG_CONFIG, args.seg_img_size)
    options = dict(SWIN_B) if case.task == 'seg' else {}
    options.update(TINY[case.task] if args.dry_run else {})
    cfg = build_cfg(config, case.variant, options, size, amp=args.amp)
    if args.amp:  # bf16 autocast: no loss scaling needed
        cfg.optim_wrapper.update(dtype='bfloat16', loss_scale=1.0)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(args.device).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    if case.compiled:
        compile_train_step(model, args.backend)
    batch_size = args.batch_size if case.task == 'vit' else args.seg_batch_size
    return model, optim_wrapper, synthetic_batch(model, batch_size, size, args.device)


def run_case(case: Case, args: argparse.Namespace) -> Dict[str, Any]:
    """Median step time, images/s and peak memory of one case."""
    model, optim_wrapper, batch = build_case(case, args)
    cuda = args.device.startswith('cuda')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    # + 2 for a compiled case (compile, then the recompile the optimizer state may cause); the
    # dry run only shows that each case builds and steps, so its one step is the first
    for _ in range(args.warmup + (2 if case.compiled and not args.dry_run else 0)):
        model.train_step(batch, optim_wrapper)
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        model.train_step(batch, optim_wrapper)
        sync()
        times.append(time.perf_counter() - start)
    ms = statistics.median(times) * 1e3
    images = len(batch['inputs'])
    return dict(ms=ms, images_s=images / ms * 1e3,
                peak_mb=torch.cuda.max_memory_allocated() / 2**20 if cuda else None)


def seg_unavailable() -> Optional[str]:
    """Why the Swin UperNet cases cannot run here, or None.

    mmseg imports ``mmcv.ops`` when its models are registered, and mmcv-lite (the wheel folder's
    default mmcv: no compiler needed) has no compiled ops.
    """
    if importlib.util.find_spec('mmcv._ext') is None:
        return 'skipped (mmcv-lite: mmseg needs mmcv.ops; gpu_check.sh --mmcv-ops)'
    return None


def peak_tflops(device: str, override: Optional[float]) -> Optional[float]:
    """The dense bf16 peak of the device (``--peak-tflops`` wins); None if unknown (CPU)."""
    if override or not device.startswith('cuda'):
        return override
    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAK_BF16 if key in name), None)


def markdown(rows: List[Dict[str, Any]], args: argparse.Namespace, peak: Optional[float]) -> str:
    """One table: every case, its throughput, memory, ratio to Full and ceiling fraction."""
    device = torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'
    precision = 'bf16 autocast' if args.amp else 'fp32'
    ceiling = f'{peak:.0f} TFLOP/s' if peak else 'unknown'
    lines = [f'Device: {device} | torch {torch.__version__} | {precision} | ViT-B/16 '
             f'{args.img_size} px batch {args.batch_size}; Swin-B UperNet {args.seg_img_size} '
             f'px batch {args.seg_batch_size} | {args.iters} timed steps (median) after '
             f'{args.warmup} | compile backend {args.backend} | bf16 peak {ceiling}' +
             (' | DRY RUN: tiny models, CPU, timings meaningless' if args.dry_run else ''), '',
             '| Model | Variant | Mode | ms/step | images/s | Peak MB | Time / Full | '
             '% of bf16 ceiling |', '|---|---|---|---:|---:|---:|---:|---:|']
    full = {(r['case'].task, r['case'].compiled): r.get('ms') for r in rows
            if r['case'].variant == 'Full'}
    for r in rows:
        case = r['case']
        head = (f'| {"ViT-B/16" if case.task == "vit" else "Swin-B UperNet"} | {case.variant} | '
                f'{"compiled" if case.compiled else "eager"} |')
        if 'ms' not in r:
            lines.append(f'{head} {r["status"]} | | | | |')
            continue
        ref = full.get((case.task, case.compiled))
        gflop = GFLOP.get(case.variant, GFLOP_THROUGH_BACKBONE)
        ceiling = (f'{r["images_s"] * gflop / (peak * 1e3):.1%}'
                   if peak and case.task == 'vit' and not args.dry_run else '-')
        memory = '-' if r['peak_mb'] is None else f'{r["peak_mb"]:.0f}'
        ratio = f'{r["ms"] / ref:.3f}' if ref else '-'
        lines.append(f'{head} {r["ms"]:.1f} | {r["images_s"]:.1f} | {memory} | {ratio} | '
                     f'{ceiling} |')
    return '\n'.join(lines) + '\n'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='PETL training throughput on a GPU')
    parser.add_argument('--dry-run', action='store_true',
                        help='tiny models, one step each, on the CPU (what the test suite runs)')
    parser.add_argument('--out', help='write the Markdown table here')
    parser.add_argument('--methods', nargs='+', default=list(VIT_METHODS))
    parser.add_argument('--seg-methods', nargs='+', default=list(SEG_METHODS))
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--seg-batch-size', type=int, default=8)
    parser.add_argument('--seg-img-size', type=int, default=512)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--budget-s', type=float, default=480.,
                        help='start no case after this many seconds')
    parser.add_argument('--compiled-methods', nargs='*',
                        help='ViT variants also run compiled (default: all of --methods; none '
                             'to skip; inductor takes ~30-60 s per variant)')
    parser.add_argument('--backend', default='inductor', help='torch.compile backend')
    parser.add_argument('--peak-tflops', type=float, help='dense bf16 peak of the device')
    args = parser.parse_args(argv)
    args.device = 'cuda' if torch.cuda.is_available() and not args.dry_run else 'cpu'
    if args.dry_run:
        args.batch_size = args.seg_batch_size = 2  # UperNet's pooled BatchNorm needs 2
        args.img_size, args.seg_img_size, args.iters, args.warmup = 32, 32, 1, 0
        args.backend = 'aot_eager'
    elif args.device == 'cpu':
        parser.error('no GPU is visible; use --dry-run for the CPU check.')
    args.amp = args.device == 'cuda'
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    start, rows = time.perf_counter(), []
    compiled = args.methods if args.compiled_methods is None else args.compiled_methods
    for case in cases(args.methods, args.seg_methods, compiled):
        row: Dict[str, Any] = dict(case=case)
        if time.perf_counter() - start > args.budget_s:
            row['status'] = 'skipped (time budget)'
        elif case.task == 'seg' and seg_unavailable():
            row['status'] = seg_unavailable()
        else:
            try:
                row.update(run_case(case, args))
            except Exception as exc:  # one failing case must not hide the others' figures
                traceback.print_exc()
                row['status'] = f'failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}'
        rows.append(row)
        outcome = row['status'] if 'status' in row else f'{row["ms"]:.1f} ms'
        mode = 'compiled' if case.compiled else 'eager'
        print(f'[gpu_check] {case.task} {case.variant} {mode}: {outcome}', flush=True)
        # Free the case's model: dynamo's caches hold compiled models (and every model compiles
        # afresh: they share one train_step code object, so its cache would fill up).
        torch._dynamo.reset()
        gc.collect()
        if args.device.startswith('cuda'):
            torch.cuda.empty_cache()
        if args.out:  # after every case: a run killed at its time limit still leaves a table
            with open(args.out, 'w') as f:
                f.write(markdown(rows, args, peak_tflops(args.device, args.peak_tflops)))
    report = markdown(rows, args, peak_tflops(args.device, args.peak_tflops))
    print(report)
    return 1 if any(r.get('status', '').startswith('failed') for r in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
