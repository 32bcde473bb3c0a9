"""Training efficiency of PETL methods on one dense config: params, time/iter, peak memory.

Each method (``model.backbone.petl = dict(type=METHOD)``) is measured in a *fresh process*
(this script with ``--worker``), so allocator caches and peak counters never leak between
methods: no weights loaded, the config's ``optim_wrapper`` (trainable parameters only), a
synthetic batch in the model's data format, timed ``model.train_step`` calls. The parent prints
a markdown table with ratios to full fine-tuning (Full) and to linear probing (Frozen).

Memory: CUDA ``max_memory_allocated`` over the timed steps (reset after warm-up); on CPU the
peak RSS over the timed steps (``VmHWM`` reset through ``/proc/self/clear_refs``) minus
file-backed pages (library code) and the anonymous memory before the model was built, i.e.
weights + gradients + optimizer state + activations as CUDA counts them. CPU wall times depend
on the host's load: each record keeps the 1-minute load average and the process CPU time.

Examples:
    $ python tools/analysis/efficiency.py tests/configs/upernet_swin-tiny-petl.py \\
        --methods Full Frozen Adapter --iters 2 --warmup 1 --img-size 64 --out eff.json
    $ python tools/analysis/efficiency.py configs/e3va/swin-b_coco.py --device cuda --amp \\
        --batch-size 2 --img-size 512 --targets --strict --markdown eff.md
"""
import argparse
import copy
import gc
import importlib
import importlib.util
import json
import os
import os.path as osp
import random
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
sys.path.insert(0, REPO)
DEFAULT_CONFIG = osp.join(REPO, 'configs', 'examples', 'mask-rcnn_swin-t_lora_coco.py')
# Table order: the two baselines first, then roughly by how much of the backbone trains.
ORDER = ('Full', 'Frozen', 'BitFit', 'LNTune', 'Partial', 'Adapter', 'LoRA', 'AdaptFormer',
         'Mona', 'LoRand', 'E3VA')
# (module, base class, task): isinstance, not type names, so subclasses are recognised.
TASKS = (('mmdet.models.detectors', 'BaseDetector', 'det'),
         ('mmseg.models.segmentors', 'BaseSegmentor', 'seg'),
         ('mmpretrain.models.classifiers', 'BaseClassifier', 'cls'))


# -- worker: one method, one process --------------------------------------------------------
def _status_kib(key: str) -> Optional[int]:
    """A ``/proc/self/status`` field (``VmHWM``, ``RssAnon`` ...) in KiB; None if unreadable."""
    try:
        with open('/proc/self/status') as f:
            return next((int(ln.split()[1]) for ln in f if ln.startswith(key + ':')), None)
    except OSError:
        return None


def _reset_hwm() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False where not allowed."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            return f.write('5') == 1
    except OSError:
        return False


def _import_scope(scope: Optional[str]) -> None:
    # Import now what the toolbox's registries import lazily at the first build: otherwise
    # a few thousand modules (~150 MB) would count as the model's memory.
    from mmengine.registry import Registry
    module = importlib.util.find_spec(f'{scope}.registry') if scope else None
    for registry in vars(importlib.import_module(module.name)).values() if module else ():
        if isinstance(registry, Registry):
            registry.import_from_location()


def _strip_pretrained(node: Any) -> None:
    # Benchmarks load nothing: drop Pretrained init_cfgs and pretrained= paths at any depth.
    if isinstance(node, dict):
        init_cfgs = node.get('init_cfg') or []
        init_cfgs = [init_cfgs] if isinstance(init_cfgs, dict) else list(init_cfgs)
        if any(c.get('type') == 'Pretrained' for c in init_cfgs):
            node['init_cfg'] = [c for c in init_cfgs if c.get('type') != 'Pretrained'] or None
        if isinstance(node.get('pretrained'), str):
            node['pretrained'] = None
        values = node.values()
    else:
        values = node if isinstance(node, (list, tuple)) else ()
    for value in values:
        _strip_pretrained(value)


def _task(model) -> str:
    for module, name, task in TASKS:
        if importlib.util.find_spec(module.split('.')[0]) and \
                isinstance(model, getattr(importlib.import_module(module), name)):
            return task
    raise TypeError(f'{type(model).__name__}: synthetic batches exist for mmdet detectors, '
                    'mmseg segmentors and mmpretrain classifiers only.')


def synthetic_batch(model, batch_size: int, img_size: int, device: str,
                    seed: int = 0) -> Dict[str, list]:
    """A raw batch (``inputs`` uint8 images + data samples) as the model's dataloader yields.

    Args:
        model: A built mmdet detector, mmseg segmentor or mmpretrain classifier.
        batch_size: Images in the batch.
        img_size: Square image side in pixels.
        device: Images go there already: the timed steps include no host-to-device copy.
        seed: Seed of the synthetic content.

    Returns:
        ``dict(inputs=[3xHxW uint8], data_samples=[...])`` with ``gt_instances`` (bboxes, labels,
        ``BitmapMasks`` if a mask head exists), ``gt_sem_seg`` or ``gt_label``.

    Examples:
        >>> batch = synthetic_batch(detector, batch_size=2, img_size=256, device='cpu')
        >>> data = detector.data_preprocessor(batch, True)  # what train_step does first
    """
    import numpy as np
    import torch
    from mmengine.structures import InstanceData, PixelData
    rng, h, w, task = np.random.RandomState(seed), img_size, img_size, _task(model)
    # The smallest num_classes of all heads, so synthetic labels are valid in every head.
    classes = min([m.num_classes for m in model.modules()
                   if isinstance(getattr(m, 'num_classes', None), int) and m.num_classes > 0]
                  or [1])
    with_mask = any(getattr(m, 'with_mask', False) is True for m in model.modules())
    inputs, samples = [], []
    for i in range(batch_size):
        inputs.append(torch.from_numpy(rng.randint(0, 256, (3, h, w), dtype=np.uint8)).to(device))
        meta = dict(img_id=i, img_path=f'<synthetic-{i}>', img_shape=(h, w), ori_shape=(h, w),
                    scale_factor=(1., 1.), flip=False, flip_direction=None)
        if task == 'det':
            from mmdet.structures import DetDataSample
            from mmdet.structures.mask import BitmapMasks
            n = 4  # objects of 10-40 % of the side: the RPN / RoI samplers get real positives
            wh = rng.uniform(0.1, 0.4, (n, 2)) * (w, h)
            xy = rng.uniform(0, 1, (n, 2)) * ((w, h) - wh)
            boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
            inst = InstanceData(bboxes=torch.from_numpy(boxes),
                                labels=torch.from_numpy(rng.randint(0, classes, n)).long())
            if with_mask:  # BitmapMasks, as LoadAnnotations(with_mask=True) produces them
                masks = np.zeros((n, h, w), dtype=np.uint8)
                for k, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
                    masks[k, y1:y2 + 1, x1:x2 + 1] = 1
                inst.masks = BitmapMasks(masks, h, w)
            samples.append(DetDataSample(metainfo=meta, gt_instances=inst))
        elif task == 'seg':
            from mmseg.structures import SegDataSample
            seg = torch.from_numpy(rng.randint(0, classes, (1, h, w))).long()
            samples.append(SegDataSample(metainfo=meta, gt_sem_seg=PixelData(data=seg)))
        else:
            from mmpretrain.structures import DataSample
            samples.append(DataSample(metainfo=meta).set_gt_label(int(rng.randint(classes))))
    return dict(inputs=inputs, data_samples=samples)


def build_cfg(config: str, method: str, cfg_options: Optional[dict], img_size: int,
              amp: bool):
    """Load ``config`` with ``petl=dict(type=method)``, nothing pretrained, AMP if asked.

    Examples:
        >>> cfg = build_cfg('tests/configs/upernet_swin-tiny-petl.py', 'LoRA', None, 64, False)
        >>> cfg.model.backbone.petl
        {'type': 'LoRA'}
    """
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    backbone = cfg.model.get('backbone', {})
    if 'PETLBackbone' not in str(backbone.get('type')):
        raise ValueError(f'{config}: model.backbone is not vpetl_mm.PETLBackbone.')
    backbone['petl'] = dict(type=method)
    _strip_pretrained(cfg.model)
    # mmseg pads every training image to data_preprocessor.size: make that the synthetic size.
    if cfg.model.get('data_preprocessor', {}).get('size') is not None:
        cfg.model.data_preprocessor['size'] = (img_size, img_size)
    if amp and cfg.optim_wrapper.get('type', 'OptimWrapper') == 'OptimWrapper':
        cfg.optim_wrapper['type'] = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    return cfg


def run_worker(args: argparse.Namespace) -> Dict[str, Any]:
    """Measure ``args.worker`` (one method) in this process; the JSON-ready record."""
    import numpy as np
    import torch
    import vpetl_mm  # noqa: F401  (registers PETLBackbone and the methods)
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, init_default_scope
    from vpetl_mm.utils import count_params, find_petl_backbone

    cfg = build_cfg(args.config, args.worker, args.cfg_options, args.img_size, args.amp)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    _import_scope(cfg.get('default_scope', None))
    anon_before_build = _status_kib('RssAnon')  # the CPU measure's baseline
    torch.manual_seed(args.seed)
    model = MODELS.build(cfg.model)
    model.init_weights()  # host random init (Pretrained stripped), then each method's init
    model.to(args.device).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = synthetic_batch(model, args.batch_size, args.img_size, args.device, args.seed)
    # Format check once; train_step runs the preprocessor itself every iteration, as training.
    input_shape = list(model.data_preprocessor(copy.deepcopy(batch), True)['inputs'].shape)

    cuda = args.device.startswith('cuda')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    # Same sampler / dropout streams for every method, whatever its construction consumed.
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    random.seed(args.seed)
    for _ in range(args.warmup):
        model.train_step(batch, optim_wrapper)
    sync()
    gc.collect()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    hwm = not cuda and _reset_hwm() and anon_before_build is not None
    measure = 'cuda max_memory_allocated over the timed steps' if cuda else (
        'cpu peak RSS over the timed steps (VmHWM reset after warm-up)' if hwm else
        'cpu lifetime peak RSS (ru_maxrss; /proc/self/clear_refs not writable)') + \
        ' minus file-backed RSS and anonymous RSS before model build'
    load_avg = os.getloadavg()[0]
    times: List[float] = []
    cpu_times: List[float] = []  # process CPU time: less sensitive than wall to a busy host
    for _ in range(args.iters):
        sync()
        start, cpu_start = time.perf_counter(), time.process_time()
        log_vars = model.train_step(batch, optim_wrapper)
        sync()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    if cuda:
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_kib = _status_kib('VmHWM') if hwm else \
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        not_training = (anon_before_build or 0) + (_status_kib('RssFile') or 0) + \
            (_status_kib('RssShmem') or 0)
        peak_mb = (peak_kib - not_training) / 1024.
    losses = {k: float(v.detach()) if torch.is_tensor(v) else float(v)
              for k, v in log_vars.items()}
    wrapper, counts = find_petl_backbone(model), count_params(model)
    return dict(
        method=args.worker,
        backbone_trainable=wrapper.num_trainable() if wrapper else counts['backbone_trainable'],
        trainable=counts['trainable'], total=counts['total'],
        optimizer_params=sum(p.numel() for g in optim_wrapper.optimizer.param_groups
                             for p in g['params']),
        time_ms=statistics.median(times) * 1e3, times_ms=[t * 1e3 for t in times],
        cpu_time_ms=statistics.median(cpu_times) * 1e3, peak_mb=peak_mb,
        memory_measure=measure, device=args.device, load_avg_1m=load_avg,
        device_name=torch.cuda.get_device_name() if cuda else
        f'cpu ({torch.get_num_threads()} threads)', input_shape=input_shape,
        loss=losses.get('loss'), finite=bool(all(np.isfinite(v) for v in losses.values())))


# -- parent: one worker per method, ratios, table, targets ----------------------------------
def measure(method: str, args: argparse.Namespace, raw_options: List[str]) -> Dict[str, Any]:
    """Run one worker process for ``method``: its record, or ``{'method', 'error'}``."""
    cmd = [sys.executable, osp.abspath(__file__), args.config, '--worker', method,
           '--iters', str(args.iters), '--warmup', str(args.warmup), '--batch-size',
           str(args.batch_size), '--img-size', str(args.img_size), '--device', args.device,
           '--seed', str(args.seed)] + (['--amp'] if args.amp else [])
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
    return dict(method=method, error=f'worker failed (rc {rc}):\n{tail}')


def add_ratios(results: Dict[str, Dict[str, Any]]) -> None:
    """Set ``{mem,time}_vs_{full,frozen}`` on every record (None without that baseline)."""
    for res in results.values():
        for key, base in (('full', 'Full'), ('frozen', 'Frozen')):
            ref = results.get(base, {})
            for short, field in (('mem', 'peak_mb'), ('time', 'time_ms')):
                ok = 'error' not in res and 'error' not in ref and ref.get(field)
                res[f'{short}_vs_{key}'] = res[field] / ref[field] if ok else None


def check_targets(results: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The issue's efficiency targets: PASS / FAIL, or SKIP where a method was not measured.

    Examples:
        >>> [t['status'] for t in check_targets({})]
        ['SKIP', 'SKIP', 'SKIP', 'SKIP', 'SKIP']
    """
    def ratio(method: str, field: str) -> Optional[float]:
        return results.get(method, {}).get(field)  # failed records have no ratio fields

    checks = [('E3VA peak memory <= 1.15x Frozen', ratio('E3VA', 'mem_vs_frozen'), 1.15, True),
              ('E3VA time/iter <= 0.45x Full', ratio('E3VA', 'time_vs_full'), 0.45, True)]
    checks += [(f'{m} peak memory < Full', ratio(m, 'mem_vs_full'), 1.0, False)
               for m in ('Mona', 'Adapter', 'LoRA')]
    targets = []
    for name, value, limit, inclusive in checks:
        passed = value is not None and (value <= limit if inclusive else value < limit)
        status = 'SKIP' if value is None else 'PASS' if passed else 'FAIL'
        targets.append(dict(target=name, status=status, ratio=value, limit=limit))
    return targets


def _fmt(value: Optional[float], spec: str = '.3f') -> str:
    return '-' if value is None else format(value, spec)


def markdown(results: Dict[str, Dict[str, Any]], settings: Dict[str, Any]) -> str:
    """The results table plus one line with the measurement settings."""
    lines = ['| Method | Backbone params (trainable) | ms/iter | Peak MB | Mem / Full | '
             'Mem / Frozen | Time / Full | Time / Frozen |', '|---|' + '---:|' * 7]
    for name, res in results.items():
        if 'error' in res:
            lines.append(f'| {name} | failed: {res["error"].strip().splitlines()[-1][:100]} |'
                         + ' |' * 6)
            continue
        lines.append(f'| {name} | {res["backbone_trainable"]:,} | {res["time_ms"]:.1f} | '
                     f'{res["peak_mb"]:.1f} | {_fmt(res["mem_vs_full"])} | '
                     f'{_fmt(res["mem_vs_frozen"])} | {_fmt(res["time_vs_full"])} | '
                     f'{_fmt(res["time_vs_frozen"])} |')
    return '\n'.join(lines + ['', ' | '.join(f'{k}: {v}' for k, v in settings.items())]) + '\n'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Time/iter, peak memory and trainable params of PETL methods (vpetl_mm)')
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG, help='uses PETLBackbone')
    parser.add_argument('--methods', nargs='+', help='default: every registered method')
    parser.add_argument('--iters', type=int, default=10, help='timed iterations (median)')
    parser.add_argument('--warmup', type=int, default=5, help='untimed iterations first')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--img-size', type=int, default=512, help='synthetic square images')
    parser.add_argument('--device', choices=['cpu', 'cuda'], help='default: cuda if available')
    parser.add_argument('--amp', action='store_true', help='AmpOptimWrapper (cuda only)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='key=value ...')
    parser.add_argument('--out', help='write all results as JSON here')
    parser.add_argument('--markdown', help='write the markdown table here')
    parser.add_argument('--targets', action='store_true', help='check the efficiency targets')
    parser.add_argument('--strict', action='store_true', help='exit 1 if a target FAILs')
    parser.add_argument('--timeout', type=int, default=3600, help='seconds per worker')
    parser.add_argument('--worker', metavar='METHOD', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        parser.error('--iters must be >= 1 and --warmup >= 0.')
    import torch
    args.device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no GPU is visible.')
    if args.amp and args.device != 'cuda':
        parser.error('--amp needs --device cuda (mmengine AmpOptimWrapper has no CPU path).')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.worker:  # child process: one measurement, one JSON line on stdout
        print(json.dumps(run_worker(args)), flush=True)
        return 0
    from vpetl_mm.registry import PETL_METHODS
    PETL_METHODS.import_from_location()
    registry = PETL_METHODS.module_dict
    unknown = [m for m in args.methods or () if m not in registry]
    if unknown:
        raise SystemExit(f'Unknown method(s) {unknown}; registered: {sorted(registry)}.')
    # Aliases (FullFinetune, LinearProbe, LN-Tune ...) name the same class: measure each class
    # once, under its class name, so baselines and targets find 'Full', 'Frozen', 'E3VA' ...
    canonical = sorted({cls.__name__ for cls in registry.values()},
                       key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m))
    methods = [registry[m].__name__ for m in args.methods] if args.methods else canonical
    # Ratios need both baselines; Full goes first, as the slowest, to show the cost early.
    methods = list(dict.fromkeys(['Full', 'Frozen'] + methods))
    # --cfg-options go to the workers as typed (re-serialising parsed values loses tuples).
    raw = argv[argv.index('--cfg-options') + 1:] if '--cfg-options' in argv else []
    raw = raw[:next((i for i, tok in enumerate(raw) if tok.startswith('--')), len(raw))]

    results: Dict[str, Dict[str, Any]] = {}
    for method in methods:
        res = results[method] = measure(method, args, raw)
        print(f'[efficiency] {method}: FAILED\n{res["error"]}' if 'error' in res else
              f'[efficiency] {method}: {res["time_ms"]:.1f} ms/iter, {res["peak_mb"]:.1f} MB '
              f'peak, {res["backbone_trainable"]:,} trainable backbone params '
              f'({res["process_s"]:.0f} s)', file=sys.stderr, flush=True)
    add_ratios(results)
    ok = [r for r in results.values() if 'error' not in r]
    loads = [r['load_avg_1m'] for r in ok]
    settings = dict(
        config=osp.relpath(args.config), device=ok[0]['device_name'] if ok else args.device,
        memory=ok[0]['memory_measure'] if ok else '-', batch_size=args.batch_size,
        img_size=args.img_size, amp=args.amp,
        iters=f'{args.iters} timed (median), {args.warmup} warm-up',
        host_load_1m=f'{min(loads):.2f}-{max(loads):.2f}' if loads else '-',
        cfg_options=' '.join(raw) or '-')
    table = markdown(results, settings)
    print(table)
    targets = check_targets(results) if args.targets else []
    for tgt in targets:
        print(f'{tgt["status"]}  {tgt["target"]}  (ratio {_fmt(tgt["ratio"])})')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(settings=settings, results=results, targets=targets), f, indent=2)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(table)
    failed = [m for m, r in results.items() if 'error' in r]
    if failed:
        print(f'[efficiency] failed: {failed}', file=sys.stderr)
        return 1
    return 1 if args.strict and any(t['status'] == 'FAIL' for t in targets) else 0


if __name__ == '__main__':
    sys.exit(main())
