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
        with pytest.raises(ValueError, match="Unknown norm 'clip'"):
            MODELS.build(dict(type='vpetl_mm.NamedNormClsDataPreprocessor', norm='clip'))
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
