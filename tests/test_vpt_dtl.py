"""VPT and DTL against a manual re-computation on the host's own blocks.

The contract (test_contract.py) covers trainability, checkpoints and copies; here the hooks are
checked to compute exactly the method's definition: prompts after the CLS token (carried or
replaced per block), never visible in the host's outputs, and DTL's swish-gated side path.
"""
import pytest
import torch

from conftest import build_petl
from tiny_backbones import TINY_BACKBONES

VIT = TINY_BACKBONES[0]  # mmpretrain ViT: width 32, 3 blocks, 1 CLS token, 4 x 4 patches


def _block_input(wrapper, x):
    """The host's tokens entering block 0 (after patch / position embedding, CLS first)."""
    host = wrapper.backbone
    captured = {}
    handle = host.layers[0].register_forward_pre_hook(
        lambda m, a: captured.setdefault('x', a[0].clone()), prepend=True)
    try:
        wrapper(x)
    finally:
        handle.remove()
    return captured['x']


def _run_blocks(wrapper, tokens, between):
    """The host's blocks without any PETL hook; ``between(i, t)`` edits tokens before block i."""
    host = wrapper.backbone
    wrapper.methods[0].remove_hooks()
    for i, layer in enumerate(host.layers):
        tokens = layer(between(i, tokens))
    return host.ln1(tokens)


@pytest.mark.parametrize('deep', [False, True])
def test_vpt_is_prompt_tokens_after_cls(deep):
    length = 3
    wrapper = build_petl(VIT, dict(type='VPT', length=length, deep=deep)).eval()
    prompts = wrapper.backbone.layers[0].petl_vpt_tokens.prompts
    assert prompts.shape == ((3 if deep else 1), length, 32)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = wrapper(x)[0]
        x0 = _block_input(wrapper, x)

        def between(i, t):
            if i == 0:
                return torch.cat((t[:, :1], prompts[0].expand(2, -1, -1), t[:, 1:]), dim=1)
            if deep:  # the previous layer's prompt outputs are replaced
                return torch.cat((t[:, :1], prompts[i].expand(2, -1, -1), t[:, 1 + length:]), 1)
            return t  # shallow: the prompts travel on

        expected = _run_blocks(wrapper, x0, between)[:, 0]
    assert x0.shape[1] == 1 + 16  # the hooks leave the host's own sequence untouched
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize('host_opts,shape', [
    (dict(out_type='featmap', out_indices=(1, 2)), (2, 32, 4, 4)),  # grid reshape per index
    (dict(out_type='avg_featmap', with_cls_token=False), (2, 32)),  # no CLS: prompts lead
])
def test_vpt_prompts_never_reach_host_outputs(host_opts, shape):
    wrapper = build_petl(VIT, dict(type='VPT', length=5, deep=True), **host_opts).eval()
    with torch.no_grad():
        outs = wrapper(torch.randn(2, 3, 32, 32))
    assert all(o.shape == shape for o in outs)
    # the prompts act: the output differs from the frozen host's
    frozen = build_petl(VIT, dict(type='Frozen'), **host_opts).eval()
    with torch.no_grad():
        assert not torch.allclose(outs[-1], frozen(torch.randn(2, 3, 32, 32))[-1])


def test_vpt_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match='length >= 1'):
        build_petl(VIT, dict(type='VPT', length=0))
    with pytest.raises(ValueError, match="VPT is not supported on 'mmpretrain.SwinTransformer'"):
        build_petl(TINY_BACKBONES[1], dict(type='VPT'))


def test_dtl_side_path_matches_its_definition():
    wrapper = build_petl(VIT, dict(type='DTL', rank=2, lora_before_blocks='0-2',
                                   add_after_blocks=[1, 2], beta=5.)).eval()
    side = wrapper.backbone.layers[0].petl_dtl_side
    assert sum(p.numel() for p in side.parameters()) == 3 * 2 * 32 * 2
    with torch.no_grad():
        for up in side.up:
            up.normal_(std=0.3)  # zero-init otherwise: make the path visible
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = wrapper(x)[0]
        tokens = _block_input(wrapper, x)
        wrapper.methods[0].remove_hooks()
        r = 0.
        for i, layer in enumerate(wrapper.backbone.layers):
            r = r + tokens @ side.down[i].t() @ side.up[i].t()  # from the block's input
            tokens = layer(tokens)
            if i in (1, 2):
                tokens = tokens + r * torch.sigmoid(5. * r)
        expected = wrapper.backbone.ln1(tokens)[:, 0]
    torch.testing.assert_close(out, expected)


def test_dtl_block_ranges_are_checked():
    with pytest.raises(ValueError, match='must name blocks among 0..2'):
        build_petl(VIT, dict(type='DTL', add_after_blocks='2-5'))
    with pytest.raises(ValueError, match='start before the side path'):
        build_petl(VIT, dict(type='DTL', lora_before_blocks='1-2', add_after_blocks='0-2'))


def test_dtl_pool_mean_is_the_final_norm_of_the_mean_patch_token():
    """DTL's head input (heekhero/DTL models/vision_transformer.py): norm(mean(patches))."""
    wrapper = build_petl(VIT, dict(type='DTL', pool='mean')).eval()
    assert not wrapper.methods[0].ZERO_INIT  # the output is not the host's at step 0
    assert build_petl(VIT, dict(type='DTL')).methods[0].ZERO_INIT
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = wrapper(x)[0]
        tokens = _block_input(wrapper, x)
        wrapper.methods[0].remove_hooks()
        for layer in wrapper.backbone.layers:
            tokens = layer(tokens)  # the side path is zero at step 0
        expected = wrapper.backbone.ln1(tokens[:, 1:].mean(dim=1))
    assert out.shape == (2, 32)
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="final_norm=True"):
        build_petl(VIT, dict(type='DTL', pool='mean'), final_norm=False)
    with pytest.raises(ValueError, match="pool='max': use 'host'"):
        build_petl(VIT, dict(type='DTL', pool='max'))


def test_vpt_init_bounds():
    """VPT-deep: VPT's xavier bound sqrt(6 / (3 p^2 + D)); shallow: V-PETL's sqrt(6 / D)."""
    deep = build_petl(VIT, dict(type='VPT', length=200, deep=True)).methods[0]
    tokens = deep.injected[0].module
    assert tokens.bound == pytest.approx((6. / (3 * 8 * 8 + 32)) ** 0.5)  # 8 x 8 patches
    assert tokens.prompts.abs().max() <= tokens.bound
    assert tokens.prompts.abs().max() > 0.9 * tokens.bound  # uniform over the whole range
    shallow = build_petl(VIT, dict(type='VPT')).methods[0].injected[0].module
    assert shallow.bound == pytest.approx((6. / 32) ** 0.5)
    assert build_petl(VIT, dict(type='VPT', init='vpt')).methods[0].injected[0].module.bound \
        == tokens.bound
    with pytest.raises(ValueError, match="init='xavier': use 'vpt'"):
        build_petl(VIT, dict(type='VPT', init='xavier'))
