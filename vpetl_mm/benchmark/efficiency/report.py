"""Ratios, the efficiency targets, the machine description and the markdown tables.

Records come from :mod:`~vpetl_mm.benchmark.efficiency.measure`: ``train`` maps a variant to
its training record (``time_ms``, ``peak_mb``, parameter counts), ``infer`` to its inference
record (``unmerged_vs_plain``, ``merged_vs_plain``). A record with an ``error`` key failed.

The memory targets read ``target_mb``: CUDA's ``max_memory_allocated`` on a GPU, and on the CPU
the accounted memory (parameters, gradients, optimizer state and saved activations counted from
the tensors), because the CPU's resident peak moves by hundreds of MB between identical runs.
"""
import os
import platform
from typing import Any, Dict, List, Optional, Tuple

from ..variants import registered
from .compiled import split_compiled

Records = Dict[str, Dict[str, Any]]

#: The methods each target group covers (issue 8 of the benchmark).
THROUGH_BACKBONE = ('LoRA', 'Adapter', 'AdaptFormer', 'BitFit', 'SSF', 'VPT')
SIDE = ('E3VA', 'LST', 'LAST', 'HST')
#: The merged-inference targets: every registered method whose merged model is the plain host
#: (read from the class: ``folds_into_host()``), the references Full and Frozen aside.
MERGED = tuple(cls.__name__ for cls in registered()
               if cls.__name__ not in ('Full', 'Frozen') and cls.folds_into_host())
PEER_BASELINES = ('peft-LoRA', 'mmpretrain-LoRAModel')

#: (target, variant, field, reference variant or None, limit): ``variant``'s ``field`` divided
#: by the reference's same field (or read as a ratio already) must be <= limit.
TARGETS: Tuple[Tuple[str, str, str, Optional[str], float], ...] = (
    *((f'{m} time/iter <= 0.75x Full', m, 'time_ms', 'Full', 0.75) for m in THROUGH_BACKBONE),
    *((f'{m} peak memory <= 0.75x Full', m, 'target_mb', 'Full', 0.75) for m in THROUGH_BACKBONE),
    *((f'{m} time/iter <= 0.45x Full', m, 'time_ms', 'Full', 0.45) for m in SIDE),
    ('E3VA peak memory <= 1.15x Frozen', 'E3VA', 'target_mb', 'Frozen', 1.15),
    *((f'{m} merged inference <= 1.02x plain host time', m, 'merged_vs_plain', None, 1.02)
      for m in MERGED),
    ('LoRA unmerged inference <= 1.05x plain host time', 'LoRA', 'unmerged_vs_plain', None,
     1.05),
    *((f'vpetl_mm-LoRA time/iter <= {p}', 'vpetl_mm-LoRA', 'time_ms', p, 1.0)
      for p in PEER_BASELINES),
)


def add_ratios(train: Records) -> None:
    """Set ``target_mb`` and ``{mem,acc,time}_vs_{full,frozen}`` on every training record
    (the ratios are None without that baseline)."""
    for res in train.values():
        if 'error' not in res:
            res['target_mb'] = res['peak_mb'] if res['device'].startswith('cuda') \
                else res['accounted_mb']
    for res in train.values():
        for key, base in (('full', 'Full'), ('frozen', 'Frozen')):
            ref = train.get(base, {})
            for short, field in (('mem', 'peak_mb'), ('acc', 'accounted_mb'),
                                 ('time', 'time_ms')):
                ok = 'error' not in res and 'error' not in ref and ref.get(field) and \
                    res.get(field) is not None
                res[f'{short}_vs_{key}'] = res[field] / ref[field] if ok else None


def _value(records: Records, variant: str, field: str) -> Optional[float]:
    rec = records.get(variant, {})
    return None if 'error' in rec else rec.get(field)


def check_targets(train: Records, infer: Optional[Records] = None,
                  interleaved: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """Every target: PASS / FAIL, or SKIP where its variants were not measured.

    Time targets read the ``interleaved`` record (one process, steps in turn) where it holds
    both variants, else the separate training workers.

    Examples:
        >>> {t['status'] for t in check_targets({})}
        {'SKIP'}
    """
    infer = infer or {}
    steps = {} if not interleaved or 'error' in interleaved else interleaved['time_ms']
    targets = []
    for name, variant, field, ref, limit in TARGETS:
        records = infer if field.endswith('_vs_plain') else train
        if field == 'time_ms' and variant in steps and ref in steps:
            records = {v: dict(time_ms=t) for v, t in steps.items()}
        value = _value(records, variant, field)
        if ref is not None:
            base = _value(records, ref, field)
            value = value / base if value is not None and base else None
        status = 'SKIP' if value is None else 'PASS' if value <= limit else 'FAIL'
        targets.append(dict(target=name, status=status, ratio=value, limit=limit))
    return targets


def machine(device: str) -> Dict[str, str]:
    """The measuring machine in words: CPU model and cores, GPU, torch and mm versions."""
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((ln.split(':', 1)[1].strip() for ln in f if ln.startswith('model name')),
                       cpu)
    except OSError:
        pass
    info = dict(cpu=f'{cpu}, {os.cpu_count()} logical cores, torch threads '
                    f'{torch.get_num_threads()}',
                torch=torch.__version__, python=platform.python_version())
    if device.startswith('cuda'):
        info['gpu'] = f'{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})'
    import importlib.metadata as md
    versions = []
    for pkg in ('mmengine', 'mmcv', 'mmpretrain', 'mmdet', 'mmsegmentation', 'timm', 'peft'):
        try:
            versions.append(f'{pkg} {md.version(pkg)}')
        except md.PackageNotFoundError:
            pass
    info['packages'] = ', '.join(versions)
    return info


def _fmt(value: Optional[float], spec: str = '.3f') -> str:
    return '-' if value is None else format(value, spec)


def _failed(name: str, res: Dict[str, Any], columns: int) -> str:
    return f'| {name} | failed: {res["error"].strip().splitlines()[-1][:100]} |' + \
        ' |' * (columns - 2)


def train_markdown(train: Records) -> str:
    """Training table: parameters, ms/iter, peak and accounted memory, ratios to Full / Frozen."""
    lines = ['| Variant | Backbone params (trainable) | ms/iter | Time / Full | Time / Frozen | '
             'Peak MB | Peak / Full | Accounted MB | Acc. / Full | Acc. / Frozen |',
             '|---|' + '---:|' * 9]
    for name, res in train.items():
        if 'error' in res:
            lines.append(_failed(name, res, 10))
            continue
        lines.append(f'| {name} | {res["backbone_trainable"]:,} | {res["time_ms"]:.1f} | '
                     f'{_fmt(res["time_vs_full"])} | {_fmt(res["time_vs_frozen"])} | '
                     f'{res["peak_mb"]:.1f} | {_fmt(res["mem_vs_full"])} | '
                     f'{res["accounted_mb"]:.1f} | {_fmt(res["acc_vs_full"])} | '
                     f'{_fmt(res["acc_vs_frozen"])} |')
    return '\n'.join(lines) + '\n'


def infer_markdown(infer: Records) -> str:
    """Inference table: ms per batch of the plain host, the variant unmerged and merged, and
    the A/A control (a second plain host: the spread a ratio shows with nothing changed)."""
    lines = ['| Variant | Plain host ms | Unmerged ms | Merged ms | Unmerged / plain | '
             'Merged / plain | A/A control |', '|---|' + '---:|' * 6]
    for name, res in infer.items():
        if 'error' in res:
            lines.append(_failed(name, res, 7))
            continue
        lines.append(f'| {name} | {res["plain_ms"]:.1f} | {res["unmerged_ms"]:.1f} | '
                     f'{_fmt(res["merged_ms"], ".1f")} | {_fmt(res["unmerged_vs_plain"])} | '
                     f'{_fmt(res["merged_vs_plain"])} | '
                     f'{_fmt(res.get("control_vs_plain"))} |')
    return '\n'.join(lines) + '\n'


def interleaved_markdown(record: Dict[str, Any]) -> str:
    """Interleaved training times and their ratios to Full and Frozen (where they ran), and
    for each compiled twin (``<variant>+compile``) its ratio to its eager variant."""
    times = record['time_ms']
    refs = [r for r in ('Full', 'Frozen') if r in times] or [next(iter(times))]
    twins = any(split_compiled(n)[1] for n in times)
    lines = ['| Variant | ms/iter | ' + ' | '.join(f'Time / {r}' for r in refs) + ' |' +
             (' Compiled / eager |' if twins else ''),
             '|---|---:|' + '---:|' * (len(refs) + twins)]
    for name, ms in times.items():
        eager, compiled = split_compiled(name)
        ratio = f' {ms / times[eager]:.3f} |' if compiled and eager in times else ' - |'
        lines.append(f'| {name} | {ms:.1f} | ' +
                     ' | '.join(f'{ms / times[r]:.3f}' for r in refs) + ' |' +
                     (ratio if twins else ''))
    return '\n'.join(lines) + '\n'


def markdown(train: Records, infer: Records, settings: Dict[str, Any],
             targets: List[Dict[str, Any]], interleaved: Optional[Dict[str, Any]] = None
             ) -> str:
    """The whole report: settings, training tables, inference table, targets."""
    parts = ['Settings: ' + ' | '.join(f'{k}: {v}' for k, v in settings.items()), '']
    if train:
        parts += ['Training (forward + backward + optimizer step):', '', train_markdown(train)]
    if interleaved:
        parts += ['Training, interleaved in one process (one step of each variant in turn):',
                  '', interleaved_markdown(interleaved) if 'error' not in interleaved else
                  f'failed: {interleaved["error"]}\n']
    if infer:
        parts += ['Inference (interleaved in one process per variant; times per batch):', '',
                  infer_markdown(infer)]
    if targets:
        parts += ['| Target | Ratio | Status |', '|---|---:|---|']
        parts += [f'| {t["target"]} | {_fmt(t["ratio"])} | {t["status"]} |' for t in targets
                  if t['status'] != 'SKIP']
    return '\n'.join(parts) + '\n'
