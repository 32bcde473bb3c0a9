"""Video methods against their reference arithmetic, and gradient checkpointing with PETL.

BAPAT's PATT and prefix tuning are wired through hooks and host patches, never by editing the
attention code; here they are checked against direct re-implementations of the V-PETL code's
arithmetic. Video Swin's ``with_cp`` checkpoints in reentrant mode, which gives PETL parameters
no gradient behind a frozen stem; vpetl_mm's block patch must make it exact.
"""
import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import build_petl, run, tensors
from tiny_backbones import TINY_BACKBONES

TINY = {t.profile: t for t in TINY_BACKBONES}
SWIN3D = TINY['mmaction.SwinTransformer3D']
VIDEOMAE = TINY['mmaction.VisionTransformer']
SMALL = dict(AdaptFormer=dict(bottleneck=4), BAPAT=dict(bottleneck=4, att_mid=4),
             LoRA=dict(rank=2), PrefixTuning=dict(length=3, mid=4))


def _perturb(wrapper, seed=3):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in wrapper.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)


def _reference_attention(attn, x, mask, k_extra=None, v_extra=None, offsets=None):
    """Window attention written out from the V-PETL code (prefix / patt_kv modes)."""
    B_, N, C = x.shape
    h = attn.num_heads
    qkv = F.linear(x, attn.qkv.weight, attn.qkv.bias)
    q, k, v = qkv.reshape(B_, N, 3, h, C // h).permute(2, 0, 3, 1, 4)
    if offsets is not None:  # patt_kv: qkv_adapter(x) reshaped (B_, N, 2, h, d)
        k_, v_ = offsets.reshape(B_, N, 2, h, C // h).permute(2, 0, 3, 1, 4)
        k, v = k + k_, v + v_
    q = q * attn.scale
    bias = attn.relative_position_bias_table[attn.relative_position_index[:N, :N].reshape(-1)]
    bias = bias.reshape(N, N, -1).permute(2, 0, 1)
    logits = q @ k.transpose(-2, -1) + bias + mask.repeat(B_ // mask.shape[0], 1, 1)[:, None]
    if k_extra is not None:  # prefixes: no bias, no mask
        logits = torch.cat((q @ k_extra.transpose(-2, -1), logits), dim=-1)
        v = torch.cat((v_extra.expand(B_, -1, -1, -1), v), dim=2)
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(B_, N, C)
    return attn.proj(out)


def _window_inputs(attn, windows=2, seed=0):
    torch.manual_seed(seed)
    N = attn.relative_position_index.shape[0]
    x = torch.randn(2 * windows, N, attn.qkv.in_features)
    mask = torch.where(torch.rand(windows, N, N) < 0.3, -100., 0.)
    return x, mask


def test_patt_equals_the_vpetl_patt_kv_arithmetic():
    wrapper = build_petl(SWIN3D, dict(type='BAPAT', bottleneck=4, att_mid=6, att_scale=0.8))
    attn = wrapper.backbone.layers[0].blocks[1].attn
    patt = wrapper.backbone.layers[0].blocks[1].petl_bapat_qkv
    x, mask = _window_inputs(attn)
    with torch.no_grad():
        offsets = patt.up(torch.tanh(patt.down(x))) * 0.8
        expected = _reference_attention(attn, x, mask, offsets=offsets)
        torch.testing.assert_close(attn(x, mask=mask), expected)


@pytest.mark.parametrize('tiny', [SWIN3D, VIDEOMAE], ids=lambda t: t.profile)
def test_prefixes_are_extra_keys_and_values(tiny):
    wrapper = build_petl(tiny, dict(type='PrefixTuning', length=3, mid=5))
    block = wrapper.anatomy.blocks[-1]
    attn, prefix = block.module.attn, block.module.petl_prefixtuning_attn
    k_p, v_p = prefix.key_values()
    with torch.no_grad():
        if tiny is SWIN3D:
            x, mask = _window_inputs(attn)
            expected = _reference_attention(attn, x, mask, k_p, v_p)
            torch.testing.assert_close(attn(x, mask=mask), expected)
        else:  # VideoMAE: one sequence, q/v biases, no position bias inside attention
            x = torch.randn(2, 8, block.dim)
            qkv = F.linear(x, attn.qkv.weight, torch.cat(
                (attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias)))
            q, k, v = qkv.reshape(2, 8, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
            k, v = torch.cat((k_p.expand(2, -1, -1, -1), k), 2), torch.cat(
                (v_p.expand(2, -1, -1, -1), v), 2)
            out = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(-1) @ v
            expected = attn.proj(out.transpose(1, 2).reshape(2, 8, -1))
            torch.testing.assert_close(attn(x), expected)


def test_prefix_patch_without_prefixes_is_the_host_forward():
    from vpetl_mm.models.host_patches import apply_host_patch
    host = build_petl(SWIN3D, dict(type='Frozen')).backbone
    attn = host.layers[0].blocks[1].attn
    x, mask = _window_inputs(attn)
    with torch.no_grad():
        expected = type(attn).forward(attn, x, mask)
        apply_host_patch(attn, 'swin3d_window_attention')
        torch.testing.assert_close(attn(x, mask=mask), expected, rtol=0, atol=1e-6)


def test_prefix_fold_drops_the_mlp_and_keeps_outputs():
    wrapper = build_petl(SWIN3D, dict(type='PrefixTuning', length=3, mid=5)).eval()
    with torch.no_grad():
        before = run(wrapper, SWIN3D)
        wrapper.merge()
        for method_module in wrapper.injected_modules().values():
            assert method_module.folded is not None
        after = run(wrapper, SWIN3D)
    for a, b in zip(before, after, strict=True):
        torch.testing.assert_close(a, b)
    assert not any('folded' in k for k in wrapper.state_dict())  # a cache, never saved


@pytest.mark.parametrize('petl', [
    dict(type='LoRA'), dict(type='AdaptFormer'), dict(type='AdaptFormer', input='residual'),
    dict(type='BAPAT'), dict(type='PrefixTuning'), dict(type='BitFit')],
    ids=['LoRA', 'AdaptFormer', 'AdaptFormer-residual', 'BAPAT', 'PrefixTuning', 'BitFit'])
def test_with_cp_gives_petl_the_same_gradients(petl):
    petl = dict(petl, **SMALL.get(petl['type'], {}))
    models = [build_petl(SWIN3D, copy.deepcopy(petl), with_cp=cp) for cp in (False, True)]
    assert models[1].backbone.layers[0].blocks[0].with_cp
    grads = []
    for model in models:
        _perturb(model)
        model.train()
        torch.manual_seed(1)
        x = torch.randn(*SWIN3D.input_shape)
        sum(t.square().sum() for t in tensors(model(x))).backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, grad in grads[0].items():
        assert grads[1][name] is not None, f'{name} got no gradient under with_cp'
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-6)
    assert any(g.abs().sum() > 0 for g in grads[1].values())


def test_host_reentrant_checkpointing_would_starve_petl():
    """Why the patch exists: the host's own forward gives the adapters no gradient."""
    model = build_petl(SWIN3D, dict(type='LoRA', rank=2), with_cp=True).train()
    _perturb(model)
    for block in model.anatomy.blocks:  # restore the host class's forward
        del block.module.forward
    x = torch.randn(*SWIN3D.input_shape)
    out = tensors(model(x))[0]
    assert not out.requires_grad  # reentrant checkpoint of a no-grad input: graph cut


def test_video_defaults_follow_the_reference_code():
    swin = build_petl(SWIN3D, dict(type='BAPAT')).methods[0]
    mae = build_petl(VIDEOMAE, dict(type='BAPAT')).methods[0]
    assert (swin.input, swin.att_mid, swin.att_scale, swin.bottleneck) == ('mlp', 128, 0.8, 64)
    assert (mae.input, mae.att_mid) == ('residual', 32)
    mae_wrapper = build_petl(VIDEOMAE, dict(type='BAPAT'))
    patt = mae_wrapper.anatomy.blocks[0].module.petl_bapat_qkv
    assert patt.down.bias is None  # VideoMAE's qkv has no bias: neither has PATT
    assert build_petl(SWIN3D, dict(type='AdaptFormer')).methods[0].input == 'mlp'


def test_bapat_options_are_checked():
    with pytest.raises(ValueError, match=r"att_mode='kx'"):
        build_petl(SWIN3D, dict(type='BAPAT', att_mode='kx'))
    with pytest.raises(ValueError, match=r"input='norm'"):
        build_petl(SWIN3D, dict(type='AdaptFormer', input='norm'))
