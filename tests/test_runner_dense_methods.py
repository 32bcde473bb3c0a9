"""End-to-end CPU runs of the dense benchmark settings with the dense-specific PETL methods.

Each run is ``tools/train.py`` on a tiny copy of a *real* setting config
(``tests/configs/dense/<base>_tiny.py`` inherits ``configs/_base_/dense/<base>.py`` and only
shrinks what CPU time needs: two Swin stages of depth 2 at the real widths, 64 px images,
fewer RoIs / narrower UperNet heads, 2 iterations), switching the method with
``--cfg-options model.backbone.petl.type=<Name>`` so every method runs with its own defaults.
The settings are those of the V-PETL Bench dense columns plus the cheaper Mask R-CNN COCO one:

* COCO instance segmentation, Mask R-CNN (CocoMetric bbox + segm mAP),
* Pascal VOC 07+12 detection, RetinaNet (VOCMetric mAP),
* Pascal VOC 2012 + aug semantic segmentation, UperNet (IoUMetric mIoU),
* ADE20K semantic segmentation, UperNet (IoUMetric mIoU),

each with Mona, E3VA, LoRand and one generic method (a different one per task). Cascade Mask
R-CNN 3x (the V-PETL Bench COCO setting) is built with every method and trained with Mona.
A last check ties the switch to the shipped method configs: ``configs/<method>/<setting>.py``
is its base with ``petl=dict(type=<Name>)``. Data is written into a temporary folder in the
real on-disk formats (no network).
"""
import functools
import json
import os.path as osp
import sys
from typing import Callable, Dict, List, NamedTuple, Set

import pytest

sys.path.insert(0, osp.dirname(__file__))

from datagen.ade20k import write_ade20k  # noqa: E402
from datagen.coco import write_coco  # noqa: E402
from datagen.voc import write_voc_detection, write_voc_segmentation  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import MODELS, DefaultScope  # noqa: E402
from runner_utils import (REPO, check_adapter_only, check_report, expected_ppt,  # noqa: E402
                          host_backbone, latest_scalars, train)
from vpetl_mm.utils import find_petl_backbone  # noqa: E402

TINY_DIR = osp.join(REPO, 'tests', 'configs', 'dense')
BASE_DIR = osp.join(REPO, 'configs', '_base_', 'dense')
MAX_ITERS = 2  # the tiny configs' max_iters (also their one validation and checkpoint)
DENSE_METHODS = ('Mona', 'E3VA', 'LoRand')
# the benchmark configs' non-default options: the Mona repo's effective init (trunc-normal)
REFERENCE_INIT = dict(Adapter=dict(init='trunc_normal'), AdaptFormer=dict(init='trunc_normal'))
# The 80 COCO category ids (1-90 with the 10 unused ones left out), in mmdet's class order.
COCO_IDS = [i for i in range(1, 91) if i not in {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}]


class Task(NamedTuple):
    """One dense setting: its configs, data writer and what its run must report."""
    base: str  # configs/_base_/dense/<base>.py; tests/configs/dense/<base>_tiny.py shrinks it
    setting: str  # configs/<method>/<setting>.py: the method configs of the setting
    scope: str
    data: str  # key of DATA_WRITERS
    metrics: Dict[str, float]  # evaluator key -> factor that makes it a fraction
    head_keys: Set[str]  # head / neck tensors every checkpoint must keep
    generic: str  # the generic PETL method this task runs besides the dense ones

    @property
    def tiny(self) -> str:
        return osp.join(TINY_DIR, f'{self.base}_tiny.py')


TASKS = {
    'coco-mask-rcnn': Task(
        'mask-rcnn_swin-b_coco', 'swin-b_coco', 'mmdet', 'coco',
        {'coco/bbox_mAP': 1., 'coco/segm_mAP': 1.},
        {'roi_head.bbox_head.fc_cls.weight', 'roi_head.mask_head.conv_logits.weight',
         'neck.fpn_convs.0.conv.weight'}, 'Adapter'),
    'voc0712-retinanet': Task(
        'retinanet_swin-l_voc0712', 'swin-l_voc', 'mmdet', 'voc_det', {'pascal_voc/mAP': 1.},
        {'bbox_head.retina_cls.weight', 'neck.lateral_convs.0.conv.weight'}, 'LoRA'),
    'voc12aug-upernet': Task(
        'upernet_swin-l_voc12aug', 'swin-l_voc12aug', 'mmseg', 'voc_seg', {'mIoU': 100.},
        {'decode_head.conv_seg.weight', 'auxiliary_head.conv_seg.weight'}, 'AdaptFormer'),
    'ade20k-upernet': Task(
        'upernet_swin-l_ade20k', 'swin-l_ade20k', 'mmseg', 'ade', {'mIoU': 100.},
        {'decode_head.conv_seg.weight', 'auxiliary_head.conv_seg.weight'}, 'LoRA'),
}
CASCADE = Task('cascade-mask-rcnn_swin-b_coco-3x', 'swin-b_cascade-coco', 'mmdet', 'coco',
               {'coco/bbox_mAP': 1., 'coco/segm_mAP': 1.},
               {'roi_head.bbox_head.2.fc_cls.weight', 'roi_head.mask_head.2.conv_logits.weight'},
               'AdaptFormer')


# -- data: each set is written once per module, in the real layout ------------------------------
def _coco(root: str) -> List[str]:
    """Tiny COCO whose json lists all 80 categories, like the real files: the real 80-class
    heads then stay untouched and CocoMetric maps every predicted label to a category id."""
    from mmdet.datasets import CocoDataset
    for path in write_coco(root).values():
        with open(path) as f:
            ann = json.load(f)
        ann['categories'] = [dict(id=i, name=n, supercategory='thing')
                             for i, n in zip(COCO_IDS, CocoDataset.METAINFO['classes'])]
        with open(path, 'w') as f:
            json.dump(ann, f)
    ann = osp.join(root, 'annotations', 'instances_val2017.json')
    return [f'{s}_dataloader.dataset.data_root={root}/' for s in ('train', 'val', 'test')] + [
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']


def _voc_det(root: str) -> List[str]:
    devkit = write_voc_detection(root)
    # voc0712.py trains on a RepeatDataset of a ConcatDataset of VOC2007 + VOC2012 trainval
    return [f'train_dataloader.dataset.dataset.datasets.{i}.data_root={devkit}'
            for i in (0, 1)] + [f'{s}_dataloader.dataset.data_root={devkit}'
                                for s in ('val', 'test')]


def _voc_seg(root: str) -> List[str]:
    voc2012 = write_voc_segmentation(root)
    # pascal_voc12_aug.py trains on a ConcatDataset of VOC train + SBD aug
    return [f'train_dataloader.dataset.datasets.{i}.data_root={voc2012}' for i in (0, 1)] + [
        f'{s}_dataloader.dataset.data_root={voc2012}' for s in ('val', 'test')]


def _ade(root: str) -> List[str]:
    write_ade20k(root)
    return [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]


DATA_WRITERS: Dict[str, Callable[[str], List[str]]] = dict(
    coco=_coco, voc_det=_voc_det, voc_seg=_voc_seg, ade=_ade)


@pytest.fixture(scope='module')
def data_options(tmp_path_factory):
    """``name -> --cfg-options`` pointing the configs at the data, written on first use."""
    cache: Dict[str, List[str]] = {}

    def get(name: str) -> List[str]:
        if name not in cache:
            cache[name] = DATA_WRITERS[name](str(tmp_path_factory.mktemp(name)))
        return cache[name]

    return get


# -- expectations, computed independently of the run ---------------------------------------------
def built_counts(task: Task, method: str):
    """Trainable backbone parameters of the model the config builds with ``method``, and the
    plain host backbone (for its size and for the checkpoint check)."""
    cfg = Config.fromfile(task.tiny)
    cfg.merge_from_dict({'model.backbone.petl.type': method})
    with DefaultScope.overwrite_default_scope(task.scope):
        model = MODELS.build(cfg.model)
    wrapper = find_petl_backbone(model)
    assert wrapper is not None and [m.name for m in wrapper.methods] == [method]
    host = host_backbone(task.tiny, task.scope)
    return wrapper.num_trainable(), host


def check_petl_size(expected: int, host) -> None:
    """PETL-sized: something trains, and far less than the host backbone."""
    host_total = sum(p.numel() for p in host.parameters())
    assert 0 < expected < 0.2 * host_total, (expected, host_total)


def run_case(task: Task, method: str, options: List[str], work: str) -> None:
    expected, host = built_counts(task, method)
    check_petl_size(expected, host)
    train(task.tiny, work,
          options + [f'model.backbone.petl.type={method}'])

    # the report: the switched method (not the Full placeholder) and its trainable count
    check_report(work, expected)
    with open(osp.join(work, 'petl_report.json')) as f:
        assert json.load(f)['method'][0].startswith(f'{method}(')

    # the real evaluator ran once, at the last step, and PPT sits next to each metric
    val = [s for s in latest_scalars(work) if next(iter(task.metrics)) in s]
    assert len(val) == 1 and val[0]['step'] == MAX_ITERS, val
    for key, factor in task.metrics.items():
        assert 0. <= val[0][key] <= factor, (key, val[0][key])
        assert val[0][f'{key}_ppt'] == expected_ppt(val[0][key] / factor, expected)

    # adapter-only checkpoint: host buffers + exactly the injected petl_* tensors + the heads
    with open(osp.join(work, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    assert ckpt.endswith(f'iter_{MAX_ITERS}.pth'), ckpt
    check_adapter_only(ckpt, host, expected, task.head_keys, marker='petl_')


CASES = [pytest.param(name, method, id=f'{name}-{method}')
         for name, task in TASKS.items() for method in DENSE_METHODS + (task.generic, )]


@pytest.mark.parametrize('name,method', CASES)
def test_dense_setting_method(name, method, data_options, tmp_path):
    task = TASKS[name]
    run_case(task, method, data_options(task.data), str(tmp_path / 'work'))


@pytest.mark.parametrize('method', DENSE_METHODS + (CASCADE.generic, ))
def test_cascade_mask_rcnn_builds(method):
    expected, host = built_counts(CASCADE, method)
    check_petl_size(expected, host)


def test_cascade_mask_rcnn_mona_coco(data_options, tmp_path):
    run_case(CASCADE, 'Mona', data_options(CASCADE.data), str(tmp_path / 'work'))


@functools.lru_cache(maxsize=None)
def _base_config(name: str) -> Config:
    return Config.fromfile(osp.join(BASE_DIR, f'{name}.py'))  # read only: safe to share


def _without_petl(model: dict) -> dict:
    """``model`` minus what a method config may set: the method and its drop-path rate."""
    model = Config(dict(model=model)).to_dict()['model']  # a plain deep copy
    model['backbone'].pop('petl')
    model['backbone']['backbone'].pop('drop_path_rate')
    return model


@pytest.mark.parametrize('task,method', [
    pytest.param(task, method, id=f'{task.setting}-{method}')
    for task in list(TASKS.values()) + [CASCADE]
    for method in DENSE_METHODS + (task.generic, )])
def test_method_config_is_base_with_the_method(task, method):
    """configs/<method>/<setting>.py is the base the tiny run shrinks, with petl set to the
    method alone (its defaults; the Mona repo's init for its Adapter / AdaptFormer baselines):
    what the runs above switch with --cfg-options."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', method.lower(), f'{task.setting}.py'))
    assert cfg.model.backbone.petl.to_dict() == dict(type=method, **REFERENCE_INIT.get(method, {}))
    base = _base_config(task.base)
    assert _without_petl(cfg.model) == _without_petl(base.model)
    assert cfg.train_dataloader == base.train_dataloader
    assert cfg.val_evaluator == base.val_evaluator
