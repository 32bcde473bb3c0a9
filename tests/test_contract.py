"""The method contract, checked for every registered method on every profiled backbone.

New methods and new profiles are picked up automatically: the matrix iterates the
``PETL_METHODS`` registry and ``tests/tiny_backbones.py``, and runs every clause of
:class:`petl_contract.PETLContractTester`. Combinations of methods (``petl=[...]``) have their
own cases below: the wrapper's merge folds the mergeable ones in order and keeps the others.
"""
import pytest
import torch

from conftest import build_petl, run
from petl_contract import PETLContractTester, assert_outputs_close, perturb_trainable, petl_cfg
from tiny_backbones import CONTRACT_HOSTS, TINY_BACKBONES
from vpetl_mm.registry import PETL_METHODS

METHODS = sorted({cls.__name__: cls for cls in PETL_METHODS.module_dict.values()}.items())
CASES = [pytest.param(name, tiny, id=f'{name}-{tiny.id}')
         for name, cls in METHODS for tiny in CONTRACT_HOSTS if cls.supports(tiny.profile)]
UNSUPPORTED = [pytest.param(name, tiny, id=f'{name}-{tiny.id}')
               for name, cls in METHODS for tiny in CONTRACT_HOSTS
               if not cls.supports(tiny.profile)]
VIT = TINY_BACKBONES[0]
assert VIT.profile == 'mmpretrain.VisionTransformer'
MERGEABLE = [name for name, cls in METHODS if cls.MERGEABLE and cls.supports(VIT.profile)]


@pytest.mark.parametrize('check', PETLContractTester.checks())
@pytest.mark.parametrize('name,tiny', CASES)
def test_contract(name, tiny, check):
    getattr(PETLContractTester(petl_cfg(name), tiny), check)()


@pytest.mark.parametrize('name,tiny', UNSUPPORTED)
def test_unsupported_profile_is_a_clear_error(name, tiny):
    with pytest.raises(ValueError, match=f'{name} is not supported on .{tiny.profile}. '):
        build_petl(tiny, petl_cfg(name))


@pytest.mark.parametrize('name', MERGEABLE)
@pytest.mark.parametrize('other', ['Adapter', 'BitFit'])
def test_mergeable_with_another_method(name, other):
    """``[mergeable, other]``: merge folds the first and keeps the second (Adapter keeps its
    modules, so the stock host cannot reproduce it; BitFit trains host biases and folds)."""
    tester = PETLContractTester([petl_cfg(name), petl_cfg(other)], VIT)
    tester.check_merge_round_trip()
    tester.check_merge_and_unload()
    expected = [] if PETL_METHODS.get(name).folds_into_host() else [name]
    assert tester.build().unfoldable() == expected + ([] if other == 'BitFit' else ['Adapter'])


@pytest.mark.parametrize('order', [('SSF', 'LoRA'), ('LoRA', 'SSF'), ('LoRA', 'Hydra', 'SSF'),
                                   ('FacT', 'SSF', 'LoRA')], ids='+'.join)
def test_methods_folding_into_one_layer_unmerge_exactly(order):
    """Several methods fold into ``qkv``: merge in hook order, unmerge in reverse."""
    wrapper = build_petl(VIT, [petl_cfg(n) for n in order]).eval()
    perturb_trainable(wrapper)
    weights = {k: v.clone() for k, v in wrapper.state_dict().items()}
    with torch.no_grad():
        unmerged = run(wrapper, VIT)
        wrapper.merge()
        assert_outputs_close(run(wrapper, VIT), unmerged, rtol=1e-5, atol=1e-5)
        wrapper.unmerge()
        assert_outputs_close(run(wrapper, VIT), unmerged, rtol=1e-5, atol=1e-5)
    for key, value in wrapper.state_dict().items():
        torch.testing.assert_close(value, weights[key], rtol=1e-6, atol=1e-6)


def test_folding_into_a_layer_input_that_another_method_reads_is_refused():
    wrapper = build_petl(VIT, [petl_cfg('RepAdapter'), petl_cfg('LoRA')])
    weights = {k: v.clone() for k, v in wrapper.state_dict().items()}
    with pytest.raises(ValueError, match=r"\['RepAdapter'\] fold into the input of .*qkv.*LoRA"):
        wrapper.merge()
    assert not wrapper.merged
    assert all(torch.equal(v, weights[k]) for k, v in wrapper.state_dict().items())


def test_unmerge_after_unload_is_a_clear_error():
    wrapper = build_petl(VIT, petl_cfg('LoRA'))
    wrapper.merge_and_unload()
    with pytest.raises(RuntimeError, match='merge_and_unload'):
        wrapper.unmerge()
