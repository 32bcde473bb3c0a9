"""The method lifecycle (validate, plan, inject, init_weights, merge) and the shared helpers.

The contract matrix (test_contract.py) checks what every method does to a backbone; here the
stages themselves: validate stores nothing, root modules keep their checkpoint keys, the default
merge is idempotent and reversible, side networks release what they captured, the token and
attention helpers, and one name per class in the package.
"""
import ast
import copy
import math
import pathlib
from collections import Counter

import pytest
import torch

from conftest import build_host, build_petl, run
from tiny_backbones import TINY_BACKBONES
from vpetl_mm.methods.base import BasePETLMethod
from vpetl_mm.methods.layers import Bottleneck, attention
from vpetl_mm.methods.side import SideNetworkMethod
from vpetl_mm.models.anatomy import Anatomy
from vpetl_mm.models.profiles import find_profile
from vpetl_mm.models.tokens import insert_tokens, remove_tokens
from vpetl_mm.registry import PETL_METHODS

TINY = {t.profile: t for t in TINY_BACKBONES}
VIT = TINY['mmpretrain.VisionTransformer']
SWIN = TINY['mmdet.SwinTransformer']
# options that fit the 3-block, 32-wide tiny ViT (the defaults are sized for ViT-B)
SMALL = dict(SCT=dict(channels=8), NOAH=dict(vpt=2, lora=2, adapter=2),
             HST=dict(dims=(8, ), heads=(2, )))
METHODS = sorted({cls.__name__: cls for cls in PETL_METHODS.module_dict.values()}.items())


def _method(cls, anatomy):
    profile = anatomy.profile
    return PETL_METHODS.build(dict(type=cls, family=profile.family, profile=profile.name,
                                   **SMALL.get(cls.__name__, {})))


@pytest.mark.parametrize('name,cls,tiny', [
    pytest.param(n, c, t, id=f'{n}-{t.profile}') for n, c in METHODS for t in (VIT, SWIN)
    if c.supports(t.profile)])
def test_validate_stores_nothing(name, cls, tiny):
    host = build_host(tiny)
    anatomy = Anatomy(host, find_profile(host))
    method = _method(cls, anatomy)
    before, values = dict(vars(method)), copy.deepcopy(vars(method))
    keys = list(host.state_dict())
    method.validate(anatomy)
    assert vars(method).keys() == before.keys()
    assert all(vars(method)[k] is v for k, v in before.items())  # nothing rebound ...
    assert repr(vars(method)) == repr(values)  # ... or changed in place
    assert list(host.state_dict()) == keys and not method.injected
    method.plan(anatomy)  # the stages after it run on what plan stored
    method.inject(anatomy)
    assert method.injected or method.trainable_base_params(anatomy) or name == 'Frozen' \
        or method.TRAINS_ALL


def test_a_method_defining_check_is_refused():
    with pytest.raises(TypeError, match=r'split into validate\(\).*plan\(\)'):
        type('OldStyle', (BasePETLMethod, ), dict(check=lambda self, anatomy: None))


# keys written by adapter-only checkpoints before attach_root existed (3d710a9)
ROOT_KEYS = [('LST', VIT, {}, 'petl_lst_ends', 'petl_lst_ends.up.weight'),
             ('HST', VIT, SMALL['HST'], 'petl_hst_side', 'petl_hst_side.meta'),
             ('E3VA', SWIN, dict(rank=4), 'petl_e3va_norms', 'petl_e3va_norms.1.weight'),
             ('FacT', VIT, dict(rank=4), 'petl_fact_shared', 'petl_fact_shared.U.weight')]


@pytest.mark.parametrize('name,tiny,opts,attr,key', ROOT_KEYS, ids=[r[0] for r in ROOT_KEYS])
def test_root_modules_keep_their_checkpoint_keys(name, tiny, opts, attr, key):
    wrapper = build_petl(tiny, dict(type=name, **opts))
    (method, ) = wrapper.methods
    root = [inj for inj in method.injected if inj.path == '']
    assert [inj.name for inj in root] == [attr]
    assert wrapper.injected_modules()[attr] is getattr(wrapper.backbone, attr)
    state = wrapper.state_dict()
    assert key in state and all(p.requires_grad for p in root[0].module.parameters())
    old = {key: torch.full_like(state[key], 0.5)}
    result = wrapper.load_state_dict(old, strict=False)
    assert not result.unexpected_keys and torch.equal(wrapper.state_dict()[key], old[key])


def _perturb(wrapper):
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in wrapper.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)


@pytest.mark.parametrize('cfg', [dict(type='LoRA', rank=4), dict(type='SSF'),
                                 dict(type='GPS'), dict(type='Hydra'),
                                 dict(type='RepAdapter', hidden=4), dict(type='FacT', rank=4),
                                 dict(type='PrefixTuning', length=2, mid=4)],
                         ids=lambda c: c['type'])
def test_merge_twice_is_merge_once_and_unmerge_restores(cfg):
    wrapper = build_petl(VIT, cfg).eval()
    _perturb(wrapper)
    original = copy.deepcopy(wrapper.state_dict())
    with torch.no_grad():
        reference = run(wrapper, VIT)
        for method in wrapper.methods:
            method.merge()
        once = copy.deepcopy(wrapper.state_dict())
        for method in wrapper.methods:
            method.merge()
        assert all(torch.equal(v, once[k]) for k, v in wrapper.state_dict().items())
        for a, b in zip(run(wrapper, VIT), reference, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        for _ in range(2):
            for method in wrapper.methods:
                method.unmerge()
    for key, value in wrapper.state_dict().items():
        torch.testing.assert_close(value, original[key], rtol=1e-5, atol=1e-6)


def test_lora_folds_every_adapted_layer():
    wrapper = build_petl(VIT, dict(type='LoRA', rank=4, targets=['qkv.q', 'qkv.v', 'fc2']))
    (lora, ) = wrapper.methods
    hosts = [host for _, host in lora._folds]
    expected = [wrapper.anatomy.site(b, s) for b in wrapper.anatomy.blocks for s in ('qkv', 'fc2')]
    assert len(hosts) == len(expected) and all(a is b for a, b in zip(hosts, expected))
    assert [layer for layer, _ in lora._folds] == [inj.module for inj in lora.injected]


def test_merge_of_a_method_that_cannot_merge_is_a_type_error():
    (adapter, ) = build_petl(VIT, dict(type='Adapter', bottleneck=4)).methods
    for call in (adapter.merge, adapter.unmerge):
        with pytest.raises(TypeError, match='cannot be merged'):
            call()

    class Unwired(BasePETLMethod):  # claims to merge, but wired nothing the default can fold
        MERGEABLE = True

        def inject(self, anatomy):
            self.attach(anatomy.blocks[0], 'mlp', Bottleneck(anatomy.blocks[0].dim, 2))

    method = Unwired()
    host = build_host(VIT)
    method.inject(Anatomy(host, find_profile(host)))
    with pytest.raises(NotImplementedError, match='override merge'):
        method.merge()


def test_modules_are_built_in_their_initial_state():
    """No init inside inject: LST's and E3VA's modules start as their init_weights leaves them
    (LST's pruning, which reads the loaded host weights, is init_weights' alone)."""
    lst = build_petl(VIT, dict(type='LST')).methods[0]
    assert not lst.ends.up.weight.any() and not any(r.alpha.any() for r in lst.rungs)
    e3va = build_petl(SWIN, dict(type='E3VA', rank=4)).methods[0]
    assert all(not n.weight.any() and not n.bias.any() for n in e3va.norms.values())
    adapters = [inj.module for inj in e3va.injected if inj.path]
    assert adapters and all(a.up.weight.abs().sum() > 0 for a in adapters)


def _captured(method):
    """What a side network holds from a forward: tensors and non-empty containers."""
    state = getattr(method, 'state', None)
    held = [method.taps.embed, method.taps.outputs] if method.taps is not None else []
    held += [getattr(method, attr, None) for attr in ('image', 'registers', 'maps')]
    held += [state.h, state.stages] if state is not None else []
    return [h for h in held if h is not None and (not isinstance(h, dict) or h)]


@pytest.mark.parametrize('cfg,tiny', [(dict(type='LST'), VIT), (dict(type='LAST', rank=4), VIT),
                                      (dict(type='HST', **SMALL['HST']), VIT),
                                      (dict(type='E3VA', rank=4), SWIN)],
                         ids=['LST', 'LAST', 'HST', 'E3VA'])
def test_side_networks_release_what_they_captured(cfg, tiny):
    wrapper = build_petl(tiny, cfg).train()
    (method, ) = wrapper.methods
    assert isinstance(method, SideNetworkMethod)
    with method.forward_context():
        assert torch.is_grad_enabled() != method.DETACHES_BACKBONE
    during = []
    wrapper.anatomy.blocks[-1].module.register_forward_hook(
        lambda *_: during.append(len(_captured(method))))
    outputs = run(wrapper, tiny)
    assert during[0] > 0 and all(o.requires_grad for o in outputs)
    assert _captured(method) == []  # the references went with the forward


def test_token_helpers_round_trip():
    x, tokens = torch.randn(2, 7, 4), torch.randn(2, 3, 4)
    for at in (0, 1, 7):
        joined = insert_tokens(x, tokens, at)
        assert joined.shape == (2, 10, 4)
        taken, rest = remove_tokens(joined, at, 3)
        assert torch.equal(taken, tokens) and torch.equal(rest, x) and rest.is_contiguous()


def test_attention_is_multi_head_softmax_attention():
    q, k, v = torch.randn(2, 5, 8), torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    heads = 2
    split = [t.view(2, t.shape[1], heads, 4).transpose(1, 2) for t in (q, k, v)]
    weights = (split[0] @ split[1].transpose(-2, -1) / math.sqrt(4)).softmax(dim=-1)
    expected = (weights @ split[2]).transpose(1, 2).reshape(2, 5, 8)
    torch.testing.assert_close(attention(q, k, v, heads), expected)


def test_no_two_classes_in_the_package_share_a_name():
    package = pathlib.Path(__file__).resolve().parents[1] / 'vpetl_mm'
    names = Counter(node.name for path in package.rglob('*.py')
                    for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.ClassDef))
    assert names and not [n for n, count in names.items() if count > 1]
