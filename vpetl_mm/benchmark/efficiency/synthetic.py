"""Synthetic training batches in each OpenMMLab task's data format (no dataset needed)."""
import sys
from typing import Dict

# (module, base class, task): isinstance, not type names, so subclasses are recognised.
TASKS = (('mmdet.models.detectors', 'BaseDetector', 'det'),
         ('mmseg.models.segmentors', 'BaseSegmentor', 'seg'),
         ('mmpretrain.models.classifiers', 'BaseClassifier', 'cls'))


def _task(model) -> str:
    # Only toolboxes already imported: a model of a class from one that is not cannot be an
    # instance of it, and importing mmdet.models needs mmcv's compiled ops (mmcv-lite has none).
    for module, name, task in TASKS:
        if module in sys.modules and isinstance(model, getattr(sys.modules[module], name)):
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
        >>> from mmpretrain.models import ImageClassifier
        >>> model = ImageClassifier(
        ...     backbone=dict(type='mmpretrain.VisionTransformer', arch='deit-tiny',
        ...                   img_size=32, patch_size=16),
        ...     head=dict(type='mmpretrain.LinearClsHead', num_classes=3, in_channels=192),
        ...     data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'))
        >>> batch = synthetic_batch(model, batch_size=2, img_size=32, device='cpu')
        >>> data = model.data_preprocessor(batch, True)  # what train_step does first
        >>> tuple(data['inputs'].shape)
        (2, 3, 32, 32)
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
