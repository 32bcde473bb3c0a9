"""The embedded CPU demo (``make demo``): pre-train a tiny ViT on digits 0-4, transfer it to
digits 5-9 with six PETL methods, and report the results in the V-PETL Bench layout.

Steps, each through the project's OpenMMLab tools (``tools/train.py``, ``tools/test.py``):

1. scikit-learn's digits (1,797 8x8 images, shipped with scikit-learn, no download) are
   written in the VTAB-1k layout under ``work_dirs/demo/data/``: the source task (digits 0-4)
   and the target task (digits 5-9 relabelled 0-4). The list files keep the VTAB names
   (``train800.txt``, ``val200.txt``, ``train800val200.txt``, ``test.txt``) but the sizes are
   scaled to the data (each half has ~900 images): 400 train / 100 val / the rest test for the
   target, 700 / 100 / the rest for the source. Splits are stratified with a fixed seed.
2. A tiny mmpretrain ``VisionTransformer`` (4 layers, width 64, 32x32 input, patch 8) is trained
   from scratch on the source task (``petl=Full``).
3. It is transferred to the target task with linear probing, full fine-tuning, BitFit, LoRA,
   Adapter and AdaptFormer (``configs/demo/``), each loading the pre-trained backbone through
   its ``init_cfg``; each run's last checkpoint (adapter-only) is evaluated on the target test
   split with ``tools/test.py``. Nothing is selected on the test split.
4. Top-1, trainable backbone parameters, PPT, peak memory and time per iteration are printed as
   a Markdown table and saved to ``work_dirs/demo/results.md``, with a plot of accuracy against
   trainable parameters in ``work_dirs/demo/results.png``.

Re-running reuses the data and the pre-trained checkpoint (``--force`` redoes them); the
transfers always re-run unless ``--reuse-transfers`` is given.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Sequence, Tuple

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from vpetl_mm.benchmark import (MethodResult, load_result,  # noqa: E402
                                plot_accuracy_vs_params, to_markdown)
from vpetl_mm.benchmark.variants import demo_variants  # noqa: E402
from vpetl_mm.datasets.vtab_export import write_vtab1k  # noqa: E402

WORK = osp.join('work_dirs', 'demo')  # relative to ROOT, as in the configs
DATA = osp.join(WORK, 'data')
SOURCE, TARGET = osp.join(DATA, 'digits_0-4'), osp.join(DATA, 'digits_5-9')
PRETRAIN_CFG = osp.join('configs', 'demo', 'vit-tiny_digits0-4_pretrain.py')
PRETRAIN_DIR = osp.join(WORK, 'pretrain')
PRETRAINED = osp.join(PRETRAIN_DIR, 'vit-tiny_digits0-4.pth')  # the configs' init_cfg
TRANSFER_DIR = osp.join(WORK, 'transfer')
# the six methods the demo transfers by default (config suffixes; the rest is the zoo)
CORE = ('frozen', 'full', 'bitfit', 'lora', 'adapter', 'adaptformer')
# (train, val) images per class; the rest of each class is the test split
SOURCE_SPLIT, TARGET_SPLIT = (140, 20), (80, 20)


_LOG_LOCK = threading.Lock()


def demo_methods() -> List[Tuple[str, str]]:
    """(display name, config suffix) of the six default transfers, in table order."""
    names = {v.folder: v.demo for v in demo_variants()}
    return [(names[key], key) for key in CORE]


def zoo_methods() -> List[Tuple[str, str]]:
    """(display name, config suffix) of the image method zoo (``--zoo``): every other variant
    that runs on the demo's ViT (vpetl_mm/benchmark/variants.py), new methods included."""
    return [(v.demo, v.folder) for v in demo_variants() if v.folder not in CORE]


def log(msg: str) -> None:
    """Print a progress line (whole lines, also from the transfer threads)."""
    with _LOG_LOCK:
        print(f'[demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def stratified_splits(labels: np.ndarray, per_class: Tuple[int, int],
                      seed: int = 0) -> Dict[str, List[int]]:
    """Indices for train / val / test, ``per_class`` = (train, val) images of each class."""
    rng = np.random.RandomState(seed)
    splits: Dict[str, List[int]] = dict(train=[], val=[], test=[])
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_train, n_val = per_class
        splits['train'] += idx[:n_train].tolist()
        splits['val'] += idx[n_train:n_train + n_val].tolist()
        splits['test'] += idx[n_train + n_val:].tolist()
    return {k: sorted(v) for k, v in splits.items()}


def prepare_data(force: bool) -> None:
    """Step 1: write the source and target tasks in the VTAB-1k layout (skipped if present)."""
    if not force and all(osp.isfile(osp.join(ROOT, d, 'test.txt')) for d in (SOURCE, TARGET)):
        log(f'data: reusing {SOURCE} and {TARGET}')
        return
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = np.round(digits.images * (255. / 16.)).clip(0, 255).astype(np.uint8)
    for root, classes, per_class in ((SOURCE, range(0, 5), SOURCE_SPLIT),
                                     (TARGET, range(5, 10), TARGET_SPLIT)):
        keep = np.isin(digits.target, list(classes))
        labels = digits.target[keep] - classes[0]
        splits = stratified_splits(labels, per_class)
        shutil.rmtree(osp.join(ROOT, root), ignore_errors=True)
        write_vtab1k(osp.join(ROOT, root), images[keep], labels, splits)
        sizes = ' / '.join(f'{len(splits[k])} {k}' for k in ('train', 'val', 'test'))
        log(f'data: wrote {root} (digits {classes[0]}-{classes[-1]} -> labels 0-4): {sizes}')


def run_tool(args: Sequence[str], logfile: str, threads: int) -> float:
    """Run ``python tools/<args>`` from the repository root, output to ``logfile``.

    Returns:
        Wall time in seconds. Raises ``RuntimeError`` (with the log's tail) on failure.
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONWARNINGS='ignore')
    start = time.perf_counter()
    with open(osp.join(ROOT, logfile), 'w') as f:
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, stdout=f,
                              stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(osp.join(ROOT, logfile)) as f:
            tail = ''.join(f.readlines()[-30:])
        raise RuntimeError(f'{" ".join(args)} failed (exit {proc.returncode}); the end of '
                           f'{logfile}:\n{tail}')
    return time.perf_counter() - start


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint mmengine's CheckpointHook saved last (its ``last_checkpoint`` file)."""
    with open(osp.join(ROOT, work_dir, 'last_checkpoint')) as f:
        path = f.read().strip()
    return path if osp.isabs(path) else osp.join(ROOT, path)


def pretrain(force: bool, threads: int) -> None:
    """Step 2: train the tiny ViT from scratch on digits 0-4 (skipped if the checkpoint exists)."""
    if not force and osp.isfile(osp.join(ROOT, PRETRAINED)):
        log(f'pre-train: reusing {PRETRAINED}')
        return
    log(f'pre-train: {PRETRAIN_CFG} (digits 0-4, from scratch, all parameters) ...')
    shutil.rmtree(osp.join(ROOT, PRETRAIN_DIR), ignore_errors=True)
    os.makedirs(osp.join(ROOT, PRETRAIN_DIR))
    seconds = run_tool(['tools/train.py', PRETRAIN_CFG, '--work-dir', PRETRAIN_DIR],
                       osp.join(PRETRAIN_DIR, 'train.log'), threads)
    shutil.copyfile(last_checkpoint(PRETRAIN_DIR), osp.join(ROOT, PRETRAINED))
    metrics = osp.join(PRETRAIN_DIR, 'source_test_metrics.json')
    run_tool(['tools/test.py', PRETRAIN_CFG, PRETRAINED, '--work-dir', PRETRAIN_DIR,
              '--out', metrics], osp.join(PRETRAIN_DIR, 'test.log'), threads)
    with open(osp.join(ROOT, metrics)) as f:
        top1 = json.load(f)['accuracy/top1']
    log(f'pre-train: done in {seconds:.0f} s, source (digits 0-4) test top-1 {top1:.2f}% '
        f'-> {PRETRAINED}')


def transfer(name: str, key: str, threads: int, reuse: bool) -> None:
    """Step 3 for one method: train on the target task, then test the last checkpoint."""
    cfg = osp.join('configs', 'demo', f'vit-tiny_digits5-9_{key}.py')
    work_dir = osp.join(TRANSFER_DIR, key)
    metrics = osp.join(work_dir, 'test_metrics.json')
    if reuse and osp.isfile(osp.join(ROOT, metrics)):
        log(f'{name}: reusing {metrics}')
        return
    shutil.rmtree(osp.join(ROOT, work_dir), ignore_errors=True)
    os.makedirs(osp.join(ROOT, work_dir))
    log(f'{name}: training ({cfg}) ...')
    t_train = run_tool(['tools/train.py', cfg, '--work-dir', work_dir],
                       osp.join(work_dir, 'train.log'), threads)
    ckpt = last_checkpoint(work_dir)
    t_test = run_tool(['tools/test.py', cfg, ckpt, '--work-dir', work_dir, '--out', metrics],
                      osp.join(work_dir, 'test.log'), threads)
    log(f'{name}: trained in {t_train:.0f} s, tested {osp.relpath(ckpt, ROOT)} in '
        f'{t_test:.0f} s')


def untrained_head_top1() -> float:
    """Target test top-1 of the pre-trained backbone under a freshly initialised head.

    The floor every transfer must beat (the learning check): the frozen config's model with
    its weights initialised as at step 0 of training, evaluated without any training.
    """
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'demo', 'vit-tiny_digits5-9_frozen.py'))
    cfg.work_dir = osp.join(ROOT, TRANSFER_DIR, 'untrained_head')
    cwd = os.getcwd()
    os.chdir(ROOT)  # the configs' paths are relative to the repository root
    try:
        runner = Runner.from_cfg(cfg)
        runner.model.init_weights()  # the pre-trained backbone (init_cfg), a random head
        return float(runner.test()['accuracy/top1'])
    finally:
        os.chdir(cwd)


def learning_check(results: List[MethodResult], floor: float) -> List[str]:
    """Names of the methods that do not beat the untrained head (empty: all learn)."""
    return [r.method for r in results if not r.top1 > floor]


def report(results: List[MethodResult], jobs: int, threads: int) -> str:
    """Step 4: print and save the table and the plot."""
    table = to_markdown(results, params_unit='raw')
    notes = ('Target task: digits 5-9 (scikit-learn digits, VTAB-1k file layout, 400 train / '
             '100 val / rest test). Tiny ViT pre-trained from scratch on digits 0-4. '
             'Top-1 on the target test split, last checkpoint. Params: trainable backbone '
             'parameters, head excluded. PPT with C = 1e7 (so ~= top-1 for this tiny model). '
             'Peak memory: CPU process peak RSS (framework included). Time / iter: median '
             f'training iteration, batch 32, CPU, {threads} thread(s), {jobs} run(s) at a time.')
    with open(osp.join(ROOT, WORK, 'results.md'), 'w') as f:
        f.write('# vpetl_mm demo: digits 0-4 -> 5-9 transfer\n\n' + table + '\n\n' + notes + '\n')
    plot_accuracy_vs_params(results, osp.join(ROOT, WORK, 'results.png'),
                            title='Tiny ViT, digits 0-4 -> 5-9: top-1 vs trainable params')
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--jobs', type=int, default=2,
                        help='transfer runs at a time (default 2, for 2 cores: with 1 thread '
                        'each, time / iter stays within noise of --jobs 1)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per run (1: the tiny ViT gains little from more, '
                        'and OpenMP threads stall badly on a busy shared machine)')
    parser.add_argument('--force', action='store_true',
                        help='rewrite the data and redo the pre-training even if present')
    parser.add_argument('--reuse-transfers', action='store_true',
                        help='skip a transfer whose test metrics already exist')
    parser.add_argument('--zoo', action='store_true',
                        help='also transfer with every method of the image zoo, and check that '
                        'each beats the untrained head (docs/image.md, "Learning check")')
    core, zoo = demo_methods(), zoo_methods()
    parser.add_argument('--methods', nargs='+', choices=[k for _, k in core + zoo],
                        help='transfer methods to run (default: the six demo methods, and the '
                        'zoo with --zoo)')
    args = parser.parse_args()
    if args.methods is None:
        args.methods = [k for _, k in core + (zoo if args.zoo else [])]
    start = time.perf_counter()
    os.makedirs(osp.join(ROOT, WORK), exist_ok=True)

    prepare_data(args.force)
    pretrain(args.force, args.threads)
    methods = [(n, k) for n, k in core + zoo if k in args.methods]
    jobs = max(1, min(args.jobs, len(methods)))
    log(f'transfer: {len(methods)} methods, {jobs} at a time, {args.threads} thread(s) each')
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(transfer, n, k, args.threads, args.reuse_transfers)
                   for n, k in methods]
        for future in futures:
            future.result()

    results = [load_result(n, osp.join(ROOT, TRANSFER_DIR, k)) for n, k in methods]
    table = report(results, jobs, args.threads)
    print('\n' + table + '\n', flush=True)
    floor = untrained_head_top1()
    failed = learning_check(results, floor)
    log(f'learning check: untrained head {floor:.2f}% top-1; '
        + (f'NOT beaten by {failed}' if failed else f'all {len(results)} methods beat it'))
    if failed:
        sys.exit(1)
    log(f'saved {WORK}/results.md and {WORK}/results.png; '
        f'total {time.perf_counter() - start:.0f} s')


if __name__ == '__main__':
    main()
