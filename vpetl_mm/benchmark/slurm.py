"""Slurm submission for benchmark sweeps (``tools/benchmark.py --print slurm``).

The pending :class:`~.sweep.Job` s of a grid, rendered either as one slurm array script (each
task trains one job through ``tools/slurm_train.sh``, resuming from its checkpoint) or as one
``tools/slurm_train.sh`` command per job, as OpenMMLab's own slurm scripts are run.

Examples:
    >>> from vpetl_mm.benchmark.sweep import expand_grid
    >>> jobs = expand_grid(methods=['lora'], datasets=['vtab-dtd'], seeds=[0])
    >>> print(slurm_array_script(jobs, 'results.db', gpus=1).splitlines()[4])
    # run record to results.db.
"""
import os
import os.path as osp
import shlex
from typing import Optional, Sequence

from .record import REPO
from .sweep import Job, has_checkpoint, tool_path, train_args


def slurm_array_script(jobs: Sequence[Job], store: Optional[str], partition: str = 'gpu',
                       gpus: int = 8, gpus_per_node: int = 8, cpus_per_task: int = 5,
                       max_parallel: Optional[int] = None, python: str = 'python',
                       work_root: str = 'work_dirs/benchmark', name: str = 'vpetl-bench',
                       cwd: Optional[str] = None) -> str:
    """A slurm array script that trains each job through ``tools/slurm_train.sh``.

    Each array task resumes its run if the work dir holds a checkpoint, and adds its record to
    ``store`` when it ends (concurrent writers are safe: SQLite WAL, one transaction per
    record). Submit with ``sbatch``; print only the pending jobs (the CLI drops done ones).
    """
    if not jobs:
        raise ValueError('No pending run: every job of the grid is done in the store.')
    q = shlex.quote
    nodes = max(1, -(-gpus // gpus_per_node))

    def array(name: str, values: Sequence[str]) -> str:
        return f'{name}=(\n' + ''.join(f'  {q(v)}\n' for v in values) + ')'

    per_node = min(gpus, gpus_per_node)
    lines = [
        '#!/usr/bin/env bash',
        f'# vpetl_mm benchmark: {len(jobs)} runs as a slurm array (tools/benchmark.py --print '
        'slurm).',
        '# Submit: sbatch THIS_FILE. Each task trains one (config, seed, protocol) with',
        '# tools/slurm_train.sh, resumes it if its work dir holds a checkpoint, and adds its',
        f'# run record to {store or "(no store: gather the run_record.json files)"}.',
        '# If the store is on a network file system without POSIX locks, drop --store below and',
        f'# gather afterwards: python tools/benchmark.py --collect {work_root} --store '
        f'{store or "results.db"}',
        f'#SBATCH --job-name={name}',
        f'#SBATCH --partition={partition}',
        f'#SBATCH --array=0-{len(jobs) - 1}' + (f'%{max_parallel}' if max_parallel else ''),
        f'#SBATCH --nodes={nodes}',
        f'#SBATCH --ntasks={gpus}',
        f'#SBATCH --ntasks-per-node={per_node}',
        f'#SBATCH --gres=gpu:{per_node}',
        f'#SBATCH --cpus-per-task={cpus_per_task}',
        f'#SBATCH --output={work_root}/slurm-%A_%a.log',
        '',
        f'cd {q(cwd or os.getcwd())}',
        array('CONFIGS', [j.config for j in jobs]),
        array('WORK_DIRS', [j.work_dir for j in jobs]),
        array('ARGS', [shlex.join(train_args(j, store, resume=False)[2:]) for j in jobs]),
        'i=${SLURM_ARRAY_TASK_ID}',
        'eval "EXTRA=(${ARGS[$i]})"  # quoted arguments, as shlex wrote them',
        'RESUME=""',
        'if [ -f "${WORK_DIRS[$i]}/last_checkpoint" ] || '
        'compgen -G "${WORK_DIRS[$i]}/*/last_checkpoint" > /dev/null; then',
        '  RESUME="--resume"',
        'fi',
        f'GPUS={gpus} GPUS_PER_NODE={per_node} CPUS_PER_TASK={cpus_per_task} '
        f'PYTHON={q(python)} \\',
        f'  bash {q(osp.join(REPO, "tools", "slurm_train.sh"))} '
        '"${SLURM_JOB_PARTITION:-' + partition + '}" '
        f'"{name}-$i" "${{CONFIGS[$i]}}" "${{WORK_DIRS[$i]}}" "${{EXTRA[@]}}" $RESUME',
    ]
    return '\n'.join(lines) + '\n'


def slurm_commands(jobs: Sequence[Job], store: Optional[str], partition: str = 'gpu',
                   gpus: int = 8, python: str = 'python') -> str:
    """One ``tools/slurm_train.sh`` command per job (from a login node; OpenMMLab style)."""
    out = []
    for i, job in enumerate(jobs):
        args = train_args(job, store, resume=has_checkpoint(job.work_dir))[2:]
        out.append(f'GPUS={gpus} PYTHON={shlex.quote(python)} bash {tool_path("slurm_train.sh")} '
                   f'{shlex.quote(partition)} vpetl-bench-{i} {shlex.quote(job.config)} '
                   f'{shlex.quote(job.work_dir)} {shlex.join(args)}')
    return '\n'.join(out) + '\n'
