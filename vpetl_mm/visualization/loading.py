"""Build a trained model and feed it test images, as ``tools/test.py`` does.

The model is built by an mmengine ``Runner`` from the config, with vpetl_mm's hooks, and the
checkpoint is loaded through ``Runner.load_or_resume``. ``PETLCheckpointHook`` then handles
adapter-only checkpoints exactly as in ``tools/test.py``: the model's ``init_weights()`` runs
first so the frozen backbone gets its pretrained ``init_cfg`` weights, then the trained tensors
load on top.
"""
import argparse
import copy
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope

from ..apis.runtime import build_runner, load_config
from ..utils import unwrap

SPLITS = ('train', 'val', 'test')


def load_trained_model(config: str, checkpoint: str, work_dir: str,
                       cfg_options: Optional[dict] = None) -> Tuple[nn.Module, Config]:
    """The config's model with the checkpoint loaded, in eval mode.

    Args:
        config: Config file.
        checkpoint: A full or adapter-only checkpoint (``PETLCheckpointHook``).
        work_dir: Where the runner writes its log.
        cfg_options: Overrides, as ``--cfg-options`` gives them.

    Returns:
        ``(model, cfg)``; the model is on the runner's device.
    """
    args = argparse.Namespace(launcher='none', cfg_options=cfg_options, work_dir=work_dir,
                              local_rank=0)
    cfg = load_config(config, args, load_from=checkpoint)
    runner = build_runner(cfg)
    runner.load_or_resume()  # after_load_checkpoint: adapter-only -> init_weights() first
    model = unwrap(runner.model)
    model.eval()
    return model, cfg


def _test_pipeline(cfg: Config) -> list:
    dataset = cfg.test_dataloader.dataset
    while 'pipeline' not in dataset and 'dataset' in dataset:  # dataset wrappers
        dataset = dataset.dataset
    if 'pipeline' not in dataset:
        raise ValueError('The config\'s test_dataloader.dataset has no pipeline to prepare '
                         'images with.')
    return copy.deepcopy(dataset.pipeline)


def split_loader(cfg: Config, split: str, batch_size: int):
    """A dataloader over ``split`` of the config's data, in order, with the test pipeline.

    The ``<split>_dataloader`` of the config gives the dataset; its pipeline is replaced by the
    test pipeline (no augmentation) for ``train`` and ``val``.
    """
    from mmengine.runner import Runner
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}.')
    loader = cfg.get(f'{split}_dataloader', None)
    if not loader:
        raise ValueError(f'The config has no {split}_dataloader.')
    loader = copy.deepcopy(loader)
    loader.update(batch_size=batch_size, num_workers=0, persistent_workers=False,
                  sampler=dict(type='DefaultSampler', shuffle=False))
    if split != 'test':
        dataset = loader.dataset
        while 'pipeline' not in dataset and 'dataset' in dataset:
            dataset = dataset.dataset
        dataset.pipeline = _test_pipeline(cfg)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', None)):
        return Runner.build_dataloader(loader)


def image_batches(cfg: Config, paths: Sequence[str], batch_size: int) -> Iterator[dict]:
    """Batches (``inputs`` / ``data_samples`` lists) of image files through the test pipeline."""
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', None)):
        pipeline = Compose(_test_pipeline(cfg))
        items = [pipeline(dict(img_path=p)) for p in paths]
    for start in range(0, len(items), batch_size):
        yield pseudo_collate(items[start:start + batch_size])


def limited(batches, num: Optional[int]) -> Iterator[dict]:
    """At most ``num`` samples (all if None) of an iterable of collated batches."""
    seen = 0
    for batch in batches:
        if num is not None and seen >= num:
            return
        keep = len(batch['inputs']) if num is None else min(len(batch['inputs']), num - seen)
        seen += keep
        yield {k: v[:keep] for k, v in batch.items()}


def display_images(model: nn.Module, batch: dict) -> List[np.ndarray]:
    """The packed (resized, un-normalised) input images as RGB ``(H, W, 3)`` uint8 arrays."""
    bgr = bool(getattr(model.data_preprocessor, '_channel_conversion', False))
    images = []
    for image in batch['inputs']:
        image = image.detach().cpu()
        if image.dim() != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f'Expected an image (C, H, W) from the pipeline, got '
                             f'{tuple(image.shape)}: attention overlays support images only.')
        array = image.permute(1, 2, 0).numpy()
        if image.shape[0] == 1:
            array = np.repeat(array, 3, axis=2)
        elif bgr:  # mmcv loads BGR; the preprocessor converts for the model (to_rgb)
            array = array[..., ::-1]
        images.append(np.clip(array, 0, 255).astype(np.uint8))
    return images


def gt_labels(batch: dict) -> List[Optional[int]]:
    """The ground-truth label of each sample, or None where it has none."""
    labels = []
    for sample in batch['data_samples']:
        label = sample.get('gt_label', None) if hasattr(sample, 'get') else None
        labels.append(None if label is None or torch.as_tensor(label).numel() == 0
                      else int(torch.as_tensor(label).flatten()[0]))
    return labels

