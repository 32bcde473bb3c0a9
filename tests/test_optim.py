"""PETLOptimWrapperConstructor: frozen parameters skipped quietly, host rules kept off PETL."""
import logging

import pytest
import torch.nn as nn
from mmengine.logging import MMLogger

from conftest import build_petl
from tiny_backbones import TINY_BACKBONES
from vpetl_mm.registry import OPTIM_WRAPPER_CONSTRUCTORS

SWIN_DET = TINY_BACKBONES[2]
HOST_RULES = dict(custom_keys={'backbone': dict(lr_mult=0.1), 'norm': dict(decay_mult=0.)},
                  norm_decay_mult=0.)


class Detector(nn.Module):
    """A stand-in for a host model: backbone + head, as mm detectors name them."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(32, 4)


def build_optimizer(petl, paramwise_cfg):
    model = Detector(build_petl(SWIN_DET, petl))
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='PETLOptimWrapperConstructor', paramwise_cfg=paramwise_cfg,
        optim_wrapper_cfg=dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))))
    return model, constructor(model).optimizer


def groups_by_param(model, optimizer):
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g for g in optimizer.param_groups for p in g['params']}


def test_frozen_params_left_out_without_warning_flood(caplog):
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        model, optimizer = build_optimizer(dict(type='LoRA', rank=4), HOST_RULES)
    finally:
        logger.removeHandler(handler)
    groups = groups_by_param(model, optimizer)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(groups) == trainable
    messages = [r.getMessage() for r in records]
    assert not [m for m in messages if 'is skipped since its requires_grad=False' in m]
    assert any('frozen tensors left out' in m for m in messages)
    assert any('host paramwise rules were NOT applied to PETL parameters' in m for m in messages)


@pytest.mark.parametrize('petl', [dict(type='AdaptFormer', bottleneck=4, layer_norm=True),
                                  dict(type='LNTune'), dict(type='BitFit')],
                         ids=lambda p: p['type'])
def test_host_rules_do_not_hit_petl_params(petl):
    model, optimizer = build_optimizer(petl, dict(HOST_RULES, petl=dict(lr_mult=2.)))
    for name, group in groups_by_param(model, optimizer).items():
        if name.startswith('backbone.'):  # every trainable backbone param is a PETL param here
            assert group['lr'] == pytest.approx(2e-3) and group['weight_decay'] == 0.05, name
        else:
            assert group['lr'] == 1e-3 and group['weight_decay'] == 0.05, name


def test_full_finetuning_keeps_host_rules():
    model, optimizer = build_optimizer(dict(type='Full'), HOST_RULES)
    groups = groups_by_param(model, optimizer)
    norm = next(n for n in groups if n.endswith('norm1.weight'))
    assert groups[norm]['lr'] == pytest.approx(1e-4)  # 'backbone' lr_mult 0.1 (longest key wins)
    assert all(g['lr'] == pytest.approx(1e-4) for n, g in groups.items()
               if n.startswith('backbone.'))


def test_apply_host_rules_opt_in():
    model, optimizer = build_optimizer(dict(type='LoRA', rank=4),
                                       dict(HOST_RULES, petl=dict(apply_host_rules=True)))
    lora = {n: g for n, g in groups_by_param(model, optimizer).items() if 'petl_lora' in n}
    assert lora and all(g['lr'] == pytest.approx(1e-4) for g in lora.values())


def test_mmaction_swin_constructor_as_host():
    model, optimizer = build_optimizer(
        dict(type='LoRA', rank=4),
        dict(host_constructor='mmaction.SwinOptimWrapperConstructor', backbone=dict(lr_mult=0.1)))
    groups = groups_by_param(model, optimizer)
    assert all(g['lr'] == pytest.approx(1e-3) for n, g in groups.items() if 'petl_lora' in n)


def test_unknown_petl_option():
    with pytest.raises(ValueError, match=r"Unknown paramwise_cfg.petl option\(s\) \['lr'\]"):
        build_optimizer(dict(type='LoRA'), dict(petl=dict(lr=1.)))


def test_timm_cosine_lr_matches_timm_per_epoch():
    """vpetl_mm.TimmCosineLR (the image recipe) gives timm CosineLRScheduler's lr every epoch."""
    import torch
    from mmengine.registry import PARAM_SCHEDULERS, DefaultScope
    from timm.scheduler import CosineLRScheduler

    kwargs = dict(t_initial=20, warmup_t=4, warmup_lr_init=1e-6, lr_min=1e-5)
    ours = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=0.01)
    theirs = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=0.01)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        scheduler = PARAM_SCHEDULERS.build(dict(type='vpetl_mm.TimmCosineLR', optimizer=ours,
                                                by_epoch=True, **kwargs))
    reference = CosineLRScheduler(theirs, **kwargs)
    lrs = []
    for epoch in range(24):  # past t_initial: both stay at lr_min
        lrs.append(ours.param_groups[0]['lr'])
        assert lrs[-1] == pytest.approx(theirs.param_groups[0]['lr'], rel=1e-12), epoch
        ours.step()
        scheduler.step()
        reference.step(epoch + 1)
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(1e-5)
    assert lrs[4] < 0.01  # the cosine is not restarted at the base lr after the warm-up
    with pytest.raises(ValueError, match='0 <= warmup_t < t_initial'):
        PARAM_SCHEDULERS.build(dict(type='vpetl_mm.TimmCosineLR', optimizer=ours,
                                    t_initial=5, warmup_t=5))
