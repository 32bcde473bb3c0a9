"""Run the selection pass of data-dependent PETL methods (SCT, GPS) before training, cached."""
import copy
import hashlib
import json
import os.path as osp
import time
from typing import Iterator, List, Optional, Tuple

import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import broadcast, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import DATASETS
from torch.utils.data import DataLoader, Dataset

from ..registry import HOOKS
from ..utils import find_petl_backbone, unwrap


class _Views(Dataset):
    """Each item ``views`` times through the (random) pipeline: the views of one image."""

    def __init__(self, dataset: Dataset, views: int) -> None:
        self.dataset, self.views = dataset, views

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> list:
        return [self.dataset[index] for _ in range(self.views)]


def _collate_views(items: List[list]) -> dict:
    # [view 1 of every image; view 2 of every image; ...]: SupCon's stacked-views order
    return pseudo_collate([item[v] for v in range(len(items[0])) for item in items])


@HOOKS.register_module()
class PETLCalibrationHook(Hook):
    """Calibrate the PETL methods that select from the training data, before training.

    SCT (salient channels) and GPS (gradient-selected weights) choose what they train from
    the frozen model's response to the training set. Before the first iteration this hook
    runs that pass over the training dataset (the train split, through ``pipeline``) and
    stores the selection in the methods' buffers, which every checkpoint carries: resuming or
    testing a trained checkpoint does not recalibrate. The selection is cached in the work
    dir, keyed by the data, model and method settings, so a rerun skips the pass. In
    distributed runs every rank computes it and rank 0's result is broadcast.

    Args:
        pipeline: Pipeline of the pass; ``None``: the test pipeline (no augmentation, SCT).
        views: Views of each image per batch (GPS: 2 augmented views, SupCon positives).
        batch_size: Images per batch (``None``: the training batch size).
        num_workers: Data workers (``None``: the training dataloader's).
        cache: Reuse / write ``<work_dir>/petl_calibration_<key>.pth``.

    Examples:
        >>> custom_hooks = [dict(type='vpetl_mm.PETLCalibrationHook')]  # SCT
        >>> custom_hooks = [dict(type='vpetl_mm.PETLCalibrationHook', views=2,
        ...                      pipeline={{_base_.gps_contrast_pipeline}})]  # GPS
    """
    priority = 'HIGH'  # before hooks that copy the model (EMA) see it

    def __init__(self, pipeline: Optional[list] = None, views: int = 1,
                 batch_size: Optional[int] = None, num_workers: Optional[int] = None,
                 cache: bool = True) -> None:
        if views < 1:
            raise ValueError(f'PETLCalibrationHook views={views} must be >= 1.')
        self.pipeline, self.views, self.cache = pipeline, views, cache
        self.batch_size, self.num_workers = batch_size, num_workers

    def before_train(self, runner) -> None:
        wrapper = find_petl_backbone(runner.model)
        if wrapper is None or not any(m.CALIBRATES for m in wrapper.methods):
            return  # nothing selects from the data (tools/train.py adds this hook to all runs)
        pending = wrapper.uncalibrated()
        if not pending:
            print_log('PETLCalibrationHook: the selection came with the loaded checkpoint.',
                      logger='current')
            return
        path = osp.join(runner.work_dir, f'petl_calibration_{self._key(runner)}.pth')
        if self.cache and osp.isfile(path):
            self._load(wrapper, path)
            if not wrapper.uncalibrated():
                print_log(f'PETLCalibrationHook: {pending} selection loaded from {path}.',
                          logger='current')
                return
        start = time.perf_counter()
        model = unwrap(runner.model)
        seen = [0]
        wrapper.calibrate(lambda: self._batches(runner, model, seen))
        self._sync(wrapper)
        print_log(f'PETLCalibrationHook: {pending} calibrated on {seen[0]} samples '
                  f'({self.views} view(s) each) in {time.perf_counter() - start:.1f} s.',
                  logger='current')
        if self.cache and is_main_process():
            torch.save(self._state(wrapper), path)

    # -- data ----------------------------------------------------------------------------------
    def _dataset(self, runner) -> Dataset:
        cfg = copy.deepcopy(runner.cfg.train_dataloader['dataset'])
        pipeline = self.pipeline
        if pipeline is None:
            test = runner.cfg.get('test_dataloader') or runner.cfg.get('val_dataloader') or {}
            pipeline = test.get('dataset', {}).get('pipeline')
        if pipeline is None or 'pipeline' not in cfg:
            raise ValueError('PETLCalibrationHook needs train_dataloader.dataset.pipeline and '
                             'a pipeline for the pass: give pipeline=[...] to the hook (or a '
                             'test_dataloader with a dataset pipeline).')
        cfg['pipeline'] = pipeline
        dataset = DATASETS.build(cfg)
        return _Views(dataset, self.views)

    def _batches(self, runner, model, seen: List[int]) -> Iterator[Tuple[torch.Tensor,
                                                                        torch.Tensor]]:
        train = runner.cfg.train_dataloader
        loader = DataLoader(self._dataset(runner), shuffle=False, collate_fn=_collate_views,
                            batch_size=self.batch_size or train.get('batch_size', 1),
                            num_workers=train.get('num_workers', 0)
                            if self.num_workers is None else self.num_workers)
        for batch in loader:
            data = model.data_preprocessor(batch, training=False)
            labels = torch.cat([s.gt_label.reshape(-1) for s in data['data_samples']])
            seen[0] += len(labels) // self.views
            yield data['inputs'], labels

    # -- state ---------------------------------------------------------------------------------
    @staticmethod
    def _buffers(wrapper):
        for method in wrapper.methods:
            if method.CALIBRATES:
                for inj in method.injected:
                    for name, buf in inj.module.named_buffers():
                        yield f'{inj.name}.{name}', inj.module, name, buf

    def _state(self, wrapper) -> dict:
        return {key: buf.detach().cpu() for key, _, _, buf in self._buffers(wrapper)}

    def _load(self, wrapper, path: str) -> None:
        state = torch.load(path, map_location='cpu', weights_only=True)
        for key, module, name, _ in self._buffers(wrapper):
            if key in state:
                module.load_state_dict({name: state[key]}, strict=False)

    def _sync(self, wrapper) -> None:
        if get_world_size() > 1:  # augmented passes differ between ranks: rank 0 decides
            for _, module, name, buf in self._buffers(wrapper):
                broadcast(buf, src=0)
                module.load_state_dict({name: buf.clone()}, strict=False)

    def _key(self, runner) -> str:
        cfg = runner.cfg
        parts = [cfg.train_dataloader.get('dataset'), self.pipeline, self.views,
                 cfg.get('model', {}).get('backbone'), cfg.get('load_from')]
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]
