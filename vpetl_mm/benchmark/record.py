"""The run record: one training run's results and provenance as one JSON file.

``tools/train.py`` writes ``<work_dir>/run_record.json`` at the end of every run (rank 0 only)
and, with ``--store``, adds it to the results store (:mod:`vpetl_mm.benchmark.store`). A record
is keyed by ``(config, seed, protocol)``: ``config`` is the config path relative to the
repository root (absolute outside it), so the same config run from another working directory has
the same key.

Fields (``status='done'``): ``config``, ``method``, ``petl`` (the PETL types), ``backbone``,
``dataset``, ``benchmark`` (vtab / fgvc / video / coco / voc / ade20k / image / other), ``seed``,
``protocol`` and ``protocol_label``, ``metric`` (the primary metric's name, e.g.
``accuracy/top1``, ``coco/bbox_mAP``, ``mIoU``), ``value`` (as the evaluator printed it),
``value_pct`` (in percent), ``metrics`` (every primary metric found, as printed), ``split``
(which split the value was measured on), ``params`` (trainable backbone parameters, head
excluded), ``ppt``, ``peak_mem_mb``, ``time_per_iter_s``, ``git``, ``start`` / ``end`` (UTC, ISO
8601), ``duration_s``, ``host``, ``work_dir``. A failed run has ``status='failed'`` and ``error``.

Examples:
    >>> labels = labels_from_path('configs/lora/vit-b_vtab-dtd.py')
    >>> labels['method'], labels['backbone'], labels['dataset'], labels['benchmark']
    ('lora', 'vit-b', 'vtab-dtd', 'vtab')
"""
import datetime
import json
import os
import os.path as osp
import socket
import subprocess
from typing import Dict, List, Optional, Sequence, Tuple

from ..datasets import FGVC_DATASETS, VTAB_DATASETS
from ..evaluation import PRIMARY_METRICS, ppt

RECORD_FILE = 'run_record.json'
SCHEMA = 1
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VIDEO_DATASETS = ('ssv2', 'hmdb51', 'k400', 'ucf101', 'k700', 'diving48')
PROTOCOL_LABELS = {
    'none': 'none (the config as written; the last validation evaluation)',
    'default': 'default (select on val, test once)',
    'legacy': 'legacy (test set selects the epoch, as the reference code)',
}


def config_key(path: str) -> str:
    """The store's name of a config: relative to the repository root when inside it."""
    full = osp.abspath(path)
    rel = osp.relpath(full, REPO)
    return full if rel.startswith('..') else rel.replace(os.sep, '/')


def benchmark_of(dataset: Optional[str], metric: Optional[str] = None) -> str:
    """The benchmark (table) a dataset belongs to: vtab, fgvc, video, coco, voc, ade20k."""
    name = (dataset or '').lower()
    if name.startswith('vtab'):
        return 'vtab'
    if name.startswith('fgvc'):
        return 'fgvc'
    if name.split('-')[0] in VIDEO_DATASETS:
        return 'video'
    if 'coco' in name:
        return 'coco'
    if name.startswith('voc'):
        return 'voc'
    if name.startswith('ade'):
        return 'ade20k'
    return {'accuracy/top1': 'image', 'acc/top1': 'video'}.get(metric or '', 'other')


# folders of configs/ (and tests/configs/) that hold no generated method configs
_NOT_METHODS = ('_base_', 'examples', 'demo', 'image', 'video', 'dense')


def labels_from_path(path: str) -> Dict[str, Optional[str]]:
    """Method, backbone and dataset from a generated config path,
    ``configs/<method>/<backbone>_<dataset>.py``; ``None`` where the path has another form."""
    folder = osp.basename(osp.dirname(osp.abspath(path)))
    parent = osp.basename(osp.dirname(osp.dirname(osp.abspath(path))))
    stem = osp.splitext(osp.basename(path))[0]
    labels: Dict[str, Optional[str]] = dict(method=None, backbone=None, dataset=None)
    if parent == 'configs' and folder not in _NOT_METHODS and '_' in stem:
        backbone, dataset = stem.split('_', 1)
        labels.update(method=folder, backbone=backbone, dataset=dataset)
    labels['benchmark'] = benchmark_of(labels['dataset']) if labels['dataset'] else None
    return labels


def petl_types(cfg) -> List[str]:
    """The PETL method types of ``cfg.model.backbone.petl`` (``[]`` without a PETLBackbone)."""
    backbone = cfg.get('model', {}).get('backbone', {}) or {}
    petl = backbone.get('petl')
    if petl is None:
        return []
    petl = [petl] if isinstance(petl, dict) else list(petl)
    return [str(p.get('type', '?')).split('.')[-1] for p in petl]


def _dataset_from_cfg(cfg) -> Optional[str]:
    dataset = (cfg.get('train_dataloader', {}) or {}).get('dataset', {}) or {}
    while 'dataset' in dataset and 'type' in dataset and 'Wrapper' in str(dataset['type']):
        dataset = dataset['dataset']  # RepeatDataset / ClassBalancedDataset ...
    kind = str(dataset.get('type', '')).split('.')[-1]
    if kind == 'VTAB1k':
        task = dataset.get('task') or osp.basename(osp.normpath(dataset.get('data_root', '')))
        known = {v: k for k, v in VTAB_DATASETS.items()}
        return known.get(task, task if task.startswith('vtab') else f'vtab-{task}')
    if kind == 'FGVC':
        names = {v[0]: k for k, v in FGVC_DATASETS.items()}
        return names.get(dataset.get('name'), f"fgvc-{dataset.get('name')}")
    return kind.replace('Dataset', '').lower() or None


def derive_labels(cfg, config_path: str, explicit: Optional[Dict[str, str]] = None) -> dict:
    """Method, PETL types, backbone, dataset and benchmark of a run.

    Order of precedence: ``explicit`` (the sweep's ``--labels``), the generated config's path
    (``configs/<method>/<backbone>_<dataset>.py``), then the config itself (PETL type in
    ``model.backbone.petl``, the training dataset's type / task, the inner backbone's type).
    """
    labels = labels_from_path(config_path)
    types = petl_types(cfg)
    if labels['method'] is None:
        labels['method'] = '+'.join(types) if types else 'none'
    if labels['dataset'] is None:
        labels['dataset'] = _dataset_from_cfg(cfg)
    if labels['backbone'] is None:
        backbone = cfg.get('model', {}).get('backbone', {}) or {}
        inner = backbone.get('backbone', backbone)
        labels['backbone'] = str(inner.get('type', 'unknown')).split('.')[-1].lower()
    labels['petl'] = types
    labels.update(explicit or {})
    if not (explicit or {}).get('benchmark'):
        labels['benchmark'] = benchmark_of(labels['dataset'])
    return labels


def git_revision(root: str = REPO) -> str:
    """``git rev-parse HEAD`` of the repository, or ``'unknown'``."""
    try:
        out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=root, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 'unknown'
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else 'unknown'


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


def to_percent(metric: str, value: float) -> float:
    """A primary metric in percent (mmpretrain / mmseg print percent, the others fractions)."""
    return float(value) / PRIMARY_METRICS.get(metric, 100.) * 100.


def primary_metrics(metrics: Optional[dict]) -> Tuple[Optional[str], Dict[str, float]]:
    """The first primary metric found (in :data:`PRIMARY_METRICS` order) and all of them."""
    found = {k: float(metrics[k]) for k in PRIMARY_METRICS if metrics and k in metrics}
    return (next(iter(found)) if found else None), found


def _read_json(path: str) -> dict:
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def build_record(*, config_path: str, labels: dict, seed: Optional[int], protocol: str,
                 metrics: Optional[dict], split: Optional[str], stats_dir: str, work_dir: str,
                 start: str, start_time: float, end_time: float,
                 extra: Optional[dict] = None) -> dict:
    """A finished run's record: the metrics given, the hook outputs in ``stats_dir``.

    Args:
        config_path: The config file of the run.
        labels: :func:`derive_labels` of the run.
        seed: The seed every stage used.
        protocol: ``'none'``, ``'default'`` or ``'legacy'``.
        metrics: The evaluation that is the run's result (name -> value as printed).
        split: The split ``metrics`` were measured on.
        stats_dir: The work dir of the training that produced ``metrics``
            (``petl_report.json`` from PETLReportHook, ``efficiency.json`` from EfficiencyHook).
        work_dir: The run's work dir.
        start: Start time (:func:`now`).
        start_time / end_time: ``time.time()`` at start and end (the duration).
        extra: More fields (protocol details, command-line options).
    """
    metric, found = primary_metrics(metrics)
    report = _read_json(osp.join(stats_dir, 'petl_report.json'))
    eff = _read_json(osp.join(stats_dir, 'efficiency.json'))
    params = report.get('backbone_trainable')
    value = found.get(metric) if metric else None
    score = None
    if value is not None and params is not None:
        fraction = value / PRIMARY_METRICS[metric]
        score = round(ppt(fraction, int(params)), 4) if 0. <= fraction <= 1. else None
    record = dict(
        schema=SCHEMA, status='done', config=config_key(config_path),
        config_path=osp.abspath(config_path), seed=seed, protocol=protocol,
        protocol_label=PROTOCOL_LABELS.get(protocol, protocol),
        method=labels.get('method'), petl=labels.get('petl', []),
        backbone=labels.get('backbone'), dataset=labels.get('dataset'),
        benchmark=labels.get('benchmark'), metric=metric, value=value,
        value_pct=to_percent(metric, value) if value is not None else None,
        metrics=found, split=split, params=params, trainable=report.get('trainable'),
        total=report.get('total'), ppt=score, peak_mem_mb=eff.get('peak_mem_mb'),
        memory_kind=eff.get('memory_kind'), time_per_iter_s=eff.get('time_per_iter_s'),
        throughput=eff.get('throughput'), device=eff.get('device'), git=git_revision(),
        start=start, end=now(), duration_s=round(end_time - start_time, 3),
        host=socket.gethostname(), work_dir=osp.abspath(work_dir),
        stats_dir=osp.abspath(stats_dir))
    record.update(extra or {})
    return record


def failed_record(*, config_path: str, labels: dict, seed: Optional[int], protocol: str,
                  work_dir: str, error: str, start: Optional[str] = None,
                  duration_s: Optional[float] = None, extra: Optional[dict] = None) -> dict:
    """The record of a run that raised or exited non-zero (``status='failed'``)."""
    record = dict(schema=SCHEMA, status='failed', config=config_key(config_path),
                  config_path=osp.abspath(config_path), seed=seed, protocol=protocol,
                  protocol_label=PROTOCOL_LABELS.get(protocol, protocol),
                  method=labels.get('method'), petl=labels.get('petl', []),
                  backbone=labels.get('backbone'), dataset=labels.get('dataset'),
                  benchmark=labels.get('benchmark'), error=error[-4000:], git=git_revision(),
                  start=start, end=now(), duration_s=duration_s, host=socket.gethostname(),
                  work_dir=osp.abspath(work_dir))
    record.update(extra or {})
    return record


def write_record(record: dict, work_dir: str, name: str = RECORD_FILE) -> str:
    """Write ``record`` to ``<work_dir>/<name>`` atomically (a reader never sees half a file)."""
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, name)
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'w') as f:
        json.dump(record, f, indent=2)
    os.replace(tmp, path)
    return path


def read_record(path: str) -> dict:
    """Read a run record; a clear error if the file is not one."""
    with open(path) as f:
        record = json.load(f)
    missing = [k for k in ('config', 'seed', 'protocol', 'status') if k not in record]
    if missing:
        raise ValueError(f'{path} is not a run record (no {missing}); run records are the '
                         f'{RECORD_FILE} files tools/train.py writes.')
    return record


def parse_labels(items: Optional[Sequence[str]]) -> Dict[str, str]:
    """``['method=lora', 'dataset=vtab-dtd']`` -> a dict; a clear error for a bad item."""
    labels = {}
    for item in items or []:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise ValueError(f'--labels takes KEY=VALUE items, got {item!r} '
                             '(e.g. --labels method=lora dataset=vtab-dtd).')
        labels[key] = value
    return labels
