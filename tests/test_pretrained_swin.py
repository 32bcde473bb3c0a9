"""Swin pretrained files in Microsoft and OpenMMLab layouts load into PETL-wrapped mmdet/mmseg Swin.

The Microsoft-layout files are built here by inverting the conversion *independently* of the
library (Microsoft's PatchMerging concatenation order, Microsoft's relative-position formula), and
the PatchMerging order is checked against a re-implementation of Microsoft's forward, so the
tests prove the semantics, not only that conversion and inversion agree.
"""
import dataclasses
import logging
import pickle
import re
from typing import Dict

import pytest
import torch
import torch.nn as nn
from mmdet.models.backbones.swin import swin_converter
from mmengine.runner import load_checkpoint

from conftest import build_host, build_petl, captured, run
from tiny_backbones import TINY_BACKBONES
from vpetl_mm.compat.swin_weights import (convert_microsoft_swin, detect_swin_layout,
                                          interpolate_bias_table)

SWINS = [t for t in TINY_BACKBONES if t.profile in ('mmdet.SwinTransformer',
                                                      'mmseg.SwinTransformer')]
IDS = [t.scope for t in SWINS]
PETLS = [dict(type='Adapter', bottleneck=4), dict(type='LoRA', rank=2)]
MS_EXTRAS = ['head.bias', 'head.weight', 'layers.0.blocks.1.attn_mask', 'norm.bias',
             'norm.weight']
OUT_NORMS = ['norm0.bias', 'norm0.weight', 'norm1.bias', 'norm1.weight']
_UNFOLD_TO_MS = [0, 2, 1, 3]  # nn.Unfold position j holds Microsoft's x_{[0,2,1,3][j]}


# -- an independent Microsoft-layout reference -----------------------------------------------
def microsoft_rel_index(window: int) -> torch.Tensor:
    """``relative_position_index`` exactly as Microsoft's WindowAttention computes it."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                        indexing='ij')).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window - 1
    rel[:, :, 1] += window - 1
    rel[:, :, 0] *= 2 * window - 1
    return rel.sum(-1)


def to_microsoft(mm: Dict[str, torch.Tensor], window: int = 4) -> Dict[str, torch.Tensor]:
    """Write an mm Swin state dict in Microsoft's layout, with its classifier and buffers."""
    out = {}
    for key, value in mm.items():
        if re.match(r'norm\d', key):  # mm's per-output norms do not exist in Microsoft's Swin
            continue
        key = (key.replace('stages.', 'layers.', 1).replace('attn.w_msa.', 'attn.')
               .replace('ffn.layers.0.0.', 'mlp.fc1.').replace('ffn.layers.1.', 'mlp.fc2.')
               .replace('patch_embed.projection.', 'patch_embed.proj.'))
        if 'downsample.reduction' in key:  # (out, c*4 + j) -> (out, k*C + c)
            o, i = value.shape
            value = value.reshape(o, i // 4, 4)[:, :, _UNFOLD_TO_MS].transpose(1, 2)
            value = value.reshape(o, i)
        elif 'downsample.norm' in key:
            value = value.reshape(-1, 4)[:, _UNFOLD_TO_MS].t().reshape(-1)
        elif key.endswith('relative_position_index'):
            value = microsoft_rel_index(window)
        out[key] = value.clone()
    out.update({'head.weight': torch.randn(7, 32), 'head.bias': torch.randn(7),
                'norm.weight': torch.randn(32), 'norm.bias': torch.randn(32),
                'layers.0.blocks.1.attn_mask': torch.zeros(4, 16, 16)})
    return out


def microsoft_patch_merging(x: torch.Tensor, hw, norm: nn.LayerNorm,
                            reduction: nn.Linear) -> torch.Tensor:
    """Microsoft's PatchMerging forward: concat x0..x3 = (0,0), (1,0), (0,1), (1,1)."""
    B, _, C = x.shape
    x = x.view(B, *hw, C)
    x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    return reduction(norm(x.view(B, -1, 4 * C)))


# -- helpers ---------------------------------------------------------------------------------
def source_host(tiny, **overrides) -> nn.Module:
    """A host with every tensor random (so equality after loading means something)."""
    host = build_host(dataclasses.replace(tiny, cfg={**tiny.cfg, **overrides}), seed=123)
    with torch.no_grad():
        for param in host.parameters():
            param.normal_()
    host.eval()  # mm Swin's train() returns None
    return host


def pretrained(tiny, petl, path, **overrides):
    """Build the wrapper with the host's Pretrained init_cfg and run ``init_weights``."""
    wrapper = build_petl(tiny, petl, seed=7, init_cfg=dict(type='Pretrained', checkpoint=str(path)),
                         **overrides)
    with captured() as records:
        wrapper.init_weights()
    return wrapper.eval(), records


def layout_file(layout: str, mm: Dict[str, torch.Tensor]) -> dict:
    """The checkpoint dict of ``mm``'s weights in one of the layouts found in the wild."""
    ms = to_microsoft(mm)
    # mmseg's swin2mmseg.convert_swin is mmdet's swin_converter without the backbone. prefix.
    mmseg_converted = {k[len('backbone.'):]: v for k, v in swin_converter(ms).items()}
    prefixed = lambda state: {f'backbone.{k}': v for k, v in state.items()}  # noqa: E731
    return {
        'microsoft': {'model': ms},
        'microsoft_backbone_prefix': {'state_dict': prefixed(ms)},  # Mona's load_from file
        'mmseg_converted': {'meta': {'note': 'swin2mmseg'}, 'state_dict': mmseg_converted},
        'mmseg_converted_backbone_prefix': {'meta': {}, 'state_dict': prefixed(mmseg_converted)},
        'mm_full': {'meta': {}, 'state_dict': prefixed(mm)},  # an mm training checkpoint
    }[layout]


# -- conversion semantics --------------------------------------------------------------------
@pytest.mark.parametrize('tiny', SWINS, ids=IDS)
def test_patch_merging_matches_microsoft_forward_and_round_trips(tiny):
    merge = source_host(tiny).stages[0].downsample
    ms = to_microsoft({f'stages.0.downsample.{k}': v for k, v in merge.state_dict().items()})
    norm, reduction = nn.LayerNorm(merge.norm.normalized_shape), nn.Linear(64, 32, bias=False)
    norm.weight.data = ms['layers.0.downsample.norm.weight']
    norm.bias.data = ms['layers.0.downsample.norm.bias']
    reduction.weight.data = ms['layers.0.downsample.reduction.weight']
    x = torch.randn(2, 64, 16)
    out, hw = merge(x, (8, 8))
    torch.testing.assert_close(out, microsoft_patch_merging(x, (8, 8), norm, reduction))
    back, _ = convert_microsoft_swin(ms)
    for key, value in merge.state_dict().items():
        assert torch.equal(back[f'stages.0.downsample.{key}'], value)


@pytest.mark.parametrize('tiny', SWINS, ids=IDS)
def test_relative_position_index_is_microsofts(tiny):
    index = source_host(tiny).stages[0].blocks[0].attn.w_msa.relative_position_index
    assert torch.equal(index, microsoft_rel_index(4))


def test_conversion_equals_mmdet_swin_converter():
    ms = to_microsoft(source_host(SWINS[0]).state_dict())
    ours, skipped = convert_microsoft_swin(ms)
    theirs = {k[len('backbone.'):]: v for k, v in swin_converter(ms).items()}
    assert skipped == MS_EXTRAS
    assert set(theirs) - set(ours) == {'norm.weight', 'norm.bias',
                                       'stages.0.blocks.1.attn_mask'}  # mmdet keeps them
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_layout_detection():
    assert detect_swin_layout({'layers.0.blocks.0.attn.qkv.weight'}) == 'microsoft'
    assert detect_swin_layout({'stages.0.blocks.0.attn.w_msa.qkv.weight'}) == 'openmmlab'
    assert detect_swin_layout({'blocks.0.attn.qkv.weight', 'head.weight'}) is None
    assert detect_swin_layout({'layers.1.downsample.norm.weight',
                               'stages.0.blocks.0.norm1.weight'}) == 'mixed'


# -- loading through the host's Pretrained init_cfg -----------------------------------------
@pytest.mark.parametrize('petl', PETLS, ids=['adapter', 'lora'])
@pytest.mark.parametrize('layout', ['microsoft', 'microsoft_backbone_prefix', 'mmseg_converted',
                                    'mmseg_converted_backbone_prefix', 'mm_full'])
@pytest.mark.parametrize('tiny', SWINS, ids=IDS)
def test_pretrained_init_loads_every_layout(tiny, layout, petl, tmp_path):
    src = source_host(tiny)
    mm = src.state_dict()
    path = tmp_path / f'{layout}.pth'
    torch.save(layout_file(layout, mm), path)
    wrapper, records = pretrained(tiny, petl, path)

    state = wrapper.backbone.state_dict()
    from_file = [k for k in mm if layout == 'mm_full' or k not in OUT_NORMS]
    assert [k for k in from_file if not torch.equal(state[k], mm[k])] == []
    # PETL modules keep their own init: nothing loads into them, the branch starts at zero.
    zero = [v for k, v in state.items() if re.search(r'petl_.*(\.up\.|lora_B)', k)]
    assert zero and all(not v.any() for v in zero)

    report = wrapper.load_reporter.last
    assert report['context'] == 'host init_weights' and not report['petl_loaded']
    assert report['host_missing'] == ([] if layout == 'mm_full' else OUT_NORMS)
    if layout.startswith('microsoft'):
        assert report['unexpected'] == MS_EXTRAS
        assert any('converted' in r.getMessage() and 'head.weight' in r.getMessage()
                   for r in records)
    else:  # OpenMMLab files are never converted (again)
        assert not any('Microsoft layout to' in r.getMessage() for r in records)
        assert report['unexpected'] == ([] if layout == 'mm_full' else [
            'norm.bias', 'norm.weight', 'stages.0.blocks.1.attn_mask'])
    # With the out-norms copied too, the wrapper computes exactly what the source computes.
    with torch.no_grad():
        for name in OUT_NORMS:
            wrapper.backbone.get_parameter(name).copy_(mm[name])
        for got, want in zip(run(wrapper, tiny), run(src, tiny), strict=True):
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize('convert_weights', [True, False])
@pytest.mark.parametrize('layout', ['microsoft', 'mmseg_converted', 'mm_full'])
def test_mmdet_convert_weights_flag_no_longer_matters(layout, convert_weights, tmp_path):
    # Natively, mmdet raises (IndexError/KeyError) or silently skips patch_embed.projection in
    # four of these six cases; OpenMMLab files must never be converted a second time.
    mm = source_host(SWINS[0]).state_dict()
    path = tmp_path / 'ckpt.pth'
    torch.save(layout_file(layout, mm), path)
    wrapper, _ = pretrained(SWINS[0], PETLS[0], path, convert_weights=convert_weights)
    state = wrapper.backbone.state_dict()
    assert torch.equal(state['patch_embed.projection.weight'], mm['patch_embed.projection.weight'])
    assert torch.equal(state['stages.0.downsample.reduction.weight'],
                       mm['stages.0.downsample.reduction.weight'])


@pytest.mark.parametrize('tiny', SWINS, ids=IDS)
def test_other_window_size_is_interpolated_like_mm(tiny, tmp_path):
    mm = source_host(tiny).state_dict()  # window 4: tables (7*7, heads)
    torch.save({'model': to_microsoft(mm)}, tmp_path / 'ms.pth')
    torch.save({'state_dict': mm}, tmp_path / 'mm.pth')
    from_ms, records = pretrained(tiny, PETLS[0], tmp_path / 'ms.pth', window_size=2)
    from_mm, _ = pretrained(tiny, PETLS[0], tmp_path / 'mm.pth', window_size=2)
    key = 'stages.1.blocks.0.attn.w_msa.relative_position_bias_table'
    want = interpolate_bias_table(mm[key], 9)
    for wrapper in (from_ms, from_mm):
        state = wrapper.backbone.state_dict()
        torch.testing.assert_close(state[key], want)
        assert state[key.replace('bias_table', 'index')].shape == (4, 4)
    assert any('another window size' in r.getMessage() for r in records)


def test_other_head_count_is_a_clear_error(tmp_path):
    mm = source_host(SWINS[1]).state_dict()
    torch.save({'model': to_microsoft(mm)}, tmp_path / 'ms.pth')
    with pytest.raises(ValueError, match='heads differ'):
        pretrained(SWINS[1], PETLS[0], tmp_path / 'ms.pth', window_size=2, num_heads=(2, 2))


@pytest.mark.parametrize('tiny', SWINS, ids=IDS)
def test_file_that_matches_nothing_warns(tiny, tmp_path):
    torch.save({'model': {'blocks.0.attn.qkv.weight': torch.zeros(3, 3),
                          'cls_token': torch.zeros(1, 1, 3)}}, tmp_path / 'vit.pth')
    wrapper, records = pretrained(tiny, PETLS[0], tmp_path / 'vit.pth')
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert any('none of the 2 keys' in m and 'blocks.0.attn.qkv.weight' in m for m in warnings)
    assert any(m.startswith('Load report') and 'NOT in the checkpoint' in m for m in warnings)
    assert len(wrapper.load_reporter.last['host_loaded']) == 0


class NotATensor:
    """A pickled object a weights-only load must refuse."""


@pytest.mark.parametrize('tiny', SWINS, ids=IDS)
def test_pretrained_loading_is_weights_only(tiny, tmp_path):
    mm = source_host(tiny).state_dict()
    torch.save({'model': to_microsoft(mm), 'extra': NotATensor()}, tmp_path / 'evil.pth')
    # mmdet loads through vpetl_mm's Swin loader (with a re-save hint), mmseg through mmengine's
    # local-file loader, which importing vpetl_mm makes the weights-only one (compat/safe_load)
    with pytest.raises((ValueError, pickle.UnpicklingError),
                       match='Weights only load failed|does not allow'):
        pretrained(tiny, PETLS[0], tmp_path / 'evil.pth')


# -- loading through mmengine's load_checkpoint (Runner load_from) --------------------------
class Detector(nn.Module):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = nn.Linear(2, 2)


@pytest.mark.parametrize('tiny', SWINS, ids=IDS)
def test_load_from_with_backbone_prefix(tiny, tmp_path):
    mm = source_host(tiny).state_dict()
    torch.save(layout_file('microsoft_backbone_prefix', mm), tmp_path / 'mona_style.pth')
    model = Detector(build_petl(tiny, PETLS[1], seed=7))
    with captured() as records:
        load_checkpoint(model, str(tmp_path / 'mona_style.pth'), map_location='cpu')
    state = model.backbone.backbone.state_dict()
    assert all(torch.equal(state[k], mm[k]) for k in mm if k not in OUT_NORMS)
    report = model.backbone.load_reporter.last
    assert report['context'] == 'checkpoint load' and report['unexpected'] == MS_EXTRAS
    assert any('Microsoft layout' in r.getMessage() for r in records)
