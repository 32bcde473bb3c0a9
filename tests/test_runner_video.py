"""End-to-end CPU runs of the video settings: ``tools/train.py`` then the multi-view ``tools/test.py``.

Each run uses a tiny copy of a *real* video setting (``tests/configs/video/<backbone>_hmdb51_
tiny.py`` inherits ``configs/_base_/video/<backbone>.py`` and ``hmdb51.py``): VideoMAE ViT and
Video Swin in PETLBackbone, the SGD recipe, ``vpetl_mm.VideoListDataset`` reading real mp4 files
(a square moving left or right, written by ``tests/datagen/video.py``). AdaptFormer, BAPAT and
LoRA train a few iterations on each backbone (BAPAT reads the V-PETL CSV annotations, the others
mmaction2's list files); the adapter-only checkpoint then goes through ``tools/test.py`` with
4 clips x 3 crops per video and mmaction2's AccMetric.
"""
import json
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(__file__))

from datagen.video import make_video_dataset  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import DATASETS, MODELS, DefaultScope  # noqa: E402
from runner_utils import (PY, REPO, check_adapter_only, check_report, host_backbone,  # noqa: E402
                          run_tool, train)

TINY = {b: osp.join(REPO, 'tests', 'configs', 'video', f'{b}_hmdb51_tiny.py')
        for b in ('videomae-b', 'videoswin-b')}
MAX_ITERS = 4
CASES = [pytest.param(b, m, id=f'{b}-{m}') for b in TINY for m in ('AdaptFormer', 'BAPAT', 'LoRA')]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_video_dataset(str(tmp_path_factory.mktemp('video')), num_train=8, num_val=4)


def _options(data, method: str):
    csv = method == 'BAPAT'  # one method per backbone reads the V-PETL CSV format
    ann = dict(train=data['train_csv' if csv else 'train_list'],
               val=data['val_csv' if csv else 'val_list'])
    opts = [f'model.backbone.petl.type={method}']
    for split, ann_split in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        opts += [f'{split}_dataloader.dataset.ann_file={ann[ann_split]}',
                 f'{split}_dataloader.dataset.data_prefix.video={data["video_dir"]}']
    return opts


def _trainable(cfg_path: str, method: str) -> int:
    cfg = Config.fromfile(cfg_path)
    cfg.model.backbone.petl = dict(type=method)
    with DefaultScope.overwrite_default_scope('mmaction'):
        return MODELS.build(cfg.model.backbone).num_trainable()


@pytest.mark.parametrize('backbone,method', CASES)
def test_train_then_multiview_test(data, backbone, method, tmp_path):
    cfg = TINY[backbone]
    work = str(tmp_path / 'work')
    opts = _options(data, method)
    out = train(cfg, work, opts)
    assert f'Iter(train) [{MAX_ITERS}/{MAX_ITERS}]' in out
    expected = _trainable(cfg, method)
    check_report(work, expected)
    ckpt = osp.join(work, f'iter_{MAX_ITERS}.pth')
    check_adapter_only(ckpt, host_backbone(cfg, 'mmaction'), expected,
                       {'cls_head.fc_cls.weight'}, marker='petl_')

    metrics_file = str(tmp_path / 'metrics.json')
    log = run_tool([PY, 'tools/test.py', cfg, ckpt, '--work-dir', str(tmp_path / 'test'),
                    '--out', metrics_file, '--cfg-options', *opts], str(tmp_path / 'test.log'))
    assert 'Adapter-only checkpoint: initialising the model first' in log
    with open(metrics_file) as f:
        metrics = json.load(f)
    assert {'acc/top1', 'acc/top5', 'acc/mean1'} <= set(metrics), metrics
    assert 0. <= metrics['acc/top1'] <= 1.


def test_the_test_pipeline_feeds_4x3_views_per_video(data):
    """The final test averages 12 views per video: 4 temporal clips x 3 spatial crops."""
    cfg = Config.fromfile(TINY['videoswin-b'])
    cfg.test_dataloader.dataset.update(ann_file=data['val_list'],
                                       data_prefix=dict(video=data['video_dir']))
    with DefaultScope.overwrite_default_scope('mmaction'):
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
        model = MODELS.build(cfg.model)
    assert len(dataset) == 4
    batch = pseudo_collate([dataset[0]])
    assert batch['inputs'][0].shape == (12, 3, 4, 32, 32)
    model.eval()
    predictions = model.test_step(batch)
    assert predictions[0].pred_score.shape == (2, )  # one score vector per video


@pytest.mark.parametrize('dataset', ['ssv2', 'hmdb51', 'k400'])
def test_the_real_video_pipelines_run(data, dataset):
    """The shipped configs' own pipelines (224 px, 8 x 4 sampling) on the generated videos."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'lora', f'videomae-b_{dataset}.py'))
    shapes = dict(train=(1, 3, 8, 224, 224), val=(1, 3, 8, 224, 224), test=(12, 3, 8, 224, 224))
    for split, shape in shapes.items():
        loader = cfg[f'{split}_dataloader']
        assert loader.dataset.type == 'vpetl_mm.VideoListDataset'
        loader.dataset.update(ann_file=data['train_list'],
                              data_prefix=dict(video=data['video_dir']))
        with DefaultScope.overwrite_default_scope('mmaction'):
            item = DATASETS.build(loader.dataset)[0]
        assert tuple(item['inputs'].shape) == shape, split
    assert cfg.model.cls_head.num_classes == cfg.num_classes
