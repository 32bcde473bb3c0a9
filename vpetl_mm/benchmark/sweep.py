"""Benchmark sweeps: a grid of configs x seeds, run one after the other, resumable.

A grid is the configs (globs, or methods x datasets of the generated configs
``configs/<method>/<backbone>_<dataset>.py``) times the seeds, under one protocol (the config's
own ``protocol`` unless one is given). Each (config, seed, protocol) is a :class:`Job` with its
own work dir, ``<work_root>/<config path without configs/ and .py>/<protocol>-seed<k>``.

:func:`run_sweep` runs the jobs as ``tools/train.py`` subprocesses (or ``tools/dist_train.sh``):

* a job whose record is ``done`` in the store is skipped; one whose work dir holds a finished
  ``run_record.json`` that the store lacks (the sweep died right after the run) is added
  to the store and skipped;
* a job whose work dir holds a checkpoint (an interrupted run) continues with ``--resume``;
* each run adds its record to the store as soon as it ends, so a later failure or a killed sweep
  loses nothing; a failing run is recorded as ``failed`` (with the end of its log) and the
  sweep goes on; failed runs are retried by the next sweep unless ``skip_failed``;
* a progress line after each job: finished / left, the mean time per run and the time left.

:mod:`.slurm` prints the pending jobs as a slurm array (or one command each) through
``tools/slurm_train.sh``.

Examples:
    >>> jobs = expand_grid(methods=['lora', 'adapter'], datasets=['vtab-dtd'], seeds=[0, 1])
    >>> [j.config for j in jobs][:2]
    ['configs/lora/vit-b_vtab-dtd.py', 'configs/lora/vit-b_vtab-dtd.py']
"""
import fnmatch
import glob
import json
import os
import os.path as osp
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from ..datasets import FGVC_DATASETS, VTAB_DATASETS
from .record import (REPO, RECORD_FILE, config_key, failed_record, labels_from_path, now,
                     read_record)
from .store import ResultStore

DEFAULT_SEEDS = (0, 1, 2)  # the benchmark reports mean +- std over three seeds
GRID_KEYS = ('configs', 'methods', 'datasets', 'backbone', 'seeds', 'protocol', 'cfg_options',
             'work_root', 'config_root')


@dataclass
class Job:
    """One run of the grid."""
    config: str
    seed: int
    protocol: str
    work_dir: str
    labels: Dict[str, str] = field(default_factory=dict)
    cfg_options: List[str] = field(default_factory=list)

    @property
    def key(self) -> tuple:
        return config_key(self.config), self.seed, self.protocol

    @property
    def name(self) -> str:
        return f'{config_key(self.config)} seed {self.seed} ({self.protocol})'


def dataset_keys(names: Sequence[str]) -> List[str]:
    """Expand ``vtab`` / ``fgvc`` to their dataset keys; other names (and globs) stay."""
    groups = dict(vtab=list(VTAB_DATASETS), fgvc=list(FGVC_DATASETS))
    out: List[str] = []
    for name in names:
        out += groups.get(name, [name])
    return out


def config_protocol(path: str, _cache: Dict[str, str] = {}) -> str:
    """The ``protocol`` a config sets (itself or through its ``_base_`` files), else 'none'.

    Read with mmengine's :class:`~mmengine.config.Config` (custom imports skipped: only the
    value is needed), once per file.
    """
    path = osp.abspath(path)
    if path not in _cache:
        cfg = Config.fromfile(path, import_custom_modules=False)
        _cache[path] = cfg.get('protocol') or 'none'
    return _cache[path]


def _glob(pattern: str) -> List[str]:
    if glob.has_magic(pattern):
        return sorted(glob.glob(pattern))
    return [pattern] if osp.isfile(pattern) else []


def _check_grid(configs: Sequence[str], methods: Sequence[str], datasets: Sequence[str],
                seeds: Sequence[int], protocol: Optional[str]) -> None:
    """Raise ``ValueError`` naming the fix for a grid that cannot run."""
    if not configs and not methods:
        raise ValueError('An empty grid: give configs (globs) or methods and datasets.')
    if methods and not datasets:
        raise ValueError('methods need datasets (e.g. datasets: [vtab] or [vtab-dtd]).')
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f'seeds must be distinct and not empty, got {list(seeds)}.')
    if protocol not in (None, 'none', 'default', 'legacy'):
        raise ValueError(f"protocol must be 'none', 'default' or 'legacy', got {protocol!r}.")


def _config_entries(configs: Sequence[str]) -> List[Tuple[str, Dict[str, str]]]:
    """(path, no labels) of every config the globs match; a glob matching none raises."""
    entries: List[Tuple[str, Dict[str, str]]] = []
    for pattern in configs:
        found = _glob(pattern)
        if not found:
            raise FileNotFoundError(f'No config matches {pattern!r} (relative to '
                                    f'{os.getcwd()}).')
        entries += [(p, {}) for p in found]
    return entries


def _matrix_entries(methods: Sequence[str], datasets: Sequence[str], backbone: str,
                    config_root: str, warn: Callable[[str], None]
                    ) -> List[Tuple[str, Dict[str, str]]]:
    """(path, labels) of the generated configs of every method x dataset pair."""
    entries: List[Tuple[str, Dict[str, str]]] = []
    for method in methods:
        for dataset in dataset_keys(datasets):
            pattern = osp.join(config_root, method, f'{backbone}_{dataset}.py')
            found = _glob(pattern)
            if not found:
                warn(f'[benchmark] no config {pattern}: left out of the grid')
            for path in found:
                stem = osp.splitext(osp.basename(path))[0]
                entries.append((path, dict(method=osp.basename(osp.dirname(path)),
                                           backbone=backbone,
                                           dataset=stem[len(backbone) + 1:])))
    return entries


def _work_name(path: str) -> str:
    """A config's work-dir name: its path under configs/ (or folder and name) without .py."""
    rel = config_key(path)
    if osp.isabs(rel):  # outside the repository: its folder and name
        rel = osp.join(osp.basename(osp.dirname(rel)), osp.basename(rel))
    elif rel.startswith('configs/'):
        rel = rel[len('configs/'):]
    return osp.splitext(rel)[0]


def expand_grid(configs: Sequence[str] = (), methods: Sequence[str] = (),
                datasets: Sequence[str] = (), backbone: str = 'vit-b',
                seeds: Sequence[int] = DEFAULT_SEEDS, protocol: Optional[str] = None,
                cfg_options: Sequence[str] = (), work_root: str = 'work_dirs/benchmark',
                config_root: str = 'configs',
                warn: Callable[[str], None] = print) -> List[Job]:
    """The jobs of a grid, in order: config by config, seed by seed.

    Args:
        configs: Config paths or globs (``'configs/lora/vit-b_vtab-*.py'``).
        methods / datasets: The generated configs ``<config_root>/<method>/<backbone>_<dataset>.py``
            for every pair (globs allowed; ``vtab`` and ``fgvc`` name their datasets). A pair
            without a config is reported through ``warn`` and left out.
        backbone: The backbone key of those file names.
        seeds: The seeds of every config.
        protocol: ``'default'``, ``'legacy'`` or ``'none'``; by default each config's own.
        cfg_options: ``key=value`` overrides for every run.
        work_root: The folder of the runs' work dirs.
        config_root: The folder of the generated configs.
    """
    _check_grid(configs, methods, datasets, seeds, protocol)
    entries = _config_entries(configs) + _matrix_entries(methods, datasets, backbone,
                                                         config_root, warn)
    seen, jobs = set(), []
    for path, labels in entries:
        if config_key(path) in seen:
            continue
        seen.add(config_key(path))
        proto = protocol or config_protocol(path)
        for seed in seeds:
            work_dir = osp.join(work_root, _work_name(path), f'{proto}-seed{seed}')
            jobs.append(Job(path, int(seed), proto, work_dir, dict(labels), list(cfg_options)))
    if not jobs:
        raise ValueError('The grid has no run: no config matched.')
    return jobs


def load_grid(path: str) -> dict:
    """A grid file: YAML (``.yaml`` / ``.yml``) or Python (``.py``) with the keys
    ``configs``, ``methods``, ``datasets``, ``backbone``, ``seeds``, ``protocol``,
    ``cfg_options``, ``work_root``, ``config_root`` (all optional; see :func:`expand_grid`).

    Examples:
        A ``grid.yaml``::

            methods: [lora, adapter, bitfit]
            datasets: [vtab]           # the 19 VTAB-1k tasks
            seeds: [0, 1, 2]
            protocol: default
    """
    if path.endswith(('.yaml', '.yml')):
        import yaml
        with open(path) as f:
            grid = yaml.safe_load(f) or {}
    elif path.endswith('.py'):
        namespace: dict = {}
        with open(path) as f:
            exec(compile(f.read(), path, 'exec'), namespace)
        grid = {k: v for k, v in namespace.items() if k in GRID_KEYS}
    else:
        raise ValueError(f'{path}: a grid is a .yaml, .yml or .py file.')
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ValueError(f'{path}: unknown grid keys {unknown}; known: {list(GRID_KEYS)}.')
    for key in ('configs', 'methods', 'datasets', 'seeds', 'cfg_options'):
        if isinstance(grid.get(key), (str, int)):
            grid[key] = [grid[key]]
    return grid


def has_checkpoint(work_dir: str) -> bool:
    """An interrupted run left a checkpoint: in the work dir, or in a protocol stage's."""
    return osp.isfile(osp.join(work_dir, 'last_checkpoint')) or bool(
        glob.glob(osp.join(work_dir, '*', 'last_checkpoint')))


def train_args(job: Job, store: Optional[str], resume: bool) -> List[str]:
    """``tools/train.py`` arguments of a job (after the config)."""
    args = ['--work-dir', job.work_dir, '--seed', str(job.seed), '--protocol', job.protocol]
    if job.labels:
        bad = [v for v in job.labels.values() if not v or any(c.isspace() for c in v)]
        if bad:
            raise ValueError(f'Labels must be non-empty words, got {bad}.')
        args += ['--labels', *[f'{k}={v}' for k, v in sorted(job.labels.items())]]
    if store:
        args += ['--store', store]
    if resume:
        args.append('--resume')
    if job.cfg_options:
        args += ['--cfg-options', *job.cfg_options]
    return args


def command(job: Job, store: Optional[str], resume: bool, launcher: str = 'none',
            gpus: int = 1, python: str = sys.executable) -> List[str]:
    """The command line of a job: ``tools/train.py`` or ``tools/dist_train.sh``."""
    args = train_args(job, store, resume)
    if launcher == 'none':
        return [python, tool_path('train.py'), job.config, *args]
    if launcher == 'dist':
        return ['bash', tool_path('dist_train.sh'), job.config, str(gpus), *args]
    raise ValueError(f"launcher must be 'none' or 'dist', got {launcher!r}.")


def tool_path(name: str) -> str:
    """``tools/<name>``, relative to the working directory when it is inside the repository."""
    path = osp.join(REPO, 'tools', name)
    rel = osp.relpath(path)
    return path if rel.startswith('..') else rel


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


def _finished_record(job: Job) -> Optional[dict]:
    """The job's ``done`` record in its work dir, if the run finished."""
    path = osp.join(job.work_dir, RECORD_FILE)
    if not osp.isfile(path):
        return None
    try:
        record = read_record(path)
    except (ValueError, json.JSONDecodeError):
        return None
    key = (record['config'], record['seed'], record['protocol'])
    return record if record['status'] == 'done' and key == job.key else None


def _triage(jobs: Sequence[Job], store: ResultStore, skip_failed: bool,
            counts: Dict[str, int]) -> List[Job]:
    """The jobs left to run; records the finished runs the store lacks (counted)."""
    pending: List[Job] = []
    for job in jobs:
        status = store.status(*job.key)
        record = None if status == 'done' else _finished_record(job)
        if status == 'done':
            counts['skipped'] += 1
        elif record is not None:  # finished, but the sweep died before recording it
            store.put(record)
            counts['recovered'] += 1
        elif status == 'failed' and skip_failed:
            counts['skipped'] += 1
        else:
            pending.append(job)
    return pending


def _launch(job: Job, cmd: List[str], launcher: str, python: str) -> Tuple[int, str, str]:
    """Run one job's command, output appended to its ``benchmark.log``: (exit code, start
    time, log path)."""
    os.makedirs(job.work_dir, exist_ok=True)
    stale = osp.join(job.work_dir, RECORD_FILE)
    if osp.isfile(stale):
        os.remove(stale)  # an earlier failure's record: this attempt writes its own
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if launcher == 'dist':
        env.update(PYTHON=python, PORT=str(_free_port()))
    log_path = osp.join(job.work_dir, 'benchmark.log')
    start = now()
    with open(log_path, 'a') as out:
        out.write(f'\n=== {start} {shlex.join(cmd)}\n')
        out.flush()
        rc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    return rc, start, log_path


def _record_outcome(job: Job, store: ResultStore, rc: int, start: str, log_path: str,
                    elapsed: float) -> Tuple[bool, str]:
    """Put the run's record (done, or failed with the end of its log) into the store:
    (done, what to log)."""
    record = _finished_record(job) if rc == 0 else None
    if record is not None:
        store.put(record)  # tools/train.py --store wrote it already: idempotent
        return True, f"done: {record.get('metric')} = {record.get('value')}"
    with open(log_path) as f:
        tail = f.read()[-3000:]
    reason = f'exit code {rc}' if rc else f'exit code 0 but no done {RECORD_FILE}'
    labels = {k: v for k, v in labels_from_path(job.config).items() if v}
    labels.update(job.labels)
    store.put(failed_record(config_path=job.config, labels=labels, seed=job.seed,
                            protocol=job.protocol, work_dir=job.work_dir,
                            error=f'{reason}; log {log_path}:\n{tail}', start=start,
                            duration_s=elapsed))
    return False, f'FAILED ({reason}; see {log_path})'


def run_sweep(jobs: Sequence[Job], store: ResultStore, launcher: str = 'none', gpus: int = 1,
              python: str = sys.executable, skip_failed: bool = False,
              log: Optional[Callable[[str], None]] = None) -> Dict[str, int]:
    """Run the jobs that are not done; returns the counts ``done``, ``skipped``,
    ``recovered``, ``failed``, ``ran``.

    Args:
        jobs: From :func:`expand_grid`.
        store: Where each finished or failed run is recorded as soon as it ends.
        launcher: ``'none'`` (``python tools/train.py``) or ``'dist'``
            (``bash tools/dist_train.sh CONFIG gpus``, a free port per run).
        gpus: Processes per run with ``launcher='dist'``.
        python: The interpreter of the runs.
        skip_failed: Do not retry runs the store records as failed.
        log: Where progress lines go (default: stdout, flushed, so a log file follows live).
    """
    log = log or (lambda line: print(line, flush=True))
    counts = dict(done=0, skipped=0, recovered=0, failed=0, ran=0)
    pending = _triage(jobs, store, skip_failed, counts)
    total = len(jobs)
    log(f'[benchmark] {total} runs: {counts["skipped"]} already in the store, '
        f'{counts["recovered"]} recovered from their work dirs, {len(pending)} to run '
        f'(store {store.path})')
    durations: List[float] = []
    for i, job in enumerate(pending):
        resume = has_checkpoint(job.work_dir)
        log(f'[benchmark] run {i + 1}/{len(pending)}: {job.name}'
            + (' (resuming from its checkpoint)' if resume else '') + f' -> {job.work_dir}')
        t0 = time.time()
        rc, start, log_path = _launch(
            job, command(job, store.path, resume, launcher, gpus, python), launcher, python)
        durations.append(time.time() - t0)
        counts['ran'] += 1
        done, what = _record_outcome(job, store, rc, start, log_path, durations[-1])
        counts['failed'] += not done
        finished = counts['skipped'] + counts['recovered'] + counts['ran']
        mean = sum(durations) / len(durations)
        log(f'[benchmark] {job.name}: {what} in {_clock(durations[-1])} | {finished}/{total} '
            f'finished ({counts["failed"]} failed), {total - finished} left | {mean:.1f} s per '
            f'run, ETA {_clock(mean * (total - finished))}')
    counts['done'] = sum(store.status(*j.key) == 'done' for j in jobs)
    log(f'[benchmark] finished: {counts["done"]}/{total} done, {counts["failed"]} failed in '
        f'this sweep')
    return counts


def select(jobs: Sequence[Job], pattern: Optional[str]) -> List[Job]:
    """The jobs whose config key matches a glob (``--only``)."""
    return list(jobs) if not pattern else [j for j in jobs
                                           if fnmatch.fnmatch(config_key(j.config), pattern)]
