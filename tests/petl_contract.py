"""The PETL method contract as a reusable tester (peft's ``PeftCommonTester`` in spirit).

:class:`PETLContractTester` holds one ``petl`` config (one method or a list) and one tiny host
(:mod:`tiny_backbones`); each ``check_*`` builds fresh models and asserts one clause of the
contract. ``tests/test_contract.py`` runs every check for every registered method on every
profiled backbone, ``tests/test_docs.py`` runs them for the docs' worked examples, and a new
method or profile is covered without writing a test.

Per-method data lives here, as tables: ``TINY_HPARAMS`` (defaults too large for the tiny hosts),
``EXPECTED_TRAINABLE`` (methods that train host parameters; the rest must train exactly their
injected modules) and ``NO_GRADIENT`` (trainable tensors that get no gradient from one backward
by design).
"""
import copy
import re
from typing import Callable, Dict, List, Optional, Sequence, Set, Union

import pytest
import torch
import torch.nn as nn

from conftest import build_host, build_petl, run
from tiny_backbones import TinyBackbone
from vpetl_mm.registry import PETL_METHODS

TINY_HPARAMS: Dict[str, dict] = dict(
    LoRA=dict(rank=4), Adapter=dict(bottleneck=4), AdaptFormer=dict(bottleneck=4),
    Mona=dict(bottleneck=8), LoRand=dict(mid=8, kernel=2), E3VA=dict(rank=4),
    BAPAT=dict(bottleneck=4, att_mid=4), PrefixTuning=dict(length=2, mid=4),
    RepAdapter=dict(hidden=4), FacT=dict(rank=4), VPT=dict(length=4), SCT=dict(channels=8),
    UTuning=dict(length=2, bottleneck=4), NOAH=dict(vpt=2, lora=2, adapter=2),
    LAST=dict(rank=4), HST=dict(dims=(8, ), heads=(2, )))
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)
Outputs = List[torch.Tensor]


def petl_cfg(name: str) -> dict:
    """The tiny-host config of a registered method."""
    return dict(type=name, **TINY_HPARAMS.get(name, {}))


def injected_only(wrapper) -> Set[str]:
    return {f'{name}.{n}' for name, mod in wrapper.injected_modules().items()
            for n, _ in mod.named_parameters()}


def _param_names(wrapper) -> Dict[int, str]:
    return {id(p): n for n, p in wrapper.backbone.named_parameters()}


def _norm_params(wrapper) -> Set[str]:
    return {f'{p}.{n}' if p else n for p, m in wrapper.backbone.named_modules()
            if isinstance(m, _NORMS) for n, _ in m.named_parameters(recurse=False)}


# method -> the host-relative parameter names that must train, given the wrapper
EXPECTED_TRAINABLE: Dict[str, Callable] = dict(
    Full=lambda w: {n for n, _ in w.backbone.named_parameters()},
    Frozen=lambda w: set(),
    BitFit=lambda w: {n for n, _ in w.backbone.named_parameters() if 'bias' in n.split('.')[-1]},
    LNTune=_norm_params,
    Partial=lambda w: {n for n, _ in w.backbone.named_parameters()
                       if n.startswith(w.anatomy.blocks[-1].path + '.')},
    # its sparse entries, and the bias of every linear / conv layer (not the norms), by
    # parameter name (mmseg ViT's qkv layer is a view of torch MHA's in_proj_bias)
    GPS=lambda w: injected_only(w) | {
        _param_names(w)[id(m.bias)] for p, m in w.backbone.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)) and m.bias is not None
        and 'petl_' not in p},
    # its side network and meta tokens, and every block's two LayerNorms (HST's code)
    HST=lambda w: injected_only(w) | {
        f'{w.anatomy.site_path(b, site)}.{n}' for b in w.anatomy.blocks
        for site in ('norm1', 'norm2') for n, _ in w.anatomy.site(b, site).named_parameters()},
)

def _last_block_mona_convs(wrapper) -> Set[str]:
    last = wrapper.anatomy.blocks[-1]
    return {f'{last.path}.{attr}.{n}' for attr, mod in last.module.named_children()
            if attr.startswith('petl_mona') for n, _ in mod.named_parameters()
            if re.match(r'adapter_conv\.conv\d', n)}


# method -> trainable names (given the wrapper) that one backward leaves without a gradient,
# by design; every other trainable tensor must receive a non-zero gradient
NO_GRADIENT: Dict[str, Callable] = dict(
    # Mona's depthwise convolutions act on the patch grid only; where the host returns the
    # class token (mmpretrain's ViT, out_type='cls_token'), the last block's convolutions have
    # no path to the output (no later attention mixes the patches into that token)
    Mona=lambda w: _last_block_mona_convs(w) if getattr(w.backbone, 'out_type', None) ==
    'cls_token' else set(),
    # GLoRA's bias scale D multiplies the host bias, which timm initialises to zeros (the tiny
    # hosts load no weights): no gradient where that bias is all zero. Its scalar bias E on proj
    # and fc2 shifts every channel of the residual stream alike, which every later LayerNorm
    # (the only readers of the stream on GLoRA's pre-norm hosts) removes: its gradient is zero
    # up to rounding (1e-13 to 1e-8 measured), so the clause cannot ask for one
    GLoRA=lambda w: {f'{inj.name}.factors.Dd' for m in w.methods for inj in m.injected
                     if 'Dd' in inj.module.factors and not _host_bias(w, inj).any()} | {
        f'{inj.name}.factors.Ed' for m in w.methods for inj in m.injected
        if 'Ed' in inj.module.factors and inj.module.factors['Ed'].numel() == 1
        and inj.site in ('proj', 'fc2')})


def _host_bias(wrapper, inj) -> torch.Tensor:
    block = next(b for b in wrapper.anatomy.blocks if b.path == inj.path)
    return wrapper.anatomy.site(block, inj.site).bias


def assert_outputs_close(actual: Outputs, expected: Outputs, **tol) -> None:
    """Every output tensor close to its counterpart; the two lists must have the same length."""
    assert len(actual) == len(expected), f'{len(actual)} outputs vs {len(expected)}'
    for a, b in zip(actual, expected):
        torch.testing.assert_close(a, b, **tol)


def probe_loss(outputs: Outputs) -> torch.Tensor:
    """A training loss on the outputs for the gradient clauses: the mean square plus a fixed ramp
    over every element. The ramp is there because the mean square alone is constant when an
    output is a LayerNorm without affine terms (tiny timm CLIP: its IA3 scales then get ~1e-8
    gradients that one SGD step cannot move)."""
    return sum(o.float().pow(2).mean()
               + (o.float() * torch.linspace(-1, 1, o.numel()).view_as(o)).mean()
               for o in outputs)


def perturb_trainable(model: nn.Module, seed: int = 7, scale: float = 0.05) -> None:
    """Move every trainable tensor off its init (zero-init branches start to matter)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * scale)


def _names(petl: Union[dict, Sequence[dict]]) -> List[str]:
    return [c['type'] for c in ([petl] if isinstance(petl, dict) else petl)]


class PETLContractTester:
    """Every clause of the method contract for one ``petl`` config on one tiny host.

    Args:
        petl: One method config or a list of them, as ``PETLBackbone(petl=...)`` takes.
        tiny: The tiny host backbone (:class:`tiny_backbones.TinyBackbone`).
        expected_trainable: Host-relative names that must train, given the wrapper; default
            ``EXPECTED_TRAINABLE`` for a single method, else exactly the injected modules.

    Examples:
        >>> PETLContractTester(dict(type='LoRA', rank=4), TINY_BACKBONES[0]).check_all()
    """

    def __init__(self, petl: Union[dict, Sequence[dict]], tiny: TinyBackbone,
                 expected_trainable: Optional[Callable] = None) -> None:
        self.petl, self.tiny = petl, tiny
        names = _names(petl)
        self.name = '+'.join(names)
        self.expected_trainable = expected_trainable or (
            EXPECTED_TRAINABLE.get(names[0], injected_only) if len(names) == 1
            else injected_only)
        self.no_gradient = NO_GRADIENT.get(self.name, lambda w: set())

    @classmethod
    def checks(cls) -> List[str]:
        """Names of every ``check_*`` (``check_all`` excepted), in definition order."""
        return [n for n in vars(cls) if n.startswith('check_') and n != 'check_all']

    def check_all(self) -> None:
        for check in self.checks():
            getattr(self, check)()

    def build(self, seed: int = 0, **host_options):
        return build_petl(self.tiny, copy.deepcopy(self.petl), seed=seed, **host_options)

    def _run(self, model) -> Outputs:
        return run(model, self.tiny)

    # -- the clauses ---------------------------------------------------------------------------
    def check_exactly_intended_parameters_train(self) -> None:
        wrapper = self.build()
        trainable = {n for n, p in wrapper.backbone.named_parameters() if p.requires_grad}
        expected = self.expected_trainable(wrapper)
        assert trainable == expected
        assert wrapper.num_trainable() == sum(
            p.numel() for n, p in wrapper.backbone.named_parameters() if n in expected)
        if self.name != 'Frozen':
            assert trainable, f'{self.name} trains nothing on {self.tiny.profile}'

    def check_zero_init_keeps_base_output(self) -> None:
        wrapper = self.build().eval()
        if not all(m.ZERO_INIT for m in wrapper.methods):
            return
        wrapper.init_weights()
        host = build_host(self.tiny, seed=123)
        host.eval()  # some hosts' train() returns None, so no chaining
        state = wrapper.state_dict()
        petl_keys = {k for k in state if '.petl_' in f'.{k}'}
        host.load_state_dict({k: v for k, v in state.items() if k not in petl_keys})
        with torch.no_grad():
            assert_outputs_close(self._run(wrapper), self._run(host), rtol=1e-5, atol=1e-6)

    def check_perturbing_trainable_changes_output(self) -> None:
        wrapper = self.build().eval()
        if not any(p.requires_grad for p in wrapper.parameters()):
            return  # Frozen: nothing to perturb (exactly_intended checks that it trains nothing)
        with torch.no_grad():
            before = self._run(wrapper)
            perturb_trainable(wrapper)
            after = self._run(wrapper)
        assert len(before) == len(after)
        moved = max((a - b).abs().max().item() for a, b in zip(after, before))
        assert moved > 1e-6, f'{self.name}: its trainable tensors do not reach the output'

    def check_every_trainable_tensor_gets_a_gradient(self) -> None:
        wrapper = self.build().train()
        perturb_trainable(wrapper)  # zero-init factors would block their partners' gradients
        trainable = {n: p for n, p in wrapper.backbone.named_parameters() if p.requires_grad}
        if not trainable:
            return
        loss = probe_loss(self._run(wrapper))
        loss.backward()
        exempt = self.no_gradient(wrapper)
        assert exempt <= set(trainable), f'NO_GRADIENT names {exempt - set(trainable)}'
        missing = sorted(n for n, p in trainable.items() if n not in exempt and (
            p.grad is None or not p.grad.abs().sum() > 0))
        assert not missing, f'{self.name}: no gradient reaches {missing[:6]}'

    def check_one_step_changes_only_trainable(self) -> None:
        wrapper = self.build().train()
        before = {n: p.detach().clone() for n, p in wrapper.named_parameters()}
        loss = probe_loss(self._run(wrapper))
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
        assert changed, f'{self.name}: no trainable parameter changed after one step'

    def check_adapter_only_checkpoint_round_trip(self) -> None:
        trained = self.build().eval()
        pretrained = {k: v.clone() for k, v in trained.state_dict().items()}  # "pretrained file"
        perturb_trainable(trained)
        frozen = trained.frozen_param_names()
        adapter_only = {k: v for k, v in trained.state_dict().items() if k not in frozen}
        assert not (set(adapter_only) & frozen)
        if self.name != 'Full':
            assert len(adapter_only) < len(pretrained)
        fresh = self.build(seed=99).eval()
        fresh.load_state_dict({k: v for k, v in pretrained.items() if k in frozen}, strict=False)
        fresh.load_state_dict(adapter_only, strict=False)
        with torch.no_grad():
            assert_outputs_close(self._run(fresh), self._run(trained))

    def check_deep_copy_runs_on_its_own_parameters(self) -> None:
        # EMA hooks deep-copy the model: hooks must follow the copy, not the original's modules
        original = self.build().eval()
        with torch.no_grad():
            before = self._run(original)
            ema = copy.deepcopy(original)
            perturb_trainable(ema)
            reference = self.build().eval()
            reference.load_state_dict(ema.state_dict())
            assert_outputs_close(self._run(ema), self._run(reference))
            assert_outputs_close(self._run(original), before)

    def check_merge_round_trip(self) -> None:
        """merge() keeps the function (a no-op for non-mergeable methods), repeats change
        nothing, and unmerge() restores the weights."""
        wrapper = self.build().eval()
        perturb_trainable(wrapper)
        weights = {k: v.clone() for k, v in wrapper.state_dict().items()}
        folds = any(m.MERGEABLE for m in wrapper.methods)
        tol = dict(rtol=1e-5, atol=1e-5) if folds else dict(rtol=0, atol=0)
        with torch.no_grad():
            unmerged = self._run(wrapper)
            wrapper.merge()
            assert wrapper.merged
            merged = self._run(wrapper)
            once = {k: v.clone() for k, v in wrapper.state_dict().items()}
            wrapper.merge()  # idempotent
            assert all(torch.equal(v, once[k]) for k, v in wrapper.state_dict().items())
            wrapper.unmerge()
            wrapper.unmerge()  # idempotent
            restored = self._run(wrapper)
        assert not wrapper.merged
        assert_outputs_close(merged, unmerged, **tol)
        assert_outputs_close(restored, unmerged, **tol)
        state = wrapper.state_dict()
        assert set(state) == set(weights)
        for key, value in state.items():
            torch.testing.assert_close(value, weights[key], rtol=1e-5, atol=1e-6)

    def check_merge_and_unload(self) -> None:
        """Methods the stock host reproduces unload into it (strict keys, same outputs); the
        others refuse, naming themselves."""
        wrapper = self.build().eval()
        perturb_trainable(wrapper)
        kept = wrapper.unfoldable()
        if kept:
            with pytest.raises(ValueError, match=kept[0]):
                wrapper.merge_and_unload()
            return
        with torch.no_grad():
            reference = self._run(wrapper)
            host = wrapper.merge_and_unload()
            stock = build_host(self.tiny, seed=5)
            stock.eval()
            stock.load_state_dict(host.state_dict(), strict=True)
            assert_outputs_close(self._run(stock), reference, rtol=1e-5, atol=1e-5)
            assert_outputs_close(self._run(host), reference, rtol=1e-5, atol=1e-5)
        assert not any('petl_' in n for n, _ in host.named_modules())
        assert not any(m._forward_hooks or m._forward_pre_hooks for m in host.modules())

    def check_host_train_and_frozen_stages_never_freeze_petl(self) -> None:
        if not self.tiny.frozen_stages_key:
            return
        host_options = {self.tiny.frozen_stages_key: 1}
        if any(PETL_METHODS.get(n).TRAINS_ALL for n in _names(self.petl)):
            with pytest.raises(ValueError, match='frozen_stages'):
                self.build(**host_options)
            return
        wrapper = self.build(**host_options)
        for mode in (True, False, True):
            wrapper.train(mode)
            trainable = {n for n, p in wrapper.backbone.named_parameters() if p.requires_grad}
            assert trainable == wrapper.trainable_names
            assert all(m.training == mode for m in wrapper.injected_modules().values())
