"""SNF: the flow is invertible (numerically), identity at init, and the hooks compute exactly
``h' = F_attn(x) + A(norm1(x))``, ``y = F_mlp(h') + M(norm2(h'))`` on the host's own blocks.

The contract (test_contract.py) covers trainability, checkpoints and copies for every profile.
"""
import pytest
import torch

from conftest import build_petl
from test_param_counts import VIT_B
from tiny_backbones import TINY_BACKBONES
from vpetl_mm.methods.snf import PlanarFlow

VIT, TIMM_VIT = TINY_BACKBONES[0], TINY_BACKBONES[-1]  # width 32; 3 and 2 blocks
assert VIT.profile == 'mmpretrain.VisionTransformer' and TIMM_VIT.profile.startswith('timm')


def _random_flow(dim=8, length=4, seed=0, dtype=torch.float64, invertible=True):
    """A flow far from the identity, with w . u spread over (-1, 2)."""
    torch.manual_seed(seed)
    flow = PlanarFlow(dim, length, invertible=invertible).to(dtype)
    with torch.no_grad():
        flow.mu.normal_(std=0.5)
        flow.logsigma.normal_(std=0.3)
        flow.weight.normal_(std=0.6)
        flow.bias.normal_()
        for k, target in enumerate(torch.linspace(-0.9, 2., length)):
            w = flow.weight[k]
            u = torch.randn(dim, dtype=dtype)
            u -= (w @ u) / (w @ w) * w  # orthogonal to w, then w . u = target
            flow.scale[k] = u + target / (w @ w) * w
    return flow


def _manual_flow(flow, x):
    """The flow's definition, written out (no projection: only used where w . u > -1)."""
    z = flow.mu + flow.logsigma.exp() * x
    for w, b, u in zip(flow.weight, flow.bias, flow.scale):
        z = z + u * torch.tanh(z @ w + b).unsqueeze(-1)
    return z


def test_flow_matches_its_definition_and_is_invertible():
    flow = _random_flow()
    x = torch.randn(5, 7, 8, dtype=torch.float64) * 3
    with torch.no_grad():
        y = flow(x)
        torch.testing.assert_close(y, _manual_flow(flow, x))
        assert (y - x).abs().max() > 0.5  # far from the identity: the inverse has work to do
        torch.testing.assert_close(flow.inverse(y), x, rtol=0, atol=1e-10)
        y2 = torch.randn(4, 8, dtype=torch.float64) * 3  # and F(F^-1(y)) = y
        torch.testing.assert_close(flow(flow.inverse(y2)), y2, rtol=0, atol=1e-10)


def test_log_det_matches_autograd_jacobian():
    flow = _random_flow(dim=6, length=3, seed=1)
    xs = torch.randn(4, 6, dtype=torch.float64) * 2
    for x in xs:
        jac = torch.autograd.functional.jacobian(flow, x)
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign > 0  # orientation-preserving: a smooth bijection from the identity
        torch.testing.assert_close(flow.log_det(x), logabs)


def test_projection_keeps_a_folding_layer_invertible():
    dim = 5
    flow = PlanarFlow(dim, 1).double()
    with torch.no_grad():
        flow.weight.normal_()
        flow.bias.zero_()
        w = flow.weight[0]
        flow.scale[0] = -3 * w / (w @ w)  # w . u = -3: the raw layer folds the space
    # raw layer: f(a) = a - 3 tanh(a) along w is not monotone -> det J < 0 near a = 0
    raw = PlanarFlow(dim, 1, invertible=False).double()
    raw.load_state_dict(flow.state_dict())
    x0 = torch.zeros(dim, dtype=torch.float64)
    assert torch.linalg.det(torch.autograd.functional.jacobian(raw, x0)) < 0
    # projected: w . u_hat = -1 + 1e-3, det J >= 1e-3 everywhere, exact inverse
    u_hat = flow.scales()[0]
    torch.testing.assert_close(w @ u_hat, torch.tensor(-1 + 1e-3, dtype=torch.float64))
    x = torch.randn(50, dim, dtype=torch.float64) * 3
    with torch.no_grad():
        assert torch.isfinite(flow.log_det(x)).all()
        torch.testing.assert_close(flow.inverse(flow(x)), x, rtol=0, atol=1e-8)
    # inactive when the condition holds: u is used as is
    ok = _random_flow()
    torch.testing.assert_close(ok.scales(), ok.scale)


@pytest.mark.parametrize('tiny', [VIT, TIMM_VIT], ids=lambda t: t.profile)
def test_identity_at_init_and_not_with_the_release_init(tiny):
    x = torch.randn(2, 3, 32, 32)
    snf = build_petl(tiny, dict(type='SNF', scale_init=0.)).eval()
    assert snf.methods[0].ZERO_INIT
    assert build_petl(tiny, dict(type='SNF')).methods[0].scale_init == 0.01  # the release's
    assert not build_petl(tiny, dict(type='SNF')).methods[0].ZERO_INIT
    snf.init_weights()  # the host's init, then SNF's
    host = {k: v for k, v in snf.state_dict().items() if 'petl_' not in k}
    frozen = build_petl(tiny, dict(type='Frozen')).eval()
    frozen.load_state_dict(host)
    release = build_petl(tiny, dict(type='SNF', scale_init=0.01)).eval()
    release.load_state_dict(host, strict=False)
    with torch.no_grad():
        base = frozen(x)[-1]
        assert torch.equal(snf(x)[-1], base)  # exactly: every delta is 0
        assert not torch.allclose(release(x)[-1], base, atol=1e-6)


def _perturb(wrapper, seed=3):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in wrapper.named_parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.1 if 'scale' in name else 0.5))


def _branches(tiny, layer):
    """The host block's two residual branches A(norm1(.)) and M(norm2(.)) (eval mode)."""
    if tiny is VIT:  # mmpretrain: layer scale / drop-path inside attn; ffn adds its identity
        return (lambda x: layer.attn(layer.ln1(x)),
                lambda h: layer.ffn(layer.ln2(h), identity=torch.zeros_like(h)))
    return (lambda x: layer.drop_path1(layer.ls1(layer.attn(layer.norm1(x)))),
            lambda h: layer.drop_path2(layer.ls2(layer.mlp(layer.norm2(h)))))


@pytest.mark.parametrize('tiny', [VIT, TIMM_VIT], ids=lambda t: t.profile)
@pytest.mark.parametrize('shortcuts', [('attn', 'mlp'), ('attn', ), ('mlp', )])
def test_block_matches_manual_recomputation(tiny, shortcuts):
    wrapper = build_petl(tiny, dict(type='SNF', flow_length=3, shortcuts=shortcuts)).eval()
    _perturb(wrapper)
    blocks = [b.module for b in wrapper.anatomy.blocks]
    flows = blocks[1].petl_snf_shortcut
    for flow in (flows.attn, flows.mlp):
        if flow is not None:  # the projection is inactive here: the manual formula applies
            assert ((flow.weight * flow.scale).sum(-1) > -1).all()
            torch.testing.assert_close(flow.scales(), flow.scale)
    seen = {}
    hooks = [blocks[1].register_forward_pre_hook(
                 lambda m, a: seen.setdefault('x', a[0].clone()), prepend=True),
             blocks[1].register_forward_hook(lambda m, a, o: seen.setdefault('y', o.clone()))]
    with torch.no_grad():
        wrapper(torch.randn(2, 3, 32, 32))
        for hook in hooks:
            hook.remove()
        wrapper.methods[0].remove_hooks()  # the manual re-run calls the host's modules bare
        attn, mlp = _branches(tiny, blocks[1])
        x = seen['x']
        shortcut1 = _manual_flow(flows.attn, x) if flows.attn is not None else x
        h = shortcut1 + attn(x)
        shortcut2 = _manual_flow(flows.mlp, h) if flows.mlp is not None else h
        expected = shortcut2 + mlp(h)
        plain = blocks[1](x)
    torch.testing.assert_close(seen['y'], expected)
    assert (seen['y'] - plain).abs().max() > 1e-2  # the flows act


def test_only_flow_parameters_train_with_the_count_formula():
    length = 4
    wrapper = build_petl(VIT, dict(type='SNF', flow_length=length, scale_init=0.)).train()
    trainable = {n for n, p in wrapper.backbone.named_parameters() if p.requires_grad}
    assert trainable == {f'layers.{i}.petl_snf_shortcut.{s}.{p}' for i in range(3)
                         for s in ('attn', 'mlp')
                         for p in ('mu', 'logsigma', 'weight', 'bias', 'scale')}
    # blocks x shortcuts x (2C + K (2C + 1)), C = 32
    assert wrapper.num_trainable() == 3 * 2 * (64 + length * 65)
    one = build_petl(VIT, dict(type='SNF', flow_length=length, shortcuts='mlp'))
    assert one.num_trainable() == 3 * (64 + length * 65)
    # at step 0 (u = 0) the scales, mu and log-sigma get gradients; w and b start moving once
    # u != 0 (as LoRA's A behind a zero B)
    wrapper(torch.randn(2, 3, 32, 32))[-1].pow(2).mean().backward()
    flow = wrapper.backbone.layers[0].petl_snf_shortcut.attn
    assert flow.scale.grad.abs().sum() > 0 and flow.mu.grad.abs().sum() > 0
    assert flow.logsigma.grad.abs().sum() > 0
    assert flow.weight.grad.abs().sum() == 0
    assert all(p.grad is None for n, p in wrapper.backbone.named_parameters()
               if n not in trainable)


def test_low_precision_keeps_the_stream_dtype():
    wrapper = build_petl(VIT, dict(type='SNF')).eval()
    _perturb(wrapper)
    frozen = build_petl(VIT, dict(type='Frozen')).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out, base = wrapper(x)[-1], frozen(x)[-1]
    assert out.dtype == base.dtype


@pytest.mark.parametrize('length,count', [(0, 36_864), (16, 627_072)])
def test_vit_b_counts_of_the_paper_and_the_release(length, count):
    # K = 0 is the paper's "0.036M"; K = 16 is the release's default (the default K = 6,
    # 258,192, is in test_param_counts.py)
    assert build_petl(VIT_B, dict(type='SNF', flow_length=length)).num_trainable() == count


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match='flow_length=-1: use an int >= 0'):
        build_petl(VIT, dict(type='SNF', flow_length=-1))
    with pytest.raises(ValueError, match=r"shortcuts=\('attn', 'attn'\)"):
        build_petl(VIT, dict(type='SNF', shortcuts=('attn', 'attn')))
    with pytest.raises(ValueError, match="name each of \\('attn', 'mlp'\\)"):
        build_petl(VIT, dict(type='SNF', shortcuts=('qkv', )))
    with pytest.raises(ValueError, match='scale_init=-0.1 must be >= 0'):
        build_petl(VIT, dict(type='SNF', scale_init=-0.1))
    with pytest.raises(ValueError, match="SNF is not supported on 'mmpretrain.SwinTransformer'"):
        build_petl(TINY_BACKBONES[1], dict(type='SNF'))
