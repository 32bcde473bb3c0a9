"""Prefix tuning on the image ViTs and U-Tuning, against manual re-computation.

The contract matrix (test_contract.py) covers trainability, zero-init, checkpoints, copies and
Prefix's merge; here the attention patches and U-Tuning's tuners are checked to compute the
methods' definitions on the hosts' own layers.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import build_host, build_petl
from tiny_backbones import TINY_BACKBONES

BY_PROFILE = {t.profile: t for t in TINY_BACKBONES}
IMAGE_VITS = ['mmpretrain.VisionTransformer', 'timm.VisionTransformer']


def _attention_reference(attn, x, k_extra=None, v_extra=None):
    """Multi-head attention of ``x`` with the host's qkv / proj weights, written out."""
    B, N, C = x.shape
    heads = attn.num_heads
    q, k, v = F.linear(x, attn.qkv.weight, attn.qkv.bias).view(B, N, 3, heads, -1).permute(
        2, 0, 3, 1, 4)
    if k_extra is not None:
        k = torch.cat((k_extra.expand(B, -1, -1, -1), k), dim=2)
        v = torch.cat((v_extra.expand(B, -1, -1, -1), v), dim=2)
    weights = (q @ k.transpose(-2, -1) / math.sqrt(C // heads)).softmax(dim=-1)
    return F.linear((weights @ v).transpose(1, 2).reshape(B, N, C), attn.proj.weight,
                    attn.proj.bias)


def _first_attn(wrapper):
    block = wrapper.anatomy.blocks[0]
    return wrapper.anatomy.site(block, 'attn'), block


@pytest.mark.parametrize('profile', IMAGE_VITS)
@pytest.mark.parametrize('mid', [0, 4])
def test_prefix_attention_is_prepended_keys_and_values(profile, mid):
    tiny = BY_PROFILE[profile]
    wrapper = build_petl(tiny, dict(type='PrefixTuning', length=3, mid=mid)).eval()
    attn, block = _first_attn(wrapper)
    prefix = getattr(block.module, 'petl_prefixtuning_attn')
    k_extra, v_extra = prefix.key_values()
    assert k_extra.shape == (1, attn.num_heads, 3, block.dim // attn.num_heads)
    x = torch.randn(2, 5, block.dim)
    with torch.no_grad():
        expected = _attention_reference(attn, x, k_extra, v_extra)
        torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-5)
        # with the prefixes' providers gone, the patched forward is the host's own
        wrapper.methods[0].remove_hooks()
        torch.testing.assert_close(attn(x), _attention_reference(attn, x), rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize('profile', IMAGE_VITS)
def test_prefix_changes_the_output_and_merge_folds_the_mlp(profile):
    tiny = BY_PROFILE[profile]
    x = torch.randn(*tiny.input_shape)
    wrapper = build_petl(tiny, dict(type='PrefixTuning', length=2, mid=4)).eval()
    host = build_host(tiny)  # after build_petl, which imports the host's registry
    host.load_state_dict({k: v for k, v in wrapper.state_dict().items() if 'petl_' not in k})
    host.eval()  # some hosts' train() returns None: no chaining
    with torch.no_grad():
        base = host(x)[-1]
        out = wrapper(x)[-1]
        assert not torch.allclose(base, out)  # prefixes take part in every attention
        wrapper.merge()
        torch.testing.assert_close(wrapper(x)[-1], out)
    assert wrapper.methods[0].num_folded_params() == len(wrapper.anatomy.blocks) * 2 * 2 * 32


def test_prefix_refuses_timm_attention_masks():
    tiny = BY_PROFILE['timm.VisionTransformer']
    wrapper = build_petl(tiny, dict(type='PrefixTuning', length=2, mid=0))
    attn, block = _first_attn(wrapper)
    with pytest.raises(ValueError, match='attention mask'):
        attn(torch.randn(1, 4, block.dim), torch.zeros(4, 4))


@pytest.mark.parametrize('profile', sorted(BY_PROFILE))
def test_utuning_parallel_prefix_is_attention_over_learned_pairs(profile):
    tiny = BY_PROFILE[profile]
    wrapper = build_petl(tiny, dict(type='UTuning', length=3, bottleneck=4)).eval()
    attn, block = _first_attn(wrapper)
    tuner = getattr(block.module, 'petl_utuning_attn')
    with torch.no_grad():
        tuner.values.normal_()
    C, heads = block.dim, tuner.heads
    x = torch.randn(2, 6, C)
    qkv = wrapper.anatomy.site(block, 'qkv')
    q_bias = qkv.bias[:C] if qkv.bias is not None else attn.q_bias
    q = (x @ qkv.weight[:C].t() + q_bias).view(2, 6, heads, -1).transpose(1, 2)
    k = tuner.keys.view(3, heads, -1).transpose(0, 1)
    v = tuner.values.view(3, heads, -1).transpose(0, 1)
    weights = (q @ k.transpose(-2, -1) / math.sqrt(C // heads)).softmax(dim=-1)
    expected = (weights @ v).transpose(1, 2).reshape(2, 6, C) @ wrapper.anatomy.site(
        block, 'proj').weight.t()
    with torch.no_grad():
        torch.testing.assert_close(tuner(x), expected, rtol=1e-5, atol=1e-5)


def test_utuning_adds_both_tuners_to_the_frozen_operations():
    tiny = BY_PROFILE['mmpretrain.VisionTransformer']
    wrapper = build_petl(tiny, dict(type='UTuning', length=3, bottleneck=4)).eval()
    attn, block = _first_attn(wrapper)
    prefix = block.module.petl_utuning_attn
    adapter = block.module.petl_utuning_mlp
    with torch.no_grad():
        prefix.values.normal_()
        adapter.up.weight.normal_()
    mlp = wrapper.anatomy.site(block, 'mlp')
    x = torch.randn(2, 5, block.dim)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), _attention_reference(attn, x) + prefix(x),
                                   rtol=1e-5, atol=1e-5)
        expected = type(mlp).forward(mlp, x) + adapter.up(torch.relu(adapter.down(x)))
        torch.testing.assert_close(mlp(x), expected, rtol=1e-5, atol=1e-5)


def test_utuning_options_are_checked():
    tiny = BY_PROFILE['mmpretrain.VisionTransformer']
    with pytest.raises(ValueError, match='not both 0'):
        build_petl(tiny, dict(type='UTuning', length=0, bottleneck=0))
    only_ffn = build_petl(tiny, dict(type='UTuning', length=0, bottleneck=4))
    assert all(i.site == 'mlp' for i in only_ffn.methods[0].injected)
