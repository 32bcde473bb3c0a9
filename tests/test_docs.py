"""The worked examples in docs/ run, and pass the method contract."""
import os.path as osp
import re

import pytest

from conftest import TinyBackbone, build_petl
from petl_contract import PETLContractTester
from tiny_backbones import TINY_BACKBONES
from vpetl_mm.models import PROFILES
from vpetl_mm.registry import PETL_METHODS

DOCS = osp.join(osp.dirname(__file__), '..', 'docs')


def first_python_block(doc: str, containing: str = '') -> str:
    """The first ```python block of ``doc`` whose code contains ``containing``."""
    text = open(osp.join(DOCS, doc)).read()
    return next(b for b in re.findall(r'```python\n(.*?)```', text, re.S) if containing in b)


@pytest.fixture(scope='module')
def ia3():
    exec(compile(first_python_block('add_petl_method.md'), 'add_petl_method.md', 'exec'), {})
    yield PETL_METHODS.get('IA3')
    PETL_METHODS._module_dict.pop('IA3')


@pytest.mark.parametrize('tiny', TINY_BACKBONES, ids=lambda t: t.profile)
def test_ia3_example_passes_contract(ia3, tiny):
    """Every clause of the contract, on every profiled tiny host."""
    PETLContractTester(dict(type='IA3'), tiny).check_all()


def test_ia3_example_count_on_vit_b(ia3):
    vit_b = TinyBackbone('mmpretrain.VisionTransformer', 'mmpretrain',
                         dict(type='VisionTransformer', arch='b', img_size=224), ())
    assert build_petl(vit_b, dict(type='IA3')).num_trainable() == 12 * (2 * 768 + 3072)


MIXER = TinyBackbone('mmpretrain.MlpMixer', 'mmpretrain',
                     dict(type='MlpMixer', img_size=32, patch_size=8, drop_path_rate=0.,
                          arch=dict(embed_dims=32, num_layers=2, tokens_mlp_dims=8,
                                    channels_mlp_dims=64)),
                     (2, 3, 32, 32), frozen_stages_key=None)


@pytest.fixture(scope='module')
def mixer_profile():
    example = first_python_block('add_backbone_profile.md', "name='mmpretrain.MlpMixer'")
    exec(compile(example, 'add_backbone_profile.md', 'exec'), {})
    yield PROFILES['mmpretrain.MlpMixer']
    PROFILES.pop('mmpretrain.MlpMixer')


@pytest.mark.parametrize('petl', [
    dict(type='Adapter', placements=['mlp'], bottleneck=4), dict(type='AdaptFormer', bottleneck=4),
    dict(type='LoRA', rank=4, targets=['fc1', 'fc2']), dict(type='BitFit'), dict(type='LNTune')],
    ids=lambda p: p['type'])
def test_profile_example_passes_contract(mixer_profile, petl):
    PETLContractTester(petl, MIXER).check_all()


def test_profile_example_rejects_lora_on_qkv(mixer_profile):
    with pytest.raises(ValueError, match=r"LoRA needs the site\(s\) \['qkv'\]"):
        build_petl(MIXER, dict(type='LoRA'))
