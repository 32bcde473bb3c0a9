"""Mona and LoRand against independent re-statements of their definitions, and their counts."""
import pytest
import torch
import torch.nn.functional as F

from conftest import build_petl
from tiny_backbones import TINY_BACKBONES

TINY = {t.profile: t for t in TINY_BACKBONES}


def _perturb(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)


def reference_mona(m, x, hw):
    """The release's Mona forward on (B, H*W, C) tokens, written out."""
    B, N, _ = x.shape
    p = m.project1(F.layer_norm(x, x.shape[-1:], m.norm.weight, m.norm.bias) * m.gamma
                   + x * m.gammax)
    p = p.reshape(B, hw[0], hw[1], -1).permute(0, 3, 1, 2)
    op = m.adapter_conv
    a = (op.conv1(p) + op.conv2(p) + op.conv3(p)) / 3. + p
    a = a + op.projector(a)
    return x + m.project2(F.gelu(a.permute(0, 2, 3, 1).reshape(B, N, -1)))


@pytest.mark.parametrize('profile', ['mmdet.SwinTransformer', 'mmseg.SwinTransformer'])
def test_mona_matches_release_block_order(profile):
    wrapper = build_petl(TINY[profile], dict(type='Mona', bottleneck=8)).eval()
    _perturb(wrapper)
    block = wrapper.backbone.stages[1].blocks[1]  # a shifted-window block
    hw, x = (4, 4), torch.randn(2, 16, 32)
    with torch.no_grad():
        # release order: attention residual, Mona1, FFN residual, Mona2 (hooks bypassed)
        y = x + block.attn(block.norm1.forward(x), hw)
        y = reference_mona(block.petl_mona_attn, y, hw)
        y = block.ffn(block.norm2.forward(y), identity=y)
        expected = reference_mona(block.petl_mona_mlp, y, hw)
        torch.testing.assert_close(block(x, hw), expected)


def test_mona_on_vit_leaves_grid_to_patch_tokens():
    tiny = TINY['mmpretrain.VisionTransformer']
    wrapper = build_petl(tiny, dict(type='Mona', bottleneck=8)).eval()
    _perturb(wrapper)
    with torch.no_grad():
        wrapper(torch.randn(*tiny.input_shape))  # records the 4x4 patch grid
        layer, x = wrapper.backbone.layers[0], torch.randn(2, 17, 32)
        mona = layer.petl_mona_mlp
        out = mona.delta(x, wrapper.methods[0].grid, 0)
        # patch tokens: the spatial reference; the CLS token: 1x1 projector only
        torch.testing.assert_close(x[:, 1:] + out[:, 1:], reference_mona(mona, x[:, 1:], (4, 4)))
        cls = x[:, :1]
        p = mona.project1(mona.norm(cls) * mona.gamma + cls * mona.gammax)
        p = mona.adapter_conv.pointwise(p)
        torch.testing.assert_close(out[:, :1], mona.project2(F.gelu(p)))


def test_lorand_synthesis_and_forward():
    wrapper = build_petl(TINY['mmdet.SwinTransformer'],
                         dict(type='LoRand', mid=8, branches=3, kernel=2))
    module = wrapper.backbone.stages[0].blocks[0].petl_lorand_mlp
    down = sum(module.down_p[i] @ module.kernel[i] @ module.down_q[i] for i in range(3))
    up = sum(module.up_p[i] @ module.kernel[i] @ module.up_q[i] for i in range(3))
    synth_down, synth_up = module.weights()
    torch.testing.assert_close(synth_down, down)
    torch.testing.assert_close(synth_up, up)
    h = torch.randn(2, 5, 16)
    expected = h + F.gelu(h @ down + module.down_bias) @ up + module.up_bias
    torch.testing.assert_close(module(h), expected)
    C, m, a, b = 16, 8, 3, 2
    assert sum(p.numel() for p in module.parameters()) == a * (2 * C * b + b * b + 2 * b * m) + m + C
