"""Pretrained layouts of the SAM, timm Eva and mmseg ViT profiles (tiny files written here).

* SAM: mmpretrain's converted files (``backbone.`` names, larger grid: the host resizes) and
  Meta's ``sam_vit_b_*.pth`` layout (``image_encoder.*`` plus the decoders).
* timm Eva: the hub's EVA-02 B layout (separate q/k/v) into the fused host gives timm's
  features from the same file.
* mmseg ViT: Meta's DINOv2 layout and mmpretrain's CLIP file give the features of the
  mmpretrain ViT loading the same file (layer scale folded into the mmseg host).
"""
import dataclasses

import pytest
import torch
from safetensors.torch import save_file
from timm import create_model
from timm.models import load_checkpoint

from conftest import build_host, build_petl, run
from test_pretrained_foundation import (_TO_META, assert_clean, features, load_pretrained,
                                        randomised, timm_kwargs)
from tiny_backbones import TINY_FOUNDATION, TinyBackbone
from vpetl_mm.compat.keys import rename_keys

HOSTS = {t.profile: t for t in TINY_FOUNDATION}
SAM, EVA, SEG = HOSTS['mmpretrain.ViTSAM'], HOSTS['timm.Eva'], HOSTS['mmseg.VisionTransformer']
# Meta's segment-anything names for ViTSAM's (written here, independently of the converter)
_TO_SAM = ((r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
           (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
           (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.lin1.'),
           (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.lin2.'),
           (r'^layers\.(\d+)\.', r'blocks.\1.'),
           (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
           (r'^channel_reduction\.', 'neck.'))


def renamed(state, table, prefix=''):
    return {prefix + k: v for k, v in rename_keys(state, table).items()}


def assert_host_holds(wrapper, source, skip=()):
    host = wrapper.backbone.state_dict()
    for key, value in source.items():
        if not any(s in key for s in skip):
            torch.testing.assert_close(host[key], value)


def test_sam_mmpretrain_file_at_a_larger_grid(tmp_path):
    big = dataclasses.replace(SAM, cfg={**SAM.cfg, 'img_size': 64})
    source = randomised(build_host(big)).state_dict()
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in source.items()}}, tmp_path / 'mm.pth')
    wrapper, report = load_pretrained(SAM, tmp_path / 'mm.pth', prefix='backbone.')
    assert_clean(report)
    # grid-sized: pos_embed and the global block's relative-position tables are resized
    assert_host_holds(wrapper, source, skip=('pos_embed', 'layers.1.attn.rel_pos'))


def test_sam_meta_file_loads_every_encoder_tensor(tmp_path):
    source = randomised(build_host(SAM)).state_dict()
    meta = renamed(source, _TO_SAM, prefix='image_encoder.')
    assert 'image_encoder.blocks.0.mlp.lin1.weight' in meta and 'image_encoder.neck.1.bias' in meta
    meta['mask_decoder.iou_token.weight'] = torch.randn(1, 8)
    meta['prompt_encoder.no_mask_embed.weight'] = torch.randn(1, 8)
    torch.save(meta, tmp_path / 'sam_vit_b_01ec64.pth')
    wrapper, report = load_pretrained(SAM, tmp_path / 'sam_vit_b_01ec64.pth')
    assert_clean(report)
    assert_host_holds(wrapper, source)


@pytest.mark.parametrize('fmt', ['safetensors', 'pth'])
def test_eva_hub_file_with_separate_qkv_gives_timms_features(fmt, tmp_path):
    """eva02_base's own layout (qkv_fused=False: q_proj / k_proj / v_proj) into the fused
    host: every tensor arrives and the features are timm's from the same file."""
    kwargs = timm_kwargs(EVA, qkv_fused=False)
    source = randomised(create_model(EVA.cfg['model_name'], **kwargs))  # as TIMMBackbone
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    assert 'blocks.0.attn.k_proj.weight' in state and 'blocks.0.mlp.fc1_g.weight' in state
    path = tmp_path / f'model.{fmt}'
    save_file(state, path) if fmt == 'safetensors' else torch.save(state, path)
    wrapper, report = load_pretrained(EVA, path)
    assert_clean(report)
    reference = create_model(EVA.cfg['model_name'], **kwargs)
    load_checkpoint(reference, str(path), strict=True)
    reference.reset_classifier(0, '')  # as TIMMBackbone does
    expected = features(reference.eval(), EVA)
    torch.testing.assert_close(features(wrapper, EVA), expected, rtol=1e-5, atol=1e-5)


def test_eva_host_with_separate_qkv_is_refused_with_the_fix():
    separate = dataclasses.replace(EVA, cfg={**EVA.cfg, 'qkv_fused': False})
    with pytest.raises(ValueError, match='build it with qkv_fused=True'):
        build_petl(separate, dict(type='LoRA'))


def _mmpretrain_twin(**cfg) -> TinyBackbone:
    """An mmpretrain ViT and an mmseg ViT of one architecture (patch 14, 2 x 2 grid)."""
    return TinyBackbone('mmpretrain.VisionTransformer', 'mmpretrain', dict(
        type='VisionTransformer', img_size=28, patch_size=14, drop_rate=0., out_type='featmap',
        final_norm=True, arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                   feedforward_channels=64), **cfg), (2, 3, 28, 28))


def _mmseg_twin(**cfg) -> TinyBackbone:
    return dataclasses.replace(SEG, cfg={**SEG.cfg, 'img_size': 28, 'patch_size': 14, **cfg},
                               input_shape=(2, 3, 28, 28))


def test_meta_dinov2_file_into_mmseg_vit_gives_mmpretrains_features(tmp_path):
    """Meta's layout through compat/dinov2_weights.py's names; the layer scales (random, so
    folding them matters) land in out_proj and fc2."""
    mm = _mmpretrain_twin(layer_scale_init_value=0.5)
    source = randomised(build_host(mm)).state_dict()
    meta = dict(renamed(source, _TO_META), mask_token=torch.randn(1, 32))
    assert 'blocks.0.ls1.gamma' in meta
    torch.save(meta, tmp_path / 'dinov2_vits14_pretrain.pth')
    seg = _mmseg_twin()
    wrapper, report = load_pretrained(seg, tmp_path / 'dinov2_vits14_pretrain.pth')
    assert_clean(report, unexpected=['mask_token'])
    reference, _ = load_pretrained(mm, tmp_path / 'dinov2_vits14_pretrain.pth')
    torch.testing.assert_close(features(wrapper, seg), features(reference, mm), rtol=1e-4,
                               atol=1e-4)


def test_mmpretrain_clip_file_into_mmseg_vit_gives_mmpretrains_features(tmp_path):
    """mmpretrain's CLIP file as published (``backbone.`` names, a head): pre-norm, no patch
    bias; the head is reported, not loaded."""
    mm = _mmpretrain_twin(pre_norm=True)
    source = randomised(build_host(mm)).state_dict()
    torch.save({'state_dict': {**{f'backbone.{k}': v for k, v in source.items()},
                               'head.layers.head.weight': torch.randn(10, 32)}},
               tmp_path / 'clip.pth')
    seg = _mmseg_twin(pre_norm=True, patch_bias=False)
    wrapper, report = load_pretrained(seg, tmp_path / 'clip.pth')
    assert_clean(report, unexpected=['head.layers.head.weight'])
    reference, _ = load_pretrained(mm, tmp_path / 'clip.pth', prefix='backbone.')
    torch.testing.assert_close(features(wrapper, seg), features(reference, mm), rtol=1e-4,
                               atol=1e-4)


def test_mmseg_vit_own_file_and_lora_merge_keep_host_names(tmp_path):
    """A host-named state dict passes unchanged; LoRA on the qkv view merges into the host's
    in_proj_weight (the view holds no parameter of its own)."""
    wrapper = build_petl(SEG, dict(type='LoRA', rank=2)).eval()
    names = set(wrapper.backbone.state_dict())
    assert 'layers.0.attn.attn.in_proj_weight' in names and not any('attn.qkv.' in n for n in names)
    before = wrapper.backbone.layers[0].attn.attn.in_proj_weight.clone()
    with torch.no_grad():
        for p in wrapper.parameters():
            if p.requires_grad:
                p.normal_(std=0.1)
        out = run(wrapper, SEG)[0]
        wrapper.merge()
    assert not torch.equal(wrapper.backbone.layers[0].attn.attn.in_proj_weight, before)
    with torch.no_grad():
        torch.testing.assert_close(run(wrapper, SEG)[0], out, rtol=1e-5, atol=1e-5)
