"""Worker-side efficiency measurements: one variant (a PETL method or a peer), one process.

:func:`measure_train` times ``model.train_step`` (forward + backward + optimizer step) on a
synthetic batch and reads the peak training memory; :func:`measure_infer` times inference of
the variant unmerged and merged against the plain host, interleaved in rounds inside one
process so that the host's load drifts equally over all three. ``tools/analysis/efficiency.py``
runs each in a fresh process, so allocator caches and peak counters never leak between
variants.

Memory: CUDA ``max_memory_allocated`` over the timed steps (reset after warm-up); on the CPU the
peak RSS over the timed steps (``VmHWM`` reset through ``/proc/self/clear_refs``) minus
file-backed pages (library code) and the anonymous memory before the model was built, i.e.
weights + gradients + optimizer state + activations as CUDA counts them. The CPU allocator
keeps freed memory mapped, so that peak moves by hundreds of MB between identical runs;
:func:`accounted_memory` counts the same quantities from the tensors themselves, exactly.
"""
import argparse
import ast
import contextlib
import copy
import gc
import importlib
import importlib.util
import os
import random
import resource
import statistics
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, Registry, init_default_scope

from ...utils import count_params, find_petl_backbone, merge_and_unload
from .compiled import compile_train_step, split_compiled, warmup_steps
from .peers import PEERS
from .synthetic import synthetic_batch


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


def parse_variant(variant: str) -> Dict[str, Any]:
    """``'VPT'`` -> ``{'type': 'VPT'}``; ``'VPT:length=10,deep=True'`` adds those arguments.

    Examples:
        >>> parse_variant('LoRA:rank=4,targets="qkv"')
        {'type': 'LoRA', 'rank': 4, 'targets': 'qkv'}
    """
    name, _, options = variant.partition(':')
    petl: Dict[str, Any] = dict(type=name)
    for item in filter(None, options.split(',')):
        key, sep, value = item.partition('=')
        if not sep or not key.strip():
            raise ValueError(f'Variant {variant!r}: write options as NAME:key=value,key=value.')
        try:
            petl[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            petl[key.strip()] = value  # a bare word: a string
    return petl


def build_cfg(config: str, variant: str, cfg_options: Optional[dict], img_size: int,
              amp: bool):
    """Load ``config`` with the variant's backbone, nothing pretrained, AMP if asked.

    Args:
        config: A config whose ``model.backbone`` is ``vpetl_mm.PETLBackbone``.
        variant: A registered PETL method (``petl=dict(type=variant)``, arguments as in
            :func:`parse_variant`) or a name in
            :data:`~vpetl_mm.benchmark.efficiency.peers.PEERS`.
        cfg_options: Overrides merged into the config first.
        img_size: The synthetic image side (also mmseg's padding size).
        amp: Use ``AmpOptimWrapper`` (bf16/fp16 autocast; CUDA).

    Examples:
        >>> cfg = build_cfg('tests/configs/upernet_swin-tiny-petl.py', 'LoRA', None, 64, False)
        >>> cfg.model.backbone.petl
        {'type': 'LoRA'}
    """
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    backbone = cfg.model.get('backbone', {})
    if 'PETLBackbone' not in str(backbone.get('type')):
        raise ValueError(f'{config}: model.backbone is not vpetl_mm.PETLBackbone.')
    if variant in PEERS:
        cfg.model.backbone = PEERS[variant](backbone.to_dict())
    else:
        backbone['petl'] = parse_variant(variant)
    _strip_pretrained(cfg.model)
    # mmseg pads every training image to data_preprocessor.size: make that the synthetic size.
    if cfg.model.get('data_preprocessor', {}).get('size') is not None:
        cfg.model.data_preprocessor['size'] = (img_size, img_size)
    if amp and cfg.optim_wrapper.get('type', 'OptimWrapper') == 'OptimWrapper':
        cfg.optim_wrapper['type'] = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    return cfg


def _build(cfg, args: argparse.Namespace, batch: Optional[dict] = None):
    """The model, host init then each method's init, on ``args.device``; calibrated if needed."""
    torch.manual_seed(args.seed)
    model = MODELS.build(cfg.model)
    model.init_weights()  # host random init (Pretrained stripped), then each method's init
    model.to(args.device)
    wrapper = find_petl_backbone(model)
    if wrapper is not None and wrapper.uncalibrated():
        # SCT / GPS select from the training data: select on the synthetic batch.
        data = model.data_preprocessor(copy.deepcopy(batch or synthetic_batch(
            model, args.batch_size, args.img_size, args.device, args.seed)), True)
        labels = torch.stack([s.gt_label for s in data['data_samples']]).flatten()
        wrapper.calibrate(lambda: iter([(data['inputs'], labels)]))
    return model, wrapper


def _setup(args: argparse.Namespace, variant: str):
    cfg = build_cfg(args.config, split_compiled(variant)[0], args.cfg_options, args.img_size,
                    args.amp)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    _import_scope(cfg.get('default_scope', None))
    return cfg


def _device_name(device: str) -> str:
    if device.startswith('cuda'):
        return torch.cuda.get_device_name()
    return f'cpu ({torch.get_num_threads()} threads)'


def _timed_train_steps(model, batch: dict, optim_wrapper, args: argparse.Namespace,
                       anon_before_build: Optional[int]) -> Dict[str, Any]:
    """Warm up, then time ``args.iters`` training steps and read the peak training memory."""
    cuda = args.device.startswith('cuda')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    # Same sampler / dropout streams for every method, whatever its construction consumed.
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    random.seed(args.seed)
    for _ in range(warmup_steps(args, args.worker)):
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
    return dict(times=times, cpu_times=cpu_times, log_vars=log_vars, measure=measure,
                load_avg=load_avg, peak_mb=_peak_train_mb(cuda, hwm, anon_before_build))


def _peak_train_mb(cuda: bool, hwm: bool, anon_before_build: Optional[int]) -> float:
    """The peak memory of the timed steps (see the module docstring), in MB."""
    if cuda:
        return torch.cuda.max_memory_allocated() / 2**20
    peak_kib = _status_kib('VmHWM') if hwm else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    not_training = (anon_before_build or 0) + (_status_kib('RssFile') or 0) + \
        (_status_kib('RssShmem') or 0)
    return (peak_kib - not_training) / 1024.


def measure_train(args: argparse.Namespace) -> Dict[str, Any]:
    """Time ``args.iters`` training steps of ``args.worker``; the JSON-ready record.

    Examples:
        >>> # args as tools/analysis/efficiency.py parses them for its worker process
        >>> record = measure_train(parse_args(['--worker', 'LoRA', '--config', config]))
        >>> record['time_ms'], record['peak_mb'], record['backbone_trainable']
    """

    cfg = _setup(args, args.worker)
    anon_before_build = _status_kib('RssAnon')  # the CPU measure's baseline
    model, wrapper = _build(cfg, args)
    model.train()
    if split_compiled(args.worker)[1]:
        compile_train_step(model, args.compile_backend)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = synthetic_batch(model, args.batch_size, args.img_size, args.device, args.seed)
    # Format check once; train_step runs the preprocessor itself every iteration, as training.
    input_shape = list(model.data_preprocessor(copy.deepcopy(batch), True)['inputs'].shape)
    run = _timed_train_steps(model, batch, optim_wrapper, args, anon_before_build)
    losses = {k: float(v.detach()) if torch.is_tensor(v) else float(v)
              for k, v in run['log_vars'].items()}
    accounted = accounted_memory(model, batch, optim_wrapper.optimizer)
    counts = count_params(model)
    return dict(
        method=args.worker, phase='train',
        backbone_trainable=wrapper.num_trainable() if wrapper else counts['backbone_trainable'],
        trainable=counts['trainable'], total=counts['total'],
        optimizer_params=sum(p.numel() for g in optim_wrapper.optimizer.param_groups
                             for p in g['params']),
        time_ms=statistics.median(run['times']) * 1e3,
        times_ms=[t * 1e3 for t in run['times']],
        cpu_time_ms=statistics.median(run['cpu_times']) * 1e3, peak_mb=run['peak_mb'],
        accounted_mb=accounted['total'], accounted=accounted,
        memory_measure=run['measure'], device=args.device, load_avg_1m=run['load_avg'],
        device_name=_device_name(args.device), input_shape=input_shape,
        loss=losses.get('loss'), finite=bool(all(np.isfinite(v) for v in losses.values())))


def accounted_memory(model, batch: dict, optimizer) -> Dict[str, float]:
    """Training memory counted from tensors instead of read from the process, in MB.

    Parameters, gradients and optimizer state as they stand, plus what autograd keeps for
    backward during one training forward (unique storages, parameters excluded): what a CUDA
    allocator holds at the end of the forward, without its caching, fragmentation or transient
    workspaces. Deterministic, so it separates methods whose CPU resident peaks are within
    the allocator's noise.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: Dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    data = model.data_preprocessor(copy.deepcopy(batch), True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        losses = model._run_forward(data, mode='loss')
    del losses, data

    def mb(tensors) -> float:
        return sum(t.numel() * t.element_size() for t in tensors) / 2**20

    trainable = [p for p in model.parameters() if p.requires_grad]
    state = [t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)]
    memory = dict(params=mb(model.parameters()), grads=mb(trainable), optimizer=mb(state),
                  saved=sum(saved.values()) / 2**20)
    memory['total'] = sum(memory.values())
    return memory


def measure_interleaved(args: argparse.Namespace) -> Dict[str, Any]:
    """Training time of several variants built in one process, interleaved step by step.

    ``args.worker`` is a ';'-separated list of variants. Every round runs one training step
    of each, the order rotating, so all of them see the same host load; each variant's time is
    the median over ``args.rounds * args.iters`` steps. Much tighter than comparing separate
    processes on a shared CPU (memory is not measured here: the models share the process).
    """
    names = args.worker.split(';')
    models: Dict[str, Any] = {}
    for name in names:
        cfg = _setup(args, name)
        model = _build(cfg, args)[0].train()
        if split_compiled(name)[1]:
            compile_train_step(model, args.compile_backend)
        models[name] = (model, build_optim_wrapper(model, cfg.optim_wrapper))
    batch = synthetic_batch(models[names[0]][0], args.batch_size, args.img_size, args.device,
                            args.seed)
    sync = torch.cuda.synchronize if args.device.startswith('cuda') else (lambda: None)
    for name, (model, optim_wrapper) in models.items():
        for _ in range(warmup_steps(args, name)):
            model.train_step(batch, optim_wrapper)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for step in range(args.rounds * args.iters):
        for name in names[step % len(names):] + names[:step % len(names)]:
            model, optim_wrapper = models[name]
            sync()
            start = time.perf_counter()
            model.train_step(batch, optim_wrapper)
            sync()
            times[name].append(time.perf_counter() - start)
    return dict(method=args.worker, phase='interleaved',
                time_ms={n: statistics.median(t) * 1e3 for n, t in times.items()},
                steps_ms={n: [x * 1e3 for x in t] for n, t in times.items()},
                device=args.device, device_name=_device_name(args.device),
                load_avg_1m=os.getloadavg()[0])


def measure_infer(args: argparse.Namespace) -> Dict[str, Any]:
    """Inference time of ``args.worker`` unmerged and merged, relative to the plain host.

    The models of the same config are built in this process: the plain host (``Frozen``:
    no injected module, the host's forward as is), a second plain host (the A/A control), the
    variant, and (for methods that fold into the host) the variant merged and unloaded
    (:func:`~vpetl_mm.utils.merge_and_unload`: the stock model, folded weights). Each
    round times ``args.iters`` forwards (``mode='tensor'``, inference mode) of each model in
    turn, the order rotating between rounds; a ratio is the median over rounds of the round's
    median times, so drift in the host's load cancels. The control (two instances of one
    model) shows the spread that remains: on a CPU, merely where each copy of the weights
    lands in memory moves its time by a few percent.
    """
    cfg = _setup(args, args.worker)
    plain_cfg = build_cfg(args.config, 'Frozen', args.cfg_options, args.img_size, args.amp)
    models: Dict[str, Any] = {'plain': _build(plain_cfg, args)[0],
                              'control': _build(plain_cfg, args)[0]}
    models['unmerged'], wrapper = _build(cfg, args)
    merged, merged_wrapper = _build(cfg, args)
    if merged_wrapper is not None and not merged_wrapper.unfoldable():
        models['merged'] = merge_and_unload(merged)  # the stock model: the host's own forward
    del merged, merged_wrapper
    cuda = args.device.startswith('cuda')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    batch = synthetic_batch(models['plain'], args.batch_size, args.img_size, args.device,
                            args.seed)
    inputs = models['plain'].data_preprocessor(batch, False)['inputs']
    autocast: Callable = (lambda: torch.autocast('cuda', dtype=torch.bfloat16)) if args.amp \
        else contextlib.nullcontext
    rounds: Dict[str, List[float]] = {name: [] for name in models}
    names = list(models)
    with torch.inference_mode(), autocast():
        for model in models.values():
            model.eval()
            for _ in range(args.warmup):
                model(inputs, mode='tensor')
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                times = []
                for _ in range(args.iters):
                    sync()
                    start = time.perf_counter()
                    models[name](inputs, mode='tensor')
                    sync()
                    times.append(time.perf_counter() - start)
                rounds[name].append(statistics.median(times))
    ratios = {name: statistics.median(t / p for t, p in zip(rounds[name], rounds['plain']))
              for name in names if name != 'plain'}
    return dict(
        method=args.worker, phase='infer', batch_size=args.batch_size,
        plain_ms=statistics.median(rounds['plain']) * 1e3,
        unmerged_ms=statistics.median(rounds['unmerged']) * 1e3,
        merged_ms=statistics.median(rounds['merged']) * 1e3 if 'merged' in rounds else None,
        unmerged_vs_plain=ratios['unmerged'], merged_vs_plain=ratios.get('merged'),
        control_vs_plain=ratios['control'],
        rounds_ms={k: [t * 1e3 for t in v] for k, v in rounds.items()},
        mergeable=wrapper is not None and 'merged' in models, device=args.device,
        device_name=_device_name(args.device), load_avg_1m=os.getloadavg()[0])

