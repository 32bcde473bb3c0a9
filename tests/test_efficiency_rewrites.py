"""The efficiency rewrites compute the same function as the forms they replace.

Mona's five convolution kernels per module became two (one composed depthwise 7x7 and one
``W + I`` projection); these tests put the release's form back (the three convolutions and
two skips written out) on the same model and compare outputs and every gradient, and check
that checkpoints keep the release's keys and that the composed form really runs one
convolution. LoRand applies its factors to the tokens instead of synthesising its weights;
the synthesised form is checked the same way.
"""
import pytest
import torch
import torch.nn.functional as F

from conftest import build_petl
from tiny_backbones import TINY_BACKBONES
from vpetl_mm.benchmark.efficiency.opcount import OpCounter
from vpetl_mm.methods.mona import MonaModule, MonaOp

TINY = {t.profile: t for t in TINY_BACKBONES}


def release_delta(self, x, grid, index):
    """Mona's branch as the release computes it: three depthwise convolutions averaged with a
    skip, then the 1x1 projector with a skip (prefix tokens: the projector only)."""
    op = self.adapter_conv
    p = self.project1(self.norm(x) * self.gamma + x * self.gammax)
    prefix, maps = grid.split(p, index)
    if prefix is not None:
        prefix = prefix + F.linear(prefix, op.projector.weight.flatten(1), op.projector.bias)
    a = (op.conv1(maps) + op.conv2(maps) + op.conv3(maps)) / 3. + maps
    p = grid.join(prefix, a + op.projector(a), like=p)
    return self.project2(self.dropout(F.gelu(p)))


def _output_and_grads(wrapper, x):
    wrapper.zero_grad()
    out = wrapper(x)
    out = out[-1] if isinstance(out, (tuple, list)) else out
    out.pow(2).mean().backward()
    return out.detach(), {n: p.grad.clone() for n, p in wrapper.named_parameters()
                          if p.requires_grad}


@pytest.mark.parametrize('profile', ['mmdet.SwinTransformer', 'mmpretrain.VisionTransformer'])
def test_mona_composed_kernels_match_release_form(profile, monkeypatch):
    tiny = TINY[profile]  # the ViT has a CLS token: the prefix path is covered too
    wrapper = build_petl(tiny, dict(type='Mona', bottleneck=8, dropout=0.)).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # off the init, so every tensor (gamma too) matters
        for p in wrapper.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    x = torch.randn(*tiny.input_shape, generator=gen)
    out, grads = _output_and_grads(wrapper, x)
    monkeypatch.setattr(MonaModule, 'delta', release_delta)
    ref_out, ref_grads = _output_and_grads(wrapper, x)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    assert grads.keys() == ref_grads.keys() and any('conv1' in n for n in grads)
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-4, atol=1e-5,
                                   msg=lambda m, n=name: f'{n}: {m}')


def test_mona_op_keeps_release_keys_and_runs_one_convolution_per_stage():
    op = MonaOp(4)
    assert sorted(op.state_dict()) == sorted(
        f'{c}.{t}' for c in ('conv1', 'conv2', 'conv3', 'projector') for t in ('weight', 'bias'))
    maps = torch.randn(2, 4, 5, 6)
    with OpCounter() as counter:
        out = op(maps)
    assert counter.counts['aten.convolution'] == 2  # composed depthwise 7x7, then the 1x1
    a = (op.conv1(maps) + op.conv2(maps) + op.conv3(maps)) / 3. + maps
    torch.testing.assert_close(out, a + op.projector(a))


def test_lorand_factored_forward_matches_synthesised_weights():
    """LoRand applies its factors to the tokens; the paper synthesises W_down and W_up first:
    same output and same gradient for every factor."""
    from vpetl_mm.methods.lorand import LoRandModule
    torch.manual_seed(0)
    module = LoRandModule(dim=12, mid=6, branches=3, kernel=2)
    h = torch.randn(2, 5, 12)

    def synthesised():
        down = torch.einsum('acb,abk,akm->cm', module.down_p, module.kernel, module.down_q)
        up = torch.einsum('amb,abk,akc->mc', module.up_p, module.kernel, module.up_q)
        return h + F.gelu(h @ down + module.down_bias) @ up + module.up_bias

    results = []
    for forward in (module, lambda x: synthesised()):
        module.zero_grad()
        out = forward(h)
        out.pow(2).sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in module.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0])
    for grad, ref in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(grad, ref, rtol=1e-4, atol=1e-5)
