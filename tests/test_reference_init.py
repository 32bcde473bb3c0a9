"""``init='trunc_normal'``: the init the reference runs really start from (Adapter, AdaptFormer,
LoRA), one option away from each method's own zero-update init.

V-PETL's timm ``init_weights`` overwrites every new ``nn.Linear`` with trunc-normal(0.02) and
zero biases; the Mona repo's Swin init does the same to its dense Adapter / AdaptFormer. The
default stays the methods' own init (identity at step 0), which the contract checks; a
non-identity instance says so (``ZERO_INIT`` False), so the contract never runs its zero-init
clause on it.
"""
import pytest
import torch

from conftest import build_petl
from tiny_backbones import TINY_BACKBONES

VIT = TINY_BACKBONES[0]  # mmpretrain ViT: width 32, 3 blocks


def _new_tensors(wrapper):
    return {n: p for n, p in wrapper.backbone.named_parameters() if p.requires_grad}


@pytest.mark.parametrize('petl', [dict(type='Adapter'), dict(type='AdaptFormer'),
                                  dict(type='LoRA')], ids=lambda p: p['type'])
def test_trunc_normal_init_is_the_references_and_not_an_identity(petl):
    default = build_petl(VIT, dict(petl)).eval()
    reference = build_petl(VIT, dict(petl, init='trunc_normal')).eval()
    assert default.methods[0].ZERO_INIT and not reference.methods[0].ZERO_INIT
    reference.load_state_dict(default.state_dict(), strict=False)  # same host weights
    reference.methods[0].init_weights()  # the runner's re-init keeps the reference's init
    for name, param in _new_tensors(reference).items():
        if name.endswith('bias'):
            assert torch.count_nonzero(param) == 0, name
        elif param.dim() >= 2:  # every weight matrix (LoRA A and B, down and up)
            assert 0.01 < param.std().item() < 0.03, name
            assert param.abs().max().item() < 0.2, name
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(reference(x)[0], default(x)[0])


def test_bad_init_is_a_clear_error():
    with pytest.raises(ValueError, match="init='kaiming': use 'zero'"):
        build_petl(VIT, dict(type='LoRA', init='kaiming'))
