"""The digits demo covers every method that runs on the image ViT (the zoo's learning check).

The check itself (each method beats the untrained head) runs in ``demo/digits_transfer.py
--zoo`` (minutes per method); here: every registered method has a demo config that builds it,
is listed in the demo, and the check's rule is the documented one.
"""
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from vpetl_mm.benchmark import MethodResult
from vpetl_mm.registry import PETL_METHODS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'demo'))
import digits_transfer  # noqa: E402

DEMO = {key: name for name, key in
        digits_transfer.demo_methods() + digits_transfer.zoo_methods()}
IMAGE_VIT_METHODS = sorted({cls.__name__ for cls in PETL_METHODS.module_dict.values()
                            if cls.supports('mmpretrain.VisionTransformer')})


def _demo_type(key: str) -> str:
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'demo', f'vit-tiny_digits5-9_{key}.py'))
    model = cfg.model.model if cfg.model.type == 'vpetl_mm.PACE' else cfg.model  # a wrapper
    return PETL_METHODS.get(model.backbone.petl.type).__name__


@pytest.fixture(scope='module')
def demo_types():
    return {key: _demo_type(key) for key in DEMO}


def test_every_image_vit_method_is_in_the_learning_check(demo_types):
    missing = set(IMAGE_VIT_METHODS) - set(demo_types.values())
    assert not missing, (f'no demo variant for {sorted(missing)}: a method without a row in '
                         'vpetl_mm/benchmark/variants.py gets one (run tools/generate_configs.py)')


def test_demo_keys_are_unique_and_have_configs():
    keys = [k for _, k in digits_transfer.demo_methods() + digits_transfer.zoo_methods()]
    assert len(keys) == len(set(keys))
    for key in keys:
        assert osp.isfile(osp.join(ROOT, 'configs', 'demo', f'vit-tiny_digits5-9_{key}.py'))


def test_learning_check_names_methods_not_above_the_floor():
    results = [MethodResult('A', top1=20.0, params=1), MethodResult('B', top1=15.0, params=1),
               MethodResult('C', top1=15.2, params=1)]
    assert digits_transfer.learning_check(results, floor=15.15) == ['B']
