"""NOAH's and DTL's VTAB heads start as their reference code's: trunc-normal(0.02), bias 0.

NOAH retrains with its own ``reset_classifier`` (ZhangYuanhan-AI/NOAH@e9c55f3
model/supernet_vision_transformer_timm.py); DTL's ``init_weights('')`` applies
``_init_vit_weights`` without module names, so its head is not zeroed (heekhero/DTL@bf6c51e
models/vision_transformer.py). The recipe rows record it and every VTAB leaf builds it.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

from vpetl_mm.apis.config_cache import cached_base_configs
from vpetl_mm.apis.recipe import config_recipe
from vpetl_mm.benchmark.recipe_resolve import resolve
from vpetl_mm.datasets import VTAB_DATASETS

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..'))


@pytest.mark.parametrize('folder', ['noah', 'dtl'])
def test_noah_and_dtl_heads_start_trunc_normal(folder):
    with cached_base_configs():
        for key in VTAB_DATASETS:
            path = osp.join(REPO, 'configs', folder, f'vit-b_{key}.py')
            assert resolve(folder, key).values['head_init'] == 'trunc_normal'
            assert config_recipe(path, build=False)['head_init_kind'] == 'trunc_normal', path
        cfg = Config.fromfile(osp.join(REPO, 'configs', folder, 'vit-b_vtab-dtd.py'))
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    head = MODELS.build(cfg.model.head)
    head.init_weights()
    linear = head.layers.head
    # normal std 0.02 (nn.Linear's own init is uniform within 1/sqrt(768) = 0.036, with a
    # non-zero bias): 36k draws reach past 0.05
    assert 0.015 < linear.weight.std() < 0.025 and linear.weight.abs().max() > 0.05
    assert not linear.bias.any()
