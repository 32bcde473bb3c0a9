"""Train/select/test protocols for the image benchmarks (VTAB-1k, FGVC), run through the Runner.

``default`` (fair; what the benchmark tables report unless labelled otherwise):

1. **Select.** For each candidate learning rate ``lr * s`` (``s`` in ``lr_scales``, the table
   value first), train on ``train`` (VTAB: train800) for the full schedule and evaluate top-1 on
   ``val`` (val200) once, after the last epoch. The candidate with the highest val top-1 wins;
   ties go to the earlier candidate (so the table value wins a tie).
2. **Retrain** with the selected lr on ``trainval`` (train800val200; FGVC: train + val) for the
   same schedule, then evaluate on ``test`` once, after the last epoch. That test top-1 is the
   reported number. The test set is never seen before this single evaluation.

``legacy`` reproduces the reference code (V-PETL Bench): train on ``trainval`` (FGVC: ``train``
only) with the table lr, evaluate on ``test`` on the epochs the method's reference code does
(the config's ``legacy_eval``: ``val_begin`` / ``val_interval`` / ``dynamic_intervals``, from the
recipe table; else every ``val_interval``), report the best of those evaluations. The
test set thus selects the epoch: numbers are comparable with the published tables but optimistic,
and every record and table labels them ``legacy``.

Each run writes ``protocol_record.json`` in its work dir (protocol, seed, candidates, val scores,
selection, the reported metric, the stage work dirs). :func:`run_seeds` repeats a protocol over
several seeds (one sub-folder each) and writes ``protocol_summary.json``: the per-seed values,
their mean and sample standard deviation (n - 1), which the benchmark tables report.

An interrupted protocol run continues with ``resume=True`` (``tools/train.py --resume``): each
finished stage left ``stage_result.json`` and is not trained again; the interrupted stage resumes
from its ``last_checkpoint`` and keeps the evaluations it made before (``stage_metrics.jsonl``);
one that its kill prevented (after the checkpoint, before the validation) is made first.
"""
import copy
import json
import os
import re
import statistics
import os.path as osp
from typing import Callable, List, Optional, Sequence

from mmengine.config import Config

from ..hooks.metric_recorder_hook import MetricRecorderHook, jsonable

PROTOCOLS = ('default', 'legacy')
STAGE_FILE = 'stage_result.json'  # a finished stage's evaluations (skipped when resuming)
STAGE_METRICS = 'stage_metrics.jsonl'  # every evaluation of a stage, as it happens
DEFAULT_LR_SCALES = (1.0, 0.5, 2.0)
METRIC = 'accuracy/top1'


def _set_split(cfg: Config, loader: str, split: str) -> None:
    dataset = cfg[loader]['dataset']
    if 'split' not in dataset:
        raise ValueError(f'The {PROTOCOLS} protocols switch {loader}.dataset.split, but the '
                         f'config\'s dataset ({dataset.get("type")}) has no split option. Use '
                         'vpetl_mm.VTAB1k or vpetl_mm.FGVC, or run without --protocol.')
    dataset['split'] = split


def stage_config(cfg: Config, stage: str, work_dir: str, seed: int,
                 lr: Optional[float] = None) -> Config:
    """The config of one protocol stage: ``'select'``, ``'final'`` or ``'legacy'``."""
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{stage}_{osp.basename(work_dir)}_seed{seed}'
    cfg.randomness = dict(cfg.get('randomness', None) or {}, seed=seed)
    if lr is not None:
        cfg.optim_wrapper.optimizer.lr = lr
    max_epochs = cfg.train_cfg.get('max_epochs')
    if stage == 'legacy':  # the reference: FGVC trains on train.json only, VTAB on 1000
        fgvc = str(cfg.train_dataloader.dataset.get('type', '')).endswith('FGVC')
        _set_split(cfg, 'train_dataloader', 'train' if fgvc else 'trainval')
        _set_split(cfg, 'val_dataloader', 'test')
        # the epochs the method's reference code tests on (the recipe table's legacy_eval)
        cfg.train_cfg.update(cfg.get('legacy_eval') or {})
        return cfg
    _set_split(cfg, 'train_dataloader', 'train' if stage == 'select' else 'trainval')
    _set_split(cfg, 'val_dataloader', 'val')
    _set_split(cfg, 'test_dataloader', 'test')
    # no evaluation during training: one evaluation after the last epoch (runner.val / test)
    interval = max_epochs if max_epochs is not None else cfg.train_cfg.get('max_iters')
    cfg.train_cfg['val_begin'] = interval + 1
    cfg.train_cfg['val_interval'] = interval + 1
    checkpoint = cfg.default_hooks.get('checkpoint')
    if checkpoint is not None and checkpoint.get('save_best'):
        checkpoint['save_best'] = None  # nothing is validated during training
    return cfg


def _missed_evaluation(cfg: Config, stage_dir: str, earlier: Sequence[dict],
                       build_runner: Callable, metrics_file: str) -> List[dict]:
    """The evaluation a run killed between saving a checkpoint and validating it never made.

    mmengine saves the epoch's checkpoint before the epoch's validation, and a resumed run
    starts after that epoch: its validation would be lost (and with it, possibly, legacy's
    best test evaluation). It is made here, on that checkpoint, before training resumes.
    """
    with open(osp.join(stage_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    match = re.search(r'epoch_(\d+)\.pth$', checkpoint)
    train_cfg = cfg.train_cfg
    if match is None or not osp.isfile(checkpoint):
        return []
    epoch, max_epochs = int(match.group(1)), train_cfg.get('max_epochs')
    due = epoch >= train_cfg.get('val_begin', 1) and (
        epoch % train_cfg.get('val_interval', 1) == 0 or epoch == max_epochs)
    if not due or any(r['mode'] == 'val' and r['epoch'] == epoch for r in earlier):
        return []
    eval_cfg = copy.deepcopy(cfg)
    eval_cfg.resume, eval_cfg.load_from = False, checkpoint
    recorder = MetricRecorderHook()
    runner = build_runner(eval_cfg)
    runner.register_hook(recorder)
    runner.val()
    records = [dict(r, epoch=epoch) for r in recorder.records]  # a fresh runner says epoch 0
    with open(metrics_file, 'a') as f:
        f.writelines(json.dumps(r, default=jsonable) + '\n' for r in records)
    return records


def _metric(records: Sequence[dict], mode: str) -> List[float]:
    values = [r[METRIC] for r in records if r['mode'] == mode and METRIC in r]
    if not values:
        raise RuntimeError(f'The {mode} loop reported no {METRIC!r}: the protocols need '
                           "mmpretrain's Accuracy evaluator (val_evaluator / test_evaluator).")
    return values


class _Stages:
    """Trains the stages of one protocol run in ``root``, each in its own folder, and keeps
    the audit entry of each (what it trained on and evaluated) for the record."""

    def __init__(self, cfg: Config, build_runner: Callable, seed: int, resume: bool) -> None:
        self.cfg, self.build_runner, self.seed, self.resume = cfg, build_runner, seed, resume
        self.root = cfg.work_dir
        self.audit: List[dict] = []

    def run(self, stage: str, name: str, lr: float, evaluate: Optional[str]) -> List[dict]:
        """Train stage ``name`` (unless it finished before a resume), evaluate it on
        ``evaluate`` (``'val'``, ``'test'`` or None) and return its metric records."""
        stage_dir = osp.join(self.root, name)
        done_file = osp.join(stage_dir, STAGE_FILE)
        if self.resume and osp.isfile(done_file):  # finished before the interruption
            with open(done_file) as f:
                done = json.load(f)
            self.audit.append(dict(done['audit'], reused=True))
            return done['records']
        stage_cfg = stage_config(self.cfg, stage, stage_dir, self.seed, lr)
        earlier = self._earlier_records(stage_cfg, stage_dir)
        os.makedirs(stage_dir, exist_ok=True)
        recorder = MetricRecorderHook(osp.join(stage_dir, STAGE_METRICS))
        runner = self.build_runner(stage_cfg)
        runner.register_hook(recorder)
        runner.train()
        if evaluate == 'val':
            runner.val()
        elif evaluate == 'test':
            runner.test()
        # an evaluation repeated after resuming (same mode and epoch) counts once, the latest
        records = list({(r['mode'], r['epoch']): r
                        for r in earlier + recorder.records}.values())
        entry = _audit_entry(name, lr, stage_dir, stage_cfg, runner, records)
        self.audit.append(entry)
        with open(done_file, 'w') as f:
            json.dump(dict(audit=entry, records=records), f, indent=2, default=jsonable)
        return records

    def _earlier_records(self, stage_cfg: Config, stage_dir: str) -> List[dict]:
        """Set up a resume of an interrupted stage, with the evaluations it made before; or
        forget an earlier attempt's evaluations on a fresh start."""
        metrics_file = osp.join(stage_dir, STAGE_METRICS)
        earlier: List[dict] = []
        if self.resume and osp.isfile(osp.join(stage_dir, 'last_checkpoint')):
            stage_cfg.resume, stage_cfg.load_from = True, None
            if osp.isfile(metrics_file):  # evaluations before the interruption (legacy's max)
                with open(metrics_file) as f:
                    earlier = [json.loads(line) for line in f if line.strip()]
            earlier += _missed_evaluation(stage_cfg, stage_dir, earlier, self.build_runner,
                                          metrics_file)
        elif osp.isfile(metrics_file):
            os.remove(metrics_file)
        return earlier


def _audit_entry(name: str, lr: float, stage_dir: str, stage_cfg: Config, runner,
                 records: Sequence[dict]) -> dict:
    """What a stage trained on and evaluated (splits, sizes, values), for the record."""
    splits = dict(val=stage_cfg.val_dataloader.dataset.split,
                  test=stage_cfg.test_dataloader.dataset.split)
    return dict(stage=name, lr=lr, work_dir=stage_dir,
                train_split=stage_cfg.train_dataloader.dataset.split,
                train_size=len(runner.train_dataloader.dataset),
                resumed=bool(stage_cfg.get('resume', False)),
                evaluations=[dict(split=splits[r['mode']], epoch=r['epoch'],
                                  value=r.get(METRIC)) for r in records])


def run_protocol(cfg: Config, protocol: str, build_runner: Callable, seed: int = 0,
                 lr_scales: Sequence[float] = DEFAULT_LR_SCALES, resume: bool = False) -> dict:
    """Run ``protocol`` on ``cfg`` (its ``work_dir`` holds one folder per stage).

    Args:
        cfg: A loaded benchmark config (dataset with ``split``, Accuracy evaluators).
        protocol: ``'default'`` or ``'legacy'`` (see the module docstring).
        build_runner: Builds a Runner from a config (:func:`vpetl_mm.apis.build_runner`).
        seed: Random seed of every stage (recorded).
        lr_scales: Candidate multipliers of the config's lr for the selection stage.
        resume: Continue an interrupted run in the same work dir: a stage that finished
            (``stage_result.json``) is not trained again, and one with a ``last_checkpoint``
            resumes from it. Without it every stage trains from scratch.

    Returns:
        The record also written to ``<work_dir>/protocol_record.json``.

    Examples:
        >>> record = run_protocol(Config.fromfile(config), 'default', build_runner, seed=0)
        >>> record['lr'], record['value']  # the selected lr, its test top-1
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f'Unknown protocol {protocol!r}; choose one of {PROTOCOLS}.')
    base_lr = cfg.optim_wrapper.optimizer.lr
    os.makedirs(cfg.work_dir, exist_ok=True)
    stages = _Stages(cfg, build_runner, seed, resume)
    record = dict(protocol=protocol, seed=seed, metric=METRIC, base_lr=base_lr,
                  label='legacy (test set selects the epoch, as the reference code)'
                  if protocol == 'legacy' else 'default (select on val, test once)')
    if protocol == 'legacy':
        records = stages.run('legacy', 'legacy', base_lr, None)
        evaluations = _metric(records, 'val')  # the val loop reads the test split here
        record.update(lr=base_lr, test_evaluations=evaluations, value=max(evaluations))
    else:
        candidates = [base_lr * s for s in lr_scales]
        scores = [_metric(stages.run('select', f'select_lr{lr:.3g}', lr, 'val'), 'val')[-1]
                  for lr in candidates]
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        test = _metric(stages.run('final', 'final', candidates[best], 'test'), 'test')[-1]
        record.update(candidates=candidates, val_scores=scores, lr=candidates[best], value=test)
    record['stages'] = stages.audit
    with open(osp.join(cfg.work_dir, 'protocol_record.json'), 'w') as f:
        json.dump(record, f, indent=2)
    return record


def run_seeds(cfg: Config, protocol: str, build_runner: Callable, seeds: Sequence[int],
              **kwargs) -> dict:
    """Run ``protocol`` once per seed, in ``<work_dir>/seed<k>``, and summarise.

    Args:
        cfg: A loaded benchmark config.
        protocol: ``'default'`` or ``'legacy'``.
        build_runner: Builds a Runner from a config.
        seeds: The seeds (the benchmark uses three).
        **kwargs: Passed to :func:`run_protocol` (``lr_scales``).

    Returns:
        The summary also written to ``<work_dir>/protocol_summary.json``: ``values`` per seed,
        ``mean``, ``std`` (sample, n - 1; 0 for one seed) and the per-seed records.
    """
    if len(set(seeds)) != len(seeds):
        raise ValueError(f'Seeds must be distinct, got {list(seeds)}.')
    root = cfg.work_dir
    records = []
    for seed in seeds:
        seed_cfg = copy.deepcopy(cfg)
        seed_cfg.work_dir = osp.join(root, f'seed{seed}')
        records.append(run_protocol(seed_cfg, protocol, build_runner, seed=seed, **kwargs))
    values = [r['value'] for r in records]
    summary = dict(protocol=protocol, label=records[0]['label'], metric=METRIC,
                   seeds=list(seeds), values=values, mean=statistics.fmean(values),
                   std=statistics.stdev(values) if len(values) > 1 else 0.0,
                   records=[osp.join(root, f'seed{s}', 'protocol_record.json') for s in seeds])
    with open(osp.join(root, 'protocol_summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    return summary
