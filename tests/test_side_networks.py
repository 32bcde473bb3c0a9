"""LST, LAST and HST: how the backbone runs, manual re-computation of each side network, LST's
pruned init from the loaded weights, output layouts and errors.

The contract (test_contract.py) covers trainability, zero-init, adapter-only checkpoints and
copies; here each side network is recomputed by hand (explicit softmax attention, the
method's recurrence written out) from the host's own block activations.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import build_host, build_petl, run
from tiny_backbones import TINY_BACKBONES, TinyBackbone
from vpetl_mm.methods.side import add_to_output

TINY = {t.profile: t for t in TINY_BACKBONES}
VIT = TINY['mmpretrain.VisionTransformer']  # width 32, 3 blocks, 2 heads, MLP 64, 4 x 4 patches
VIT4 = TinyBackbone(VIT.profile, VIT.scope, dict(VIT.cfg, arch=dict(
    embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)), VIT.input_shape)
VITS = ['mmpretrain.VisionTransformer', 'timm.VisionTransformer']
NO_GRAD = [dict(type='LST'), dict(type='LAST', rank=4)]


def _perturb(model, seed=3, scale=0.2):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * scale)


def _saved_bytes(model, tiny):
    """Bytes autograd keeps for backward during one forward pass, and the outputs."""
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        outputs = run(model, tiny)
    return total[0], outputs


def _taps(model, x, prepend=False):
    """The host's block-0 input and every block's output (as the host returns it)."""
    taps = {'out': []}
    blocks = [b.module for b in model.anatomy.blocks]
    handles = [blocks[0].register_forward_pre_hook(
        lambda m, a: taps.setdefault('embed', a[0].detach().clone()), prepend=True)]
    handles += [b.register_forward_hook(lambda m, a, o: taps['out'].append(o.detach().clone()),
                                        prepend=prepend) for b in blocks]
    try:
        output = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return output, taps


def _attention(q, k, v, heads):
    """Explicit softmax attention: q (B, N, C), k / v (B, M, C)."""
    B, N, C = q.shape
    q, k, v = (t.reshape(B, t.shape[1], heads, C // heads).transpose(1, 2) for t in (q, k, v))
    weights = (q @ k.transpose(-2, -1) / math.sqrt(C // heads)).softmax(dim=-1)
    return (weights @ v).transpose(1, 2).reshape(B, N, C)


def _ln(x, norm):
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


# -- the backbone's autograd -------------------------------------------------------------------
@pytest.mark.parametrize('profile', VITS)
@pytest.mark.parametrize('cfg', NO_GRAD, ids=lambda c: c['type'])
def test_no_gradient_and_no_saved_activation_in_the_backbone(profile, cfg):
    tiny = TINY[profile]
    model = build_petl(tiny, cfg).train()
    _perturb(model)
    block_outputs = []
    for block in model.anatomy.blocks:
        block.module.register_forward_hook(lambda m, a, out: block_outputs.append(out))
    saved, outputs = _saved_bytes(model, tiny)
    assert block_outputs and all(o.grad_fn is None and not o.requires_grad for o in block_outputs)
    assert all(o.requires_grad for o in outputs)  # the side network reaches the head
    sum(o.pow(2).mean() for o in outputs).backward()
    params = dict(model.backbone.named_parameters())
    assert all(p.grad is None and not p.requires_grad for n, p in params.items()
               if 'petl_' not in n)
    side = [p for n, p in params.items() if 'petl_' in n]
    assert side and all(p.grad is not None for p in side)
    assert sum(bool(p.grad.abs().sum() > 0) for p in side) >= 0.9 * len(side)
    # the same backbone with sequential adapters keeps its activations for backward
    adapter_saved, _ = _saved_bytes(build_petl(tiny, dict(type='Adapter', bottleneck=4)).train(),
                                    tiny)
    assert saved < 0.5 * adapter_saved, (saved, adapter_saved)


def test_hst_trains_through_the_backbone():
    # HST's meta tokens are trained through the frozen blocks (its released code), and it
    # trains the block norms: gradients reach them, never the other host weights
    model = build_petl(VIT, dict(type='HST', dims=(8, ), heads=(2, ))).train()
    sum(o.pow(2).mean() for o in run(model, VIT)).backward()
    params = dict(model.backbone.named_parameters())
    assert params['petl_hst_side.meta'].grad.abs().sum() > 0
    norms = {n for n in params if '.ln1.' in n or '.ln2.' in n}
    assert norms and all(params[n].grad is not None for n in norms)
    assert all(p.grad is None for n, p in params.items() if 'petl_' not in n and n not in norms)
    frozen_norms = build_petl(VIT, dict(type='HST', dims=(8, ), heads=(2, ), tune_norms=False))
    assert all('petl_' in n for n, p in frozen_norms.backbone.named_parameters()
               if p.requires_grad)


# -- LST -----------------------------------------------------------------------------------------
def _lst_reference(model, taps):
    """LST's side stream by hand: per-token ``up(norm(h))`` (B, L, D)."""
    ends = model.backbone.petl_lst_ends
    h = F.linear(taps['embed'], ends.down.weight, ends.down.bias)
    for index, block in enumerate(model.anatomy.blocks):
        rung = block.module.petl_lst_ladder
        mu = torch.sigmoid(rung.alpha / 0.1)
        h = mu * F.linear(taps['out'][index], rung.down.weight, rung.down.bias) + (1 - mu) * h
        side = rung.block
        q, k, v = F.linear(_ln(h, side.norm1), side.qkv.weight, side.qkv.bias).chunk(3, dim=-1)
        h = h + F.linear(_attention(q, k, v, side.heads), side.proj.weight, side.proj.bias)
        hidden = F.gelu(F.linear(_ln(h, side.norm2), side.fc1.weight, side.fc1.bias))
        h = h + F.linear(hidden, side.fc2.weight, side.fc2.bias)
    return F.linear(_ln(h, ends.norm), ends.up.weight, ends.up.bias)


@pytest.mark.parametrize('out_type', ['cls_token', 'avg_featmap', 'featmap', 'raw'])
def test_lst_is_the_ladder_side_stream_in_the_host_layout(out_type):
    model = build_petl(VIT, dict(type='LST'), out_type=out_type).eval()
    frozen = build_petl(VIT, dict(type='Frozen'), out_type=out_type).eval()  # same host weights
    _perturb(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        (out, ), taps = _taps(model, x)
        (host, ) = frozen(x)
        side = _lst_reference(model, taps)
    assert taps['embed'].shape[1] == 17 and len(taps['out']) == 3
    expected = dict(cls_token=side[:, 0], avg_featmap=side[:, 1:].mean(1), raw=side,
                    featmap=side[:, 1:].reshape(2, 4, 4, 32).permute(0, 3, 1, 2))[out_type]
    assert not torch.allclose(out, host)
    torch.testing.assert_close(out, host + expected, rtol=1e-4, atol=1e-5)


def test_lst_on_timm_adds_to_every_token():
    tiny = TINY['timm.VisionTransformer']
    model = build_petl(tiny, dict(type='LST', reduction=4)).eval()
    frozen = build_petl(tiny, dict(type='Frozen')).eval()
    _perturb(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        (out, ), taps = _taps(model, x)
        (host, ) = frozen(x)
        torch.testing.assert_close(out, host + _lst_reference(model, taps), rtol=1e-4,
                                   atol=1e-5)


def test_lst_prunes_the_weights_loaded_by_the_pretrained_init(tmp_path):
    """Side layers copy the L1-heaviest structure of the *loaded* checkpoint."""
    weights = build_host(VIT, seed=5).state_dict()
    stream, qk, v, hidden = [3, 7, 11, 20], [18, 25, 29, 30], [17, 21, 26, 31], \
        [1, 9, 14, 22, 35, 40, 51, 63]
    for i in range(3):
        p = f'layers.{i}.'
        qkv, proj = weights[p + 'attn.qkv.weight'], weights[p + 'attn.proj.weight']
        fc1, fc2 = weights[p + 'ffn.layers.0.0.weight'], weights[p + 'ffn.layers.1.weight']
        for w in (qkv, fc1):
            w[:, stream] *= 1000  # the stream channels read most ...
        for w in (proj, fc2):
            w[stream] *= 1000  # ... and written most
        qkv[qk] *= 100  # head 1's heaviest q dims, and the same k dims
        qkv[[32 + d for d in qk]] *= 100
        qkv[[64 + d for d in v]] *= 100  # its heaviest v dims and their proj columns
        proj[:, v] *= 100
        fc1[hidden] *= 100
        fc2[:, hidden] *= 100
    path = tmp_path / 'pretrained.pth'
    torch.save(dict(state_dict=weights), str(path))
    model = build_petl(VIT, dict(type='LST', heads=1),
                       init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    side = model.backbone.layers[2].petl_lst_ladder.block
    p, keep = 'layers.2.', torch.tensor(stream)
    qkv = weights[p + 'attn.qkv.weight']
    expected_qkv = torch.cat([qkv[qk], qkv[[32 + d for d in qk]], qkv[[64 + d for d in v]]])
    assert not torch.equal(side.qkv.weight, expected_qkv[:, keep])  # built on random weights
    model.init_weights()  # host init (the Pretrained load), then LST's
    assert side.heads == 1 and side.qkv.weight.shape == (12, 4)
    torch.testing.assert_close(side.qkv.weight, expected_qkv[:, keep], rtol=0, atol=0)
    bias = weights[p + 'attn.qkv.bias']
    torch.testing.assert_close(side.qkv.bias, torch.cat(
        [bias[qk], bias[[32 + d for d in qk]], bias[[64 + d for d in v]]]))
    torch.testing.assert_close(side.proj.weight, weights[p + 'attn.proj.weight'][keep][:, v])
    torch.testing.assert_close(side.proj.bias, weights[p + 'attn.proj.bias'][keep])
    torch.testing.assert_close(side.fc1.weight,
                               weights[p + 'ffn.layers.0.0.weight'][hidden][:, keep])
    torch.testing.assert_close(side.fc1.bias, weights[p + 'ffn.layers.0.0.bias'][hidden])
    torch.testing.assert_close(side.fc2.weight,
                               weights[p + 'ffn.layers.1.weight'][keep][:, hidden])
    torch.testing.assert_close(side.norm2.weight, weights[p + 'ln2.weight'][keep])
    torch.testing.assert_close(side.norm1.bias, weights[p + 'ln1.bias'][keep])
    # the projections and gates start as LST's: zero up-projection, gates at mu = 0.5
    assert not model.backbone.petl_lst_ends.up.weight.any()
    assert not model.backbone.layers[0].petl_lst_ladder.alpha.any()


# -- LAST --------------------------------------------------------------------------------------
@pytest.mark.parametrize('gap,depth', [(1, 1), (2, 2)])
def test_last_is_the_bias_corrected_lsa_recurrence(gap, depth):
    model = build_petl(VIT4, dict(type='LAST', rank=8, heads=2, gap=gap, depth=depth)).eval()
    frozen = build_petl(VIT4, dict(type='Frozen')).eval()
    _perturb(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        (out, ), taps = _taps(model, x)
        (host, ) = frozen(x)
        z = [taps['embed']] + [taps['out'][i] for i in range(gap - 1, 4, gap)]
        u = z[0]
        for i in range(1, len(z)):
            h = u + z[i]  # F_i(u_{i-1} + z_i), T LSA modules
            for lsa in model.anatomy.blocks[i * gap - 1].module.petl_last_lsa.layers:
                r = F.linear(_ln(h, lsa.norm), lsa.down.weight, lsa.down.bias)
                q, k, v = F.linear(r, lsa.qkv.weight, lsa.qkv.bias).chunk(3, dim=-1)
                h = h + F.linear(_attention(q, k, v, 2), lsa.up.weight, lsa.up.bias)
            u = h
        representation = u - sum(z[:-1])  # LAST's bias correction: z_m + the branches
    assert len(model.methods[0].side) == 4 // gap
    assert not torch.allclose(out, host)
    torch.testing.assert_close(out - host, (representation - z[-1])[:, 0], rtol=1e-3,
                               atol=1e-4)


# -- HST ---------------------------------------------------------------------------------------
def _hst_reference(side, image, registers, maps):
    """HST's side network by hand, in its own order (resize the D-wide maps, then bridge)."""
    x, per = image, len(registers) // len(side.stages)
    for s, stage in enumerate(side.stages):
        x, H, W = stage.embed(x)
        for j, block in enumerate(stage.blocks):
            i = s * per + j
            register = _ln(F.linear(registers[i], stage.bridge.weight, stage.bridge.bias),
                           stage.meta_norms[j])
            feature = F.interpolate(maps[i], size=(H, W), mode='bilinear', align_corners=False)
            feature = F.linear(feature.flatten(2).transpose(1, 2), stage.bridge.weight,
                               stage.bridge.bias)
            context = torch.cat([register, feature.mean(1, keepdim=True)], dim=1)
            q = F.linear(_ln(x, block.norm1), block.q.weight, block.q.bias)
            k = F.linear(context, block.k.weight, block.k.bias)
            v = F.linear(context, block.v.weight, block.v.bias)
            x = x + F.linear(_attention(q, k, v, block.heads), block.proj.weight, block.proj.bias)
            x = x + feature
            hidden = F.gelu(F.linear(_ln(x, block.norm2), block.fc1.weight, block.fc1.bias))
            x = x + F.linear(hidden, block.fc2.weight, block.fc2.bias)
        x = _ln(x, stage.norm)
        if s < len(side.stages) - 1:
            x = x.transpose(1, 2).reshape(x.shape[0], -1, H, W)
    bn = side.final_norm
    pooled = (x.mean(1) - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
    return F.linear(pooled, side.up.weight, side.up.bias)


def test_hst_meta_registers_bridges_and_side_network():
    model = build_petl(VIT4, dict(type='HST', dims=(8, 12), heads=(2, 3), meta=2)).eval()
    _perturb(model)
    side, host = model.backbone.petl_hst_side, model.backbone
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        (out, ), taps = _taps(model, x, prepend=True)  # block outputs before the meta strip
        registers = [o[:, :2] for o in taps['out']]
        maps = [o[:, 3:].transpose(1, 2).reshape(2, 32, 4, 4) for o in taps['out']]
        # the registers are the host blocks' answers to the meta tokens, which then leave
        model.methods[0].remove_hooks()
        tokens = taps['embed']
        for i, layer in enumerate(host.layers):
            y = layer(torch.cat([side.meta[i].expand(2, -1, -1), tokens], dim=1))
            torch.testing.assert_close(y[:, :2], registers[i])
            tokens = y[:, 2:]
        expected = host.ln1(tokens)[:, 0] + _hst_reference(side, x, registers, maps)
    assert taps['embed'].shape[1] == 17  # the host's own sequence: no meta token before block 0
    assert len(side.stages) == 2 and len(side.stages[1].blocks) == 2
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_hst_side_feature_reaches_every_output_layout():
    for out_type, shape in (('featmap', (2, 32, 4, 4)), ('avg_featmap', (2, 32))):
        model = build_petl(VIT, dict(type='HST', dims=(8, ), heads=(2, )),
                           out_type=out_type).eval()
        (out, ) = run(model, VIT)
        assert out.shape == shape
    tiny = TINY['timm.VisionTransformer']
    model = build_petl(tiny, dict(type='HST', dims=(8, 8), heads=(2, 2))).eval()
    assert run(model, tiny)[0].shape == (2, 17, 32)
    # a training batch of one (a dataset's last batch) uses the running statistics
    model.train()
    assert model(torch.randn(1, 3, 32, 32))[0].shape == (1, 17, 32)


def test_hst_head_side_hands_the_head_its_side_feature_alone():
    """head='side' (HST's models/vit_hsn.py): the head reads the BN side feature, no `up`."""
    model = build_petl(VIT4, dict(type='HST', dims=(8, 12), heads=(2, 3), head='side')).eval()
    _perturb(model)
    side = model.backbone.petl_hst_side
    assert not any('up' in n for n, _ in side.named_parameters())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        (out, ), taps = _taps(model, x, prepend=True)
        registers = [o[:, :1] for o in taps['out']]
        maps = [o[:, 2:].transpose(1, 2).reshape(2, 32, 4, 4) for o in taps['out']]
        side.up = torch.nn.Linear(12, 12)  # identity stand-in for the reference's projection
        torch.nn.init.eye_(side.up.weight)
        torch.nn.init.zeros_(side.up.bias)
        expected = _hst_reference(side, x, registers, maps)
    assert out.shape == (2, 12)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="head='mean': use 'host'"):
        build_petl(VIT4, dict(type='HST', dims=(8, 12), heads=(2, 3), head='mean'))


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize('cfg,match', [
    (dict(type='LST', reduction=5), 'reduction=5 must divide'),
    (dict(type='LST', heads=3), 'heads=3 must divide'),
    (dict(type='LAST', gap=2), 'gap=2 must divide the 3 blocks'),
    (dict(type='LAST', rank=6, heads=4), 'divisible by heads'),
    (dict(type='HST', dims=(8, 8), heads=(2, 2)), 'evenly over its 2 side stages'),
    (dict(type='HST', dims=(8, ), heads=(3, )), 'each dividing its width'),
])
def test_bad_options_are_clear_errors(cfg, match):
    with pytest.raises(ValueError, match=match):
        build_petl(VIT, cfg)


def test_cannot_combine_and_unknown_layouts_are_clear_errors():
    with pytest.raises(ValueError, match='without autograd'):
        build_petl(VIT, [dict(type='LST'), dict(type='LoRA', rank=2)])
    with pytest.raises(ValueError, match='trainable=.*cannot train'):
        build_petl(VIT, dict(type='LAST', rank=4), trainable=['pos_embed'])
    side = torch.zeros(2, 17, 32)
    with pytest.raises(ValueError, match="out_type=None"):
        add_to_output((torch.zeros(2, 32), ), side, 1, None, 'LST')
    with pytest.raises(ValueError, match='supports'):
        add_to_output(([torch.zeros(2, 32)], ), side, 1, 'cls_token', 'LST')
