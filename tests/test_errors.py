"""Bad input fails at build time with a message that names the problem and the fix."""
import dataclasses

import pytest

from conftest import build_petl
from tiny_backbones import TINY_BACKBONES
from vpetl_mm.models import PROFILES

VIT, _, SWIN_DET = TINY_BACKBONES[0], TINY_BACKBONES[1], TINY_BACKBONES[2]


def test_unknown_method_lists_known_ones():
    with pytest.raises(KeyError, match=r"Unknown PETL method 'LoRa'.*'LoRA'"):
        build_petl(VIT, dict(type='LoRa'))


def test_unknown_option_lists_the_options():
    with pytest.raises(TypeError, match=r"LoRA got unknown option\(s\) \['r'\].*'rank'"):
        build_petl(VIT, dict(type='LoRA', r=4))


def test_unprofiled_backbone_names_supported_families():
    resnet = dataclasses.replace(VIT, cfg=dict(type='ResNet', depth=18))
    with pytest.raises(KeyError, match=r'No backbone profile describes .*ResNet.*Supported'):
        build_petl(resnet, dict(type='LoRA'))


def test_unknown_forced_profile():
    with pytest.raises(KeyError, match=r"Unknown backbone profile 'vit'.*Known profiles"):
        build_petl(VIT, dict(type='LoRA'), profile='vit')


def test_target_matching_nothing():
    with pytest.raises(ValueError, match=r"trainable pattern 'cls_tokn' matches no backbone"):
        build_petl(VIT, dict(type='LoRA'), trainable=['cls_tokn'])


def test_unknown_lora_target():
    with pytest.raises(ValueError, match=r"Unknown LoRA target 'qkv.x'"):
        build_petl(VIT, dict(type='LoRA', targets=['qkv.x']))


def test_method_unsupported_on_profile():
    no_norm2 = dataclasses.replace(PROFILES['mmpretrain.VisionTransformer'], name='test.no-norm2',
                                   sites={k: v for k, v in PROFILES[
                                       'mmpretrain.VisionTransformer'].sites.items()
                                       if k != 'norm2'})
    PROFILES[no_norm2.name] = no_norm2
    try:
        with pytest.raises(ValueError, match=r"AdaptFormer needs the site\(s\) \['norm2'\].*"
                                             r"not supported"):
            build_petl(VIT, dict(type='AdaptFormer'), profile=no_norm2.name)
    finally:
        PROFILES.pop(no_norm2.name)


@pytest.mark.parametrize('petl,host,match', [
    (dict(type='Full'), dict(frozen_stages=1), r'Conflicting options: frozen_stages=1.*'
                                                r'frozen_stages=-1'),
    ([dict(type='Full'), dict(type='LoRA')], {}, r'Full trains the whole backbone'),
    ([dict(type='LoRA'), dict(type='LoRA', rank=2)], {}, r'listed twice'),
    (dict(type='LoRA', targets=['qkv', 'qkv.q']), {}, r'Conflicting LoRA targets'),
    (dict(type='Partial', k=9), {}, r'Partial k=9 must be in \[1, 4\]'),
    (dict(type='Adapter', placements=['ffn']), {}, r"placements \['ffn'\] are invalid"),
    (dict(type='AdaptFormer'), dict(with_cp=True), r'with_cp=False'),
    (dict(type='LoRA'), dict(with_cp=True), r'reentrant activation checkpointing'),
    ([], {}, r'petl=\[\] applies no method'),
], ids=['full+frozen_stages', 'full+lora', 'duplicate', 'lora-targets', 'partial-k',
        'adapter-placement', 'adaptformer+with_cp', 'lora+with_cp', 'empty'])
def test_conflicting_options(petl, host, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build_petl(SWIN_DET, petl, **host)


@pytest.mark.parametrize('petl', [dict(type='Full'), dict(type='Frozen')])
def test_with_cp_is_fine_when_nothing_inside_blocks_is_petl(petl):
    assert build_petl(SWIN_DET, petl, with_cp=True).anatomy.uses_reentrant_checkpointing()


def test_wrapper_init_cfg_points_to_the_backbone():
    from mmengine.registry import MODELS
    with pytest.raises(ValueError, match=r'put init_cfg .* inside backbone=dict'):
        MODELS.build(dict(type='vpetl_mm.PETLBackbone', backbone=dict(VIT.cfg),
                          petl=dict(type='LoRA'), init_cfg=dict(type='Pretrained', checkpoint='x')))
