"""The Peft bridge: every verified peft tuner passes the whole method contract on the ViT.

Each tuner of ``TUNERS`` runs every clause of :class:`petl_contract.PETLContractTester` on the
tiny mmpretrain ViT with ``targets=['qkv', 'proj', 'fc1', 'fc2']``; the default ``Peft`` runs
on every profile in ``tests/test_contract.py``. Zero-init is checked wherever the tuner's init
is the identity (the method's ``ZERO_INIT``); ``NOT_IDENTITY_AT_INIT`` lists the exemptions
and why. ``python tools/analysis/peft_table.py`` measures the tuner x host table of
``docs/peft.md`` with these ``TUNERS`` on every contract host.
"""
import importlib.util
import os.path as osp

import pytest
import torch

from conftest import build_petl, run
from petl_contract import PETLContractTester, perturb_trainable
from tiny_backbones import CONTRACT_HOSTS, TINY_BACKBONES

VIT = TINY_BACKBONES[0]
TARGETS = ['qkv', 'proj', 'fc1', 'fc2']
# tuner -> options sized for the 32-wide tiny hosts (block sizes must divide 16 on Swin)
TUNERS = {
    'LoRA': dict(peft_type='LoRA', r=4),
    'DoRA': dict(peft_type='LoRA', r=4, use_dora=True),
    'rsLoRA': dict(peft_type='LoRA', r=4, use_rslora=True),
    'PiSSA': dict(peft_type='LoRA', r=4, init_lora_weights='pissa'),
    'LoHa': dict(peft_type='LoHa', r=4),
    'LoKr': dict(peft_type='LoKr', r=4),
    'OFT': dict(peft_type='OFT', r=0, oft_block_size=4),
    'BOFT': dict(peft_type='BOFT', boft_block_size=4),
    'HRA': dict(peft_type='HRA', r=4),
    'VeRA': dict(peft_type='VeRA', r=4),
    'FourierFT': dict(peft_type='FourierFT', n_frequency=16, init_weights=True),
    'FourierFT-gauss': dict(peft_type='FourierFT', n_frequency=16),
    'IA3': dict(peft_type='IA3'),
}
# tuners whose init is not the identity on the host weights: the zero-init clause is skipped
# for them (ZERO_INIT False), and the reason is checked below
NOT_IDENTITY_AT_INIT = {
    'PiSSA': 'keeps the function but moves the principal part of W into the adapter',
    'FourierFT-gauss': "FourierFT's published init: a Gaussian spectrum (init_weights=False)",
}


# the contract runs on the tuners the issue names (HRA and the Gaussian FourierFT init are
# measured on every host by tools/analysis/peft_table.py, see docs/peft.md)
CONTRACT = [t for t in TUNERS if t not in ('HRA', 'FourierFT-gauss')]


def _cfg(tuner: str) -> dict:
    return dict(type='Peft', targets=TARGETS, **TUNERS[tuner])


@pytest.mark.parametrize('check', PETLContractTester.checks())
@pytest.mark.parametrize('tuner', CONTRACT)
def test_contract(tuner, check):
    getattr(PETLContractTester(_cfg(tuner), VIT), check)()


@pytest.mark.parametrize('tuner', list(TUNERS))
def test_zero_init_flag_is_honest(tuner):
    """Every tuner but the listed ones claims ZERO_INIT (so the contract checks it); the
    listed ones really change the step-0 output of the host weights they hold."""
    wrapper = build_petl(VIT, _cfg(tuner)).eval()
    method = wrapper.methods[0]
    assert method.ZERO_INIT == (tuner not in NOT_IDENTITY_AT_INIT)
    if tuner in NOT_IDENTITY_AT_INIT:
        bare = build_petl(VIT, dict(type='Frozen')).eval()
        torch.manual_seed(3)
        wrapper.init_weights()
        torch.manual_seed(3)
        bare.init_weights()
        host = {k: v for k, v in wrapper.state_dict().items() if '.petl_' not in f'.{k}'}
        bare.load_state_dict(host)
        with torch.no_grad():
            moved = (run(wrapper, VIT)[0] - run(bare, VIT)[0]).abs().max()
        assert moved > 1e-4


def test_pissa_runs_on_the_loaded_host_weights_and_round_trips_adapter_only():
    """PiSSA's SVD runs in init_weights (after the host loads its weights): the function is
    the host's, the host weight is the residual, and an adapter-only checkpoint restores the
    trained model on a fresh build (the residual is recomputed from the same host weights)."""
    def built(cfg):
        wrapper = build_petl(VIT, cfg).eval()
        torch.manual_seed(3)  # the host's init_weights draws: the same host in every build
        wrapper.init_weights()
        return wrapper

    pissa, lora = built(_cfg('PiSSA')), built(_cfg('LoRA'))
    with torch.no_grad():
        torch.testing.assert_close(run(pissa, VIT), run(lora, VIT), rtol=1e-4, atol=1e-5)
    qkv = 'layers.0.attn.qkv.weight'
    assert not torch.allclose(pissa.state_dict()[qkv], lora.state_dict()[qkv])
    perturb_trainable(pissa)
    frozen = pissa.frozen_param_names()
    fresh = built(_cfg('PiSSA'))
    fresh.load_state_dict({k: v for k, v in pissa.state_dict().items() if k not in frozen},
                          strict=False)
    with torch.no_grad():
        torch.testing.assert_close(run(fresh, VIT), run(pissa, VIT))


def test_default_is_peft_s_lora_r8_on_qkv():
    """4 C r per block (A: r x C, B: 3C x r): 3 blocks of width 32 at r = 8."""
    wrapper = build_petl(VIT, dict(type='Peft'))
    assert wrapper.num_trainable() == 3 * 4 * 32 * 8
    assert {n.split('.petl_peft_')[1].split('.')[0] for n in wrapper.trainable_names} == {'qkv'}


def test_targets_are_checked_against_the_profile_not_the_default():
    """ConvNeXt has no qkv: the default refuses it in one line, its pointwise linears run."""
    convnext = next(t for t in CONTRACT_HOSTS if t.profile == 'mmpretrain.ConvNeXt')
    with pytest.raises(ValueError, match=r"with targets \['qkv'\]: .*Target its sites"):
        build_petl(convnext, dict(type='Peft'))
    tester = PETLContractTester(dict(type='Peft', targets=['fc1', 'fc2']), convnext)
    tester.check_all()


def test_merge_is_peft_s_own_and_mergeability_is_per_tuner():
    wrapper = build_petl(VIT, _cfg('BOFT')).eval()
    layer = wrapper.backbone.layers[0].petl_peft_fc1.layer
    wrapper.merge()
    assert layer.merged and wrapper.methods[0].folds_into_host()
    wrapper.unmerge()
    assert not layer.merged


def test_host_keys_stay_and_peft_keys_are_petl_keys():
    stock = set(build_petl(VIT, dict(type='Frozen')).state_dict())
    keys = set(build_petl(VIT, _cfg('LoRA')).state_dict())
    assert stock <= keys
    assert all('.petl_peft_' in f'.{k}' for k in keys - stock)
    assert 'layers.0.petl_peft_qkv.layer.lora_A.default.weight' in keys


@pytest.mark.parametrize('cfg,match', [
    (dict(peft_type='NoSuchTuner'), r"unknown peft_type 'NoSuchTuner'; peft's layer tuners"),
    (dict(peft_type='LoRA', rank=4), r"Peft\(LORA\) got unknown option\(s\) \['rank'\]; LoraC"),
    (dict(peft_type='LoRA', target_modules=['qkv']), r"\['target_modules'\] are set by the"),
    (dict(peft_type='BOFT', boft_block_size=4, boft_block_num=2), r'Peft\(BOFT\): peft refu'),
    (dict(peft_type='PROMPT_TUNING'), r'unknown peft_type .*prompt tuners: use VPT'),
    (dict(peft_type='LoRA', targets=['attn']), r"Peft targets must be single layers: 'attn'"),
])
def test_bad_config_is_one_clear_line(cfg, match):
    with pytest.raises((ValueError, TypeError)) as info:
        build_petl(VIT, dict(type='Peft', **cfg))
    assert len(str(info.value).splitlines()) == 1
    assert info.match(match)


def _host(host_id: str):
    return next(t for t in CONTRACT_HOSTS if t.id == host_id)


def test_channels_last_linears_run_oft():
    """ConvNeXt's pointwise layers see (B, H, W, C); peft's OFT reads any 4-d input as a Conv2d
    input, so the bridge hands linear layers such maps as tokens (B, HW, C)."""
    tester = PETLContractTester(dict(type='Peft', targets=['fc1', 'fc2'], **TUNERS['OFT']),
                                _host('mmpretrain.ConvNeXt'))
    tester.check_all()


def test_mmseg_in_projection_view_merges_into_the_mha_parameter():
    """mmseg ViT's qkv site is a parameter-less nn.Linear view of torch's in_proj_weight: peft
    wraps it as a Linear, and its merge / unmerge write the attention's own parameter."""
    tiny = _host('mmseg.VisionTransformer')
    wrapper = build_petl(tiny, dict(type='Peft', targets=['qkv'], peft_type='LoRA', r=4)).eval()
    perturb_trainable(wrapper)
    attn, layer = wrapper.backbone.layers[0].attn, wrapper.backbone.layers[0].petl_peft_qkv.layer
    assert type(layer).__name__ == 'Linear' and layer.base_layer.weight is attn.attn.in_proj_weight
    stock = attn.attn.in_proj_weight.detach().clone()
    with torch.no_grad():
        unmerged = run(wrapper, tiny)[0]
        wrapper.merge()
        delta = (attn.attn.in_proj_weight - stock).abs().max()
        torch.testing.assert_close(run(wrapper, tiny)[0], unmerged, rtol=1e-5, atol=1e-5)
        wrapper.unmerge()
    assert delta > 1e-4
    torch.testing.assert_close(attn.attn.in_proj_weight, stock, rtol=1e-5, atol=1e-6)


def test_a_tuner_that_does_not_fit_a_layer_is_refused_in_one_line_naming_it():
    """BOFT needs its block size to divide every targeted layer's in_features: the tiny EVA-02's
    SwiGLU hidden width is 85 (EVA-02 B's is 2048), so fc2 is refused; the rest runs."""
    eva = _host('timm.Eva')
    with pytest.raises(ValueError) as info:
        build_petl(eva, _cfg('BOFT'))
    assert len(str(info.value).splitlines()) == 1
    assert info.match(r"BOFT cannot adapt the targets .*mlp\.fc2 85->32: in_features \(85\) "
                      r'must be divisible by boft_block_size \(4\)! Choose options')
    build_petl(eva, dict(_cfg('BOFT'), targets=['qkv', 'proj', 'fc1']))


def test_the_table_tool_reports_a_pass_and_a_refusal():
    """tools/analysis/peft_table.py (docs/peft.md's table) on two of its cells."""
    path = osp.join(osp.dirname(__file__), '..', 'tools', 'analysis', 'peft_table.py')
    spec = importlib.util.spec_from_file_location('peft_table', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.host_targets(_host('mmpretrain.ConvNeXt')) == ['fc1', 'fc2']
    assert tool.measure_cell('LoRA', _host('mmpretrain.ConvNeXt')) == ('pass', [])
    cell, details = tool.measure_cell('BOFT', _host('timm.Eva'))
    assert cell == 'refused' and 'mlp.fc2 85->32' in details[0]
