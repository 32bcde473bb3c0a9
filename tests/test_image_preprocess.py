"""The named normalisation of the image benchmark and its pipelines (configs/_base_/image/)."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS, TRANSFORMS

import vpetl_mm  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _preprocess(norm: str) -> torch.Tensor:
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pre = MODELS.build(dict(type='vpetl_mm.NamedNormClsDataPreprocessor', norm=norm,
                                to_rgb=True))
    image = torch.tensor([0, 128, 255], dtype=torch.uint8).view(3, 1, 1)  # B, G, R
    return pre(dict(inputs=[image]))['inputs'][0, :, 0, 0]


def test_named_normalisations():
    rgb = torch.tensor([255., 128., 0.])  # to_rgb flips the BGR image
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(_preprocess('imagenet'), (rgb / 255 - mean) / std, atol=1e-3)
    assert torch.allclose(_preprocess('inception'), rgb / 127.5 - 1, atol=1e-6)
    assert torch.equal(_preprocess('none'), rgb)


def test_named_normalisation_errors():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        with pytest.raises(ValueError, match="Unknown norm 'siglip'"):
            MODELS.build(dict(type='vpetl_mm.NamedNormClsDataPreprocessor', norm='siglip'))
        with pytest.raises(ValueError, match='takes `norm`'):
            MODELS.build(dict(type='vpetl_mm.NamedNormClsDataPreprocessor', mean=[0, 0, 0]))


@pytest.mark.parametrize('name,size', [('vtab_test_pipeline', (224, 224)),
                                       ('vtab_train_pipeline_aug', (224, 224)),
                                       ('fgvc_train_pipeline', (224, 224)),
                                       ('fgvc_test_pipeline', (224, 224))])
def test_pipelines_give_224_inputs(name, size, tmp_path):
    from PIL import Image
    path = str(tmp_path / 'x.png')
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(path)
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'image', 'pipelines.py'))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        transforms = [TRANSFORMS.build(t) for t in cfg[name]]
    results = dict(img_path=path, gt_label=0)
    for transform in transforms:
        results = transform(results)
    assert tuple(results['inputs'].shape[1:]) == size
    if name == 'fgvc_test_pipeline':  # shorter edge 256 (300 -> 256, 400 -> 341), centre crop
        assert results['data_samples'].ori_shape == (300, 400)


def test_color_jitter_hue_runs_on_numpy2_and_matches_mmcv():
    import cv2
    import mmcv

    from vpetl_mm.datasets.transforms import adjust_hue
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    for factor in (0.0, 0.1, 0.37):  # mmcv works for these
        np.testing.assert_array_equal(adjust_hue(img, factor),
                                      mmcv.adjust_hue(img, factor, backend='cv2'))
    # a negative factor rotates the hue the other way (mmcv raises OverflowError on NumPy 2)
    saturated = np.zeros((4, 4, 3), np.uint8)
    saturated[..., 2] = 255  # pure red in BGR: hue 0
    hue = cv2.cvtColor(adjust_hue(saturated, -0.1), cv2.COLOR_BGR2HSV_FULL)[..., 0]
    assert np.all(np.abs(hue.astype(int) - (256 - 25)) <= 1)


def test_gps_contrast_pipeline_builds_and_makes_two_views(tmp_path):
    import cv2
    from mmcv.transforms import Compose
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'gps', 'vit-b_vtab-dtd.py'))
    # the base's hooks, with the calibration entry GPS's own
    hook = next(h for h in cfg.custom_hooks if h['type'] == 'vpetl_mm.PETLCalibrationHook')
    assert hook['type'] == 'vpetl_mm.PETLCalibrationHook' and hook['views'] == 2
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pipeline = Compose([TRANSFORMS.build(t) for t in hook['pipeline']])
        views = [pipeline(dict(img_path=path, gt_label=0))['inputs'] for _ in range(2)]
    assert all(v.shape == (3, 224, 224) for v in views) and not torch.equal(*views)
