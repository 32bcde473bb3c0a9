"""The efficiency benchmark's parts, in process: the peer LoRA variants compute the same function
(so the comparison times implementations, not different models), the fused LoRA update equals
its definition, the target checks, and the ``TokenPool`` neck.

Examples:
    $ .venv/bin/python -m pytest tests/test_efficiency.py -q
"""
import os.path as osp

import pytest
import torch
from mmengine.registry import MODELS, DefaultScope

import vpetl_mm  # noqa: F401
from vpetl_mm.benchmark.efficiency import (PEERS, TARGETS, add_ratios, build_cfg, check_targets,
                                           parse_variant)
from vpetl_mm.methods.lora import LoRALinear
from vpetl_mm.models.token_pool import TokenPool

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TIMM_CFG = osp.join(REPO, 'configs', 'benchmark', 'timm-vit-b16_cls.py')
TINY_TIMM = {'model.backbone.backbone.embed_dim': 32, 'model.backbone.backbone.depth': 2,
             'model.backbone.backbone.num_heads': 2, 'model.backbone.backbone.img_size': 32,
             'model.backbone.backbone.patch_size': 8, 'model.head.in_channels': 32}


def _lora_weights(model):
    """(A, B) per qkv layer, whatever the library calls them, in block order."""
    named = dict(model.named_parameters())
    pairs = []
    for block in range(2):
        keys = sorted(k for k in named if f'blocks.{block}.' in k and 'lora' in k.lower())
        a = next(named[k] for k in keys if 'lora_a' in k.lower() or 'lora_down' in k)
        b = next(named[k] for k in keys if 'lora_b' in k.lower() or 'lora_up' in k)
        pairs.append((a, b))
    return pairs


def _host_weights(model):
    """The timm host's parameters by their timm name (peft and mmpretrain rename the qkv)."""
    return {n[n.index('timm_model.'):].replace('.base_layer', '').replace('.original_layer', '')
            : p for n, p in model.named_parameters() if 'timm_model.' in n and 'lora' not in n}


def test_peer_lora_variants_compute_the_same_function():
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # not left behind for later tests
        _check_peer_lora_variants()


def _check_peer_lora_variants():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    models, outputs = {}, {}
    for variant in PEERS:
        cfg = build_cfg(TIMM_CFG, variant, TINY_TIMM, 32, False)
        torch.manual_seed(0)  # the same host weights for every variant
        model = models[variant] = MODELS.build(cfg.model)
        model.init_weights()
        model.eval()
        trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
        assert trainable and all('lora' in n.lower() for n in trainable), (variant, trainable)
        assert sum(p.numel() for p in model.backbone.parameters() if p.requires_grad) == \
            2 * 8 * (32 + 96)  # rank 8 on both fused qkv layers
    # Give every variant the same non-zero update (B starts at zero everywhere).
    reference = _lora_weights(models['vpetl_mm-LoRA'])
    with torch.no_grad():
        for a, b in reference:
            b.normal_()
        host = _host_weights(models['vpetl_mm-LoRA'])
        for variant, model in models.items():
            # Hosts are re-initialised by mmengine's init_weights (timm's own init_weights) at
            # different points of the random stream: give every variant the same host and head.
            theirs = _host_weights(model)
            assert theirs.keys() == host.keys(), variant
            for name, param in theirs.items():
                param.copy_(host[name])
            model.head.load_state_dict(models['vpetl_mm-LoRA'].head.state_dict())
            for (a, b), (ra, rb) in zip(_lora_weights(model), reference, strict=True):
                a.copy_(ra.view_as(a))
                b.copy_(rb.view_as(b))
            outputs[variant] = model(x, mode='tensor')
    frozen = build_cfg(TIMM_CFG, 'Frozen', TINY_TIMM, 32, False)
    torch.manual_seed(0)
    plain = MODELS.build(frozen.model)
    plain.init_weights()
    plain.eval()
    with torch.no_grad():
        for name, param in _host_weights(plain).items():
            param.copy_(host[name])
    plain.head.load_state_dict(models['vpetl_mm-LoRA'].head.state_dict())
    base = plain(x, mode='tensor')
    ref = outputs['vpetl_mm-LoRA']
    assert not torch.allclose(ref, base, atol=1e-4)  # the update is live
    for variant, out in outputs.items():
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5, msg=variant)


@pytest.mark.parametrize('parts,slices', [(1, (0, )), (3, (0, 2)), (3, (1, )), (3, (0, 1, 2))])
def test_fused_lora_update_equals_its_definition(parts, slices):
    torch.manual_seed(0)
    base = torch.nn.Linear(12, 18)
    lora = LoRALinear(base, rank=2, alpha=4., dropout=0., parts=parts, slices=slices)
    torch.nn.init.normal_(lora.lora_B)
    x = torch.randn(3, 5, 12, requires_grad=True)
    # The definition: slice i of the output gets scale * B_i A_i x, the other slices nothing.
    want = base(x).unflatten(-1, (parts, 18 // parts)).clone()
    for i, part in enumerate(slices):
        a = lora.lora_A[i * 2:(i + 1) * 2]
        want[..., part, :] += lora.scale * x @ a.t() @ lora.lora_B[i].t()
    base.register_forward_hook(lora.hook)
    got = base(x)
    torch.testing.assert_close(got, want.flatten(-2))
    torch.testing.assert_close(lora.delta(x), got - torch.nn.functional.linear(
        x, base.weight, base.bias))
    got.square().sum().backward()
    assert lora.lora_A.grad.abs().sum() > 0 and lora.lora_B.grad.abs().sum() > 0
    with torch.no_grad():  # merged: the host alone gives the same output
        lora.merge(base)
        lora.merged = True
        torch.testing.assert_close(base(x), got, rtol=1e-5, atol=1e-5)


def test_check_targets_pass_fail_skip():
    def rec(time_ms, accounted_mb=None, peak_mb=None, device='cpu'):
        return dict(time_ms=time_ms, accounted_mb=accounted_mb, peak_mb=peak_mb, device=device)

    # On the CPU the memory targets read the accounted memory, not the noisy resident peak.
    train = {'Full': rec(100., 1000., 900.), 'Frozen': rec(40., 400., 900.),
             'LoRA': rec(70., 800., 100.), 'LST': rec(40., 450., 900.),
             'E3VA': dict(error='worker failed'), 'vpetl_mm-LoRA': rec(60.),
             'peft-LoRA': rec(59.), 'mmpretrain-LoRAModel': rec(80.)}
    add_ratios(train)
    assert train['LoRA']['acc_vs_full'] == 0.8 and train['LoRA']['mem_vs_full'] == 100 / 900
    infer = {'LoRA': dict(unmerged_vs_plain=1.04, merged_vs_plain=1.03)}
    status = {t['target']: (t['status'], t['ratio']) for t in check_targets(train, infer)}
    assert status['LoRA time/iter <= 0.75x Full'] == ('PASS', 0.7)
    assert status['LoRA peak memory <= 0.75x Full'] == ('FAIL', 0.8)
    assert status['LST time/iter <= 0.45x Full'] == ('PASS', 0.4)
    assert status['E3VA time/iter <= 0.45x Full'][0] == 'SKIP'  # failed, not measured
    assert status['Adapter time/iter <= 0.75x Full'][0] == 'SKIP'
    assert status['LoRA merged inference <= 1.02x plain host time'][0] == 'FAIL'
    assert status['LoRA unmerged inference <= 1.05x plain host time'][0] == 'PASS'
    assert status['vpetl_mm-LoRA time/iter <= peft-LoRA'][0] == 'FAIL'
    assert status['vpetl_mm-LoRA time/iter <= mmpretrain-LoRAModel'][0] == 'PASS'
    assert len(status) == len(TARGETS)
    # An interleaved run (one process) takes precedence for the time targets it covers.
    steps = dict(time_ms={'vpetl_mm-LoRA': 50., 'peft-LoRA': 55., 'Full': 100., 'LoRA': 80.})
    status = {t['target']: (t['status'], t['ratio']) for t in check_targets(train, infer, steps)}
    assert status['vpetl_mm-LoRA time/iter <= peft-LoRA'][0] == 'PASS'
    assert status['LoRA time/iter <= 0.75x Full'] == ('FAIL', 0.8)
    assert status['LST time/iter <= 0.45x Full'] == ('PASS', 0.4)  # not interleaved: workers
    # On a GPU the CUDA peak is exact: the targets read it.
    gpu = {'Full': rec(1., 1000., 900., 'cuda'), 'LoRA': rec(1., 100., 450., 'cuda')}
    add_ratios(gpu)
    status = {t['target']: (t['status'], t['ratio']) for t in check_targets(gpu)}
    assert status['LoRA peak memory <= 0.75x Full'] == ('PASS', 0.5)


def test_parse_variant():
    assert parse_variant('VPT') == dict(type='VPT')
    assert parse_variant('VPT:length=10,deep=True') == dict(type='VPT', length=10, deep=True)
    assert parse_variant('LoRA:targets=qkv') == dict(type='LoRA', targets='qkv')
    with pytest.raises(ValueError, match='NAME:key=value'):
        parse_variant('VPT:length')


def test_token_pool():
    x = torch.arange(24.).view(1, 4, 6)
    cls, = TokenPool('cls')((x, ))
    avg, = TokenPool('avg', num_prefix_tokens=1)(x)
    torch.testing.assert_close(cls, x[:, 0])
    torch.testing.assert_close(avg, x[:, 1:].mean(1))
    maps = torch.randn(2, 3, 4, 5)
    out, = TokenPool('avg')([maps])  # mmdet backbones return lists
    torch.testing.assert_close(out, maps.mean((2, 3)))
    with pytest.raises(ValueError, match="need mode='avg'"):
        TokenPool()(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="'cls' or 'avg'"):
        TokenPool('max')


def test_ssf_keeps_its_output_for_backward():
    """SSF's scale gradient reads x = (y - shift) / scale from the kept output: exact gradients,
    and no extra activation (y is what the next operation keeps anyway)."""
    from vpetl_mm.methods.ssf import ScaleShift, _ScaleShiftFn
    torch.manual_seed(0)
    args = (torch.randn(3, 4, 6, dtype=torch.double, requires_grad=True),
            (1 + 0.02 * torch.randn(6, dtype=torch.double)).requires_grad_(),
            (0.02 * torch.randn(6, dtype=torch.double)).requires_grad_())
    assert torch.autograd.gradcheck(_ScaleShiftFn.apply, args)
    x, scale, shift = args
    ref = torch.autograd.grad((x * scale + shift).sin().sum(), args)
    got = torch.autograd.grad(_ScaleShiftFn.apply(x, scale, shift).sin().sum(), args)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b)
    layer = ScaleShift(6, channel_axis=1)  # conv layout: channels on axis 1
    maps = torch.randn(2, 6, 3, 3, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = layer.hook(None, (maps, ), maps)
    assert any(t.untyped_storage().data_ptr() == y.untyped_storage().data_ptr() for t in saved)
    assert all(t.untyped_storage().data_ptr() != maps.untyped_storage().data_ptr()
               for t in saved)
    y.sum().backward()
    torch.testing.assert_close(layer.scale.grad, maps.detach().sum((0, 2, 3)))


def test_ssf_after_a_norm_folds_into_its_affine():
    """After a LayerNorm SSF is the norm with ``w * scale``, ``b * scale + shift``: the same
    function and gradients as scaling the output, keeping only the norm's input (and its
    per-token statistics) for backward, as the frozen norm alone does."""
    from vpetl_mm.methods.ssf import ScaleShift
    torch.manual_seed(0)
    norm = torch.nn.LayerNorm(6).double()
    torch.nn.init.normal_(norm.weight, 1., 0.1)
    torch.nn.init.normal_(norm.bias, 0., 0.1)
    norm.requires_grad_(False)  # frozen host norm
    layer = ScaleShift(6, channel_axis=-1).double()
    x = torch.randn(2, 5, 6, dtype=torch.double, requires_grad=True)
    ref = norm(x) * layer.scale + layer.shift
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = layer.norm_hook(norm, (x, ), norm(x))
    torch.testing.assert_close(y, ref)
    big = [t for t in saved if t.numel() >= x.numel()]
    assert big and all(t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
                       for t in big), [t.shape for t in big]
    params = (x, layer.scale, layer.shift)
    grads = torch.autograd.grad(y.sin().sum(), params)
    for got, want in zip(grads, torch.autograd.grad(ref.sin().sum(), params), strict=True):
        torch.testing.assert_close(got, want)
    layer.merged = True  # folded into the norm: the host output passes through
    out = norm(x)
    assert layer.norm_hook(norm, (x, ), out) is out


def test_interleaved_table_ratios_to_full_and_frozen():
    from vpetl_mm.benchmark.efficiency import interleaved_markdown
    rows = interleaved_markdown(dict(time_ms={'Full': 10., 'Frozen': 2., 'LoRA': 6.}))
    assert '| Variant | ms/iter | Time / Full | Time / Frozen |' in rows
    assert '| LoRA | 6.0 | 0.600 | 3.000 |' in rows
    # Without the baselines the first variant is the reference.
    assert '| b | 5.0 | 0.500 |' in interleaved_markdown(dict(time_ms={'a': 10., 'b': 5.}))
