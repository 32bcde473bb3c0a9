"""The method contract, checked for every registered method on every profiled backbone.

New methods and new profiles are picked up automatically: the matrix iterates the
``PETL_METHODS`` registry and ``tests/tiny_backbones.py``. A method only needs an entry in
``TINY_HPARAMS`` if its defaults are too large for the tiny backbones, and one in
``EXPECTED_TRAINABLE`` if it trains host parameters (injection methods are checked against
"exactly the injected modules train").
"""
import copy

import pytest
import torch
import torch.nn as nn

from conftest import build_host, build_petl, run
from tiny_backbones import TINY_BACKBONES
from vpetl_mm.registry import PETL_METHODS

METHODS = sorted({cls.__name__: cls for cls in PETL_METHODS.module_dict.values()}.items())
TINY_HPARAMS = dict(LoRA=dict(rank=4), Adapter=dict(bottleneck=4), AdaptFormer=dict(bottleneck=4),
                   Mona=dict(bottleneck=8), LoRand=dict(mid=8, kernel=2), E3VA=dict(rank=4),
                   BAPAT=dict(bottleneck=4, att_mid=4), PrefixTuning=dict(length=2, mid=4),
                   RepAdapter=dict(hidden=4), FacT=dict(rank=4), VPT=dict(length=4),
                   SCT=dict(channels=8), UTuning=dict(length=2, bottleneck=4),
                   NOAH=dict(vpt=2, lora=2, adapter=2), LAST=dict(rank=4),
                   HST=dict(dims=(8, ), heads=(2, )))
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


def _norm_param_names(wrapper):
    return {f'{p}.{n}' if p else n for p, m in wrapper.backbone.named_modules()
            if isinstance(m, _NORMS) for n, _ in m.named_parameters(recurse=False)}


# method -> the set of host-relative parameter names that must train, given the wrapper
EXPECTED_TRAINABLE = dict(
    Full=lambda w: {n for n, _ in w.backbone.named_parameters()},
    Frozen=lambda w: set(),
    BitFit=lambda w: {n for n, _ in w.backbone.named_parameters() if 'bias' in n.split('.')[-1]},
    LNTune=_norm_param_names,
    Partial=lambda w: {n for n, _ in w.backbone.named_parameters()
                       if n.startswith(w.anatomy.blocks[-1].path + '.')},
    # its sparse entries, and the bias of every linear / conv layer (not the norms)
    GPS=lambda w: _injected_only(w) | {
        f'{p}.bias' for p, m in w.backbone.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)) and m.bias is not None
        and 'petl_' not in p},
    # its side network and meta tokens, and every block's two LayerNorms (HST's code)
    HST=lambda w: _injected_only(w) | {
        f'{w.anatomy.site_path(b, site)}.{n}' for b in w.anatomy.blocks
        for site in ('norm1', 'norm2') for n, _ in w.anatomy.site(b, site).named_parameters()},
)


def _injected_only(wrapper):
    return {f'{name}.{n}' for name, mod in wrapper.injected_modules().items()
            for n, _ in mod.named_parameters()}


def petl_cfg(name):
    return dict(type=name, **TINY_HPARAMS.get(name, {}))


CASES = [pytest.param(name, cls, tiny, id=f'{name}-{tiny.profile}')
         for name, cls in METHODS for tiny in TINY_BACKBONES if cls.supports(tiny.profile)]
UNSUPPORTED = [pytest.param(name, tiny, id=f'{name}-{tiny.profile}')
               for name, cls in METHODS for tiny in TINY_BACKBONES
               if not cls.supports(tiny.profile)]


@pytest.mark.parametrize('name,tiny', UNSUPPORTED)
def test_unsupported_profile_is_a_clear_error(name, tiny):
    with pytest.raises(ValueError, match=f'{name} is not supported on .{tiny.profile}. '):
        build_petl(tiny, petl_cfg(name))


@pytest.mark.parametrize('name,cls,tiny', CASES)
def test_exactly_intended_parameters_train(name, cls, tiny):
    wrapper = build_petl(tiny, petl_cfg(name))
    trainable = {n for n, p in wrapper.backbone.named_parameters() if p.requires_grad}
    expected = EXPECTED_TRAINABLE.get(name, _injected_only)(wrapper)
    assert trainable == expected
    assert wrapper.num_trainable() == sum(p.numel() for n, p in wrapper.backbone.named_parameters()
                                          if n in expected)
    if name != 'Frozen':
        assert trainable, f'{name} trains nothing on {tiny.profile}'


@pytest.mark.parametrize('name,cls,tiny', [c for c in CASES if c.values[1].ZERO_INIT])
def test_zero_init_keeps_base_output(name, cls, tiny):
    wrapper = build_petl(tiny, petl_cfg(name)).eval()
    wrapper.init_weights()
    host = build_host(tiny, seed=123)
    host.eval()  # some hosts' train() returns None, so no chaining
    petl_keys = {k for k in wrapper.state_dict() if '.petl_' in f'.{k}'}
    host.load_state_dict({k: v for k, v in wrapper.state_dict().items() if k not in petl_keys})
    with torch.no_grad():
        for a, b in zip(run(wrapper, tiny), run(host, tiny)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _perturb_trainable(wrapper, seed=7):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in wrapper.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)


@pytest.mark.parametrize('name,cls,tiny', CASES)
def test_adapter_only_checkpoint_round_trip(name, cls, tiny):
    trained = build_petl(tiny, petl_cfg(name)).eval()
    pretrained = {k: v.clone() for k, v in trained.state_dict().items()}  # the "pretrained file"
    _perturb_trainable(trained)
    frozen = trained.frozen_param_names()
    adapter_only = {k: v for k, v in trained.state_dict().items() if k not in frozen}
    assert not (set(adapter_only) & frozen)
    if name != 'Full':
        assert len(adapter_only) < len(pretrained)
    fresh = build_petl(tiny, petl_cfg(name), seed=99).eval()
    fresh.load_state_dict({k: v for k, v in pretrained.items() if k in frozen}, strict=False)
    fresh.load_state_dict(adapter_only, strict=False)
    with torch.no_grad():
        for a, b in zip(run(trained, tiny), run(fresh, tiny)):
            torch.testing.assert_close(a, b)
        for a, b in zip(run(trained, tiny), run(copy.deepcopy(trained), tiny)):  # EMA copies
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize('name,cls,tiny', [c for c in CASES if c.values[0] != 'Frozen'])
def test_deep_copy_runs_on_its_own_parameters(name, cls, tiny):
    # EMA hooks deep-copy the model: hooks must follow the copy, not the original's modules
    original = build_petl(tiny, petl_cfg(name)).eval()
    with torch.no_grad():
        before = run(original, tiny)
        ema = copy.deepcopy(original)
        _perturb_trainable(ema)
        reference = build_petl(tiny, petl_cfg(name)).eval()
        reference.load_state_dict(ema.state_dict())
        for a, b in zip(run(ema, tiny), run(reference, tiny)):
            torch.testing.assert_close(a, b)
        for a, b in zip(run(original, tiny), before):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize('name,cls,tiny', [c for c in CASES if c.values[1].MERGEABLE])
def test_merge_equals_unmerged(name, cls, tiny):
    wrapper = build_petl(tiny, petl_cfg(name)).eval()
    _perturb_trainable(wrapper)
    weights = {k: v.clone() for k, v in wrapper.state_dict().items()}
    with torch.no_grad():
        unmerged = run(wrapper, tiny)
        wrapper.merge()
        merged = run(wrapper, tiny)
        wrapper.unmerge()
        restored = run(wrapper, tiny)
    for a, b, c in zip(unmerged, merged, restored):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(c, a, rtol=1e-5, atol=1e-5)
    for key, value in wrapper.state_dict().items():
        torch.testing.assert_close(value, weights[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name,cls,tiny', [c for c in CASES if c.values[2].frozen_stages_key])
def test_host_train_and_frozen_stages_never_freeze_petl(name, cls, tiny):
    host_opts = {tiny.frozen_stages_key: 1}
    if cls.TRAINS_ALL:
        with pytest.raises(ValueError, match='frozen_stages'):
            build_petl(tiny, petl_cfg(name), **host_opts)
        return
    wrapper = build_petl(tiny, petl_cfg(name), **host_opts)
    for mode in (True, False, True):
        wrapper.train(mode)
        trainable = {n for n, p in wrapper.backbone.named_parameters() if p.requires_grad}
        assert trainable == wrapper.trainable_names
        assert all(m.training == mode for m in wrapper.injected_modules().values())


@pytest.mark.parametrize('name,cls,tiny', CASES)
def test_one_step_changes_only_trainable(name, cls, tiny):
    wrapper = build_petl(tiny, petl_cfg(name)).train()
    before = {n: p.detach().clone() for n, p in wrapper.named_parameters()}
    loss = sum(o.float().pow(2).mean() for o in run(wrapper, tiny))
    trainable = [p for p in wrapper.parameters() if p.requires_grad]
    if not trainable:
        assert not loss.requires_grad
        return
    loss.backward()
    torch.optim.SGD(trainable, lr=0.5).step()
    changed = {n for n, p in wrapper.named_parameters() if not torch.equal(p, before[n])}
    grads = {n for n, p in wrapper.named_parameters() if p.grad is not None}
    frozen = {n for n, p in wrapper.named_parameters() if not p.requires_grad}
    assert not (changed & frozen) and not (grads & frozen)
    assert changed, f'{name}: no trainable parameter changed after one step'
