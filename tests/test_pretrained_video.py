"""VideoMAE and Video Swin pretrained files load into PETL-wrapped mmaction2 backbones.

Each file is written here in its real key layout (wrapper key, prefixes, original module names,
the extra keys: decoder, heads) from a reference host with random weights, by inverting the
mmaction2 names independently of the library. Every file is loaded through the host's
``init_cfg=dict(type='Pretrained')`` and through a Runner-style ``load_from`` of a whole
Recognizer3D; every backbone tensor must then equal the reference.
"""
import copy
import dataclasses
import re
from types import SimpleNamespace
from typing import Dict, List

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model

from conftest import build_host, build_petl, captured, run
from tiny_backbones import TINY_BACKBONES
from vpetl_mm.compat.video_weights import (ADAPTFORMER, FINETUNE, MMACTION, PRETRAIN,
                                           convert_videomae, detect_videomae_layout, summarise)
from vpetl_mm.hooks import PretrainedLoadFromHook

VIT = next(t for t in TINY_BACKBONES if t.profile == 'mmaction.VisionTransformer')
SWIN = next(t for t in TINY_BACKBONES if t.profile == 'mmaction.SwinTransformer3D')
PETL = dict(type='AdaptFormer')
DIM = 32  # width of the tiny ViT and of the tiny Swin's last stage
FC_NORM = ['fc_norm.bias', 'fc_norm.weight']
DECODER_BLOCK = ['norm1.weight', 'norm1.bias', 'attn.qkv.weight', 'attn.q_bias', 'attn.v_bias',
                 'attn.proj.weight', 'attn.proj.bias', 'norm2.weight', 'norm2.bias',
                 'mlp.fc1.weight', 'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias']
DECODER_EXTRAS = ['decoder.norm.weight', 'decoder.norm.bias', 'decoder.head.weight',
                  'decoder.head.bias', 'encoder_to_decoder.weight', 'mask_token']
CLS_HEAD = ['cls_head.fc_cls.bias', 'cls_head.fc_cls.weight']


# -- reference weights and the layouts found in the wild --------------------------------------
def reference(tiny, **overrides) -> Dict[str, torch.Tensor]:
    """The state dict of a host whose every parameter is random (equality then means loaded)."""
    host = build_host(dataclasses.replace(tiny, cfg={**tiny.cfg, **overrides}), seed=123)
    with torch.no_grad():
        for param in host.parameters():
            param.normal_()
    return {k: v.clone() for k, v in host.state_dict().items()}


def original_name(key: str) -> str:
    """mmaction2 VisionTransformer name -> the VideoMAE repository's name."""
    return (key.replace('patch_embed.projection.', 'patch_embed.proj.')
            .replace('mlp.layers.0.0.', 'mlp.fc1.').replace('mlp.layers.1.', 'mlp.fc2.'))


def videomae_pretrain(mm) -> dict:
    """VideoMAE's self-supervised checkpoint: encoder (no fc_norm, pos_embed not persisted, its
    own final norm) and decoder, under 'model'."""
    enc = {f'encoder.{original_name(k)}': v for k, v in mm.items()
           if k not in FC_NORM and k != 'pos_embed'}
    enc.update({'encoder.norm.weight': torch.randn(DIM), 'encoder.norm.bias': torch.randn(DIM)})
    dec = {f'decoder.blocks.{i}.{n}': torch.randn(3) for i in range(2) for n in DECODER_BLOCK}
    dec.update({k: torch.randn(3) for k in DECODER_EXTRAS})
    return {'model': {**enc, **dec}}


def adaptformer_converted(mm) -> dict:
    """AdaptFormer's convert.py: encoder keys only, qkv split into q/k/v_proj, no mlp. level."""
    out = {}
    for key, value in videomae_pretrain(mm)['model'].items():
        if not key.startswith('encoder.'):
            continue
        if key.endswith('attn.qkv.weight'):
            for name, part in zip('qkv', value.chunk(3)):
                out[key.replace('qkv.weight', f'{name}_proj.weight')] = part
            continue
        out[key.replace('.mlp.fc', '.fc')] = value
    return {'model': out}


def videomae_finetune(mm) -> dict:
    """A fine-tuned VideoMAE (original repository): no encoder., fc_norm and head, 'module'."""
    state = {original_name(k): v for k, v in mm.items()}
    return {'module': {**state, 'head.weight': torch.randn(5, DIM), 'head.bias': torch.randn(5)}}


def mmaction_file(mm) -> dict:
    """An mmaction2 Recognizer3D checkpoint: backbone.* in host names, cls_head.*."""
    state = {f'backbone.{k}': v for k, v in mm.items()}
    return {'meta': {'mmaction_version': '1.2.0'}, 'state_dict': {
        **state, 'cls_head.fc_cls.weight': torch.randn(3, DIM), 'cls_head.fc_cls.bias':
        torch.randn(3)}}


def videoswin_k400(mm) -> dict:
    """swin_base_patch244_window877_kinetics400_22k.pth: the final norm is 'norm', 400 classes."""
    state = {f'backbone.{"norm." + k[6:] if k.startswith("norm1.") else k}': v
             for k, v in mm.items()}
    return {'meta': {}, 'state_dict': {**state, 'cls_head.fc_cls.weight': torch.randn(400, DIM),
                                       'cls_head.fc_cls.bias': torch.randn(400)}}


LAYOUTS = {PRETRAIN: (VIT, videomae_pretrain), ADAPTFORMER: (VIT, adaptformer_converted),
           FINETUNE: (VIT, videomae_finetune), MMACTION: (VIT, mmaction_file),
           'videoswin_k400': (SWIN, videoswin_k400), 'swin3d_mmaction': (SWIN, mmaction_file)}
# host tensors a file does not hold (new in the host), and its keys that cannot load
NEW = {PRETRAIN: FC_NORM + ['pos_embed'], ADAPTFORMER: FC_NORM + ['pos_embed']}
NOT_LOADED = {PRETRAIN: sorted([f'decoder.blocks.{i}.{n}' for i in range(2) for n in DECODER_BLOCK]
                               + DECODER_EXTRAS + ['norm.bias', 'norm.weight']),
              ADAPTFORMER: ['norm.bias', 'norm.weight'], FINETUNE: ['head.bias', 'head.weight'],
              MMACTION: CLS_HEAD, 'videoswin_k400': CLS_HEAD, 'swin3d_mmaction': CLS_HEAD}


# -- helpers ---------------------------------------------------------------------------------
def pretrained(tiny, path, petl=PETL, **overrides):
    wrapper = build_petl(tiny, petl, seed=7, init_cfg=dict(type='Pretrained', checkpoint=str(path)),
                         **overrides)
    with captured() as records:
        wrapper.init_weights()
    return wrapper.eval(), [r.getMessage() for r in records]


def recognizer(tiny, **overrides):
    head = (dict(type='TimeSformerHead', num_classes=3, in_channels=DIM) if tiny is VIT else
            dict(type='I3DHead', num_classes=3, in_channels=DIM))
    cfg = dict(type='Recognizer3D', cls_head=head,
               backbone=dict(type='vpetl_mm.PETLBackbone', petl=PETL,
                             backbone={**copy.deepcopy(tiny.cfg), **overrides}),
               data_preprocessor=dict(type='ActionDataPreprocessor', format_shape='NCTHW'))
    torch.manual_seed(7)
    with DefaultScope.overwrite_default_scope('mmaction'):
        model = MODELS.build(cfg)
    model.init_weights()  # the Runner initialises the model before load_from
    return model


def runner_load_from(model, path, hook=True) -> List[str]:
    """What ``Runner.load_checkpoint`` does for ``load_from``, with the hook in custom_hooks."""
    with captured() as records:
        checkpoint = _load_checkpoint(str(path), map_location='cpu')
        if hook:
            PretrainedLoadFromHook().after_load_checkpoint(SimpleNamespace(model=model),
                                                           checkpoint)
        _load_checkpoint_to_model(model, checkpoint, strict=False)
    return [r.getMessage() for r in records]


def petl_state(wrapper) -> Dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in wrapper.backbone.state_dict().items() if '.petl_' in k}


def check_loaded(wrapper, mm, layout, unexpected, petl_before=None) -> None:
    state = wrapper.backbone.state_dict()
    new = set(NEW.get(layout, []))
    assert [k for k in mm if k not in new and not torch.equal(state[k], mm[k])] == []
    if 'fc_norm.weight' in new:  # new: keeps LayerNorm's init
        assert torch.equal(state['fc_norm.weight'], torch.ones(DIM))
    petl = petl_state(wrapper)
    assert petl and all(not v.any() for k, v in petl.items() if '.up.' in k)  # zero-init branch
    if petl_before is not None:
        assert all(torch.equal(petl[k], petl_before[k]) for k in petl)
    trainable = {n for n, p in wrapper.backbone.named_parameters() if p.requires_grad}
    assert trainable == wrapper.trainable_names and {k for k in petl} <= trainable
    assert not trainable & (set(mm) - new)  # every loaded host tensor stays frozen
    report = wrapper.load_reporter.last
    assert not report['petl_loaded'] and report['host_missing'] == sorted(new)
    assert report['unexpected'] == unexpected


# -- through the host's Pretrained init_cfg --------------------------------------------------
@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_pretrained_init_loads_every_layout(layout, tmp_path):
    tiny, write = LAYOUTS[layout]
    mm = reference(tiny)
    torch.save(write(mm), tmp_path / 'ckpt.pth')
    wrapper, messages = pretrained(tiny, tmp_path / 'ckpt.pth')
    check_loaded(wrapper, mm, layout, NOT_LOADED[layout])
    assert wrapper.load_reporter.last['context'] == 'host init_weights'
    lines = [m for m in messages if re.match(r'(VideoMAE|Video Swin) weights', m)]
    assert len(lines) == 1, messages  # one summary line per conversion
    if layout == PRETRAIN:  # 30 decoder.* tensors and 2 more keys summarised, not listed
        assert 'decoder.* (30), encoder_to_decoder.*, mask_token' in lines[0]
        assert 'fc_norm is new' in lines[0] and 'norm.* not loaded' in lines[0]
        assert not any(m.count('decoder.') > 10 for m in messages)
    if layout == 'videoswin_k400':
        assert 'norm.* -> norm1.*' in lines[0] and 'cls_head.* (2)' in lines[0]
    # The wrapper computes what the reference computes (the new fc_norm copied over).
    with torch.no_grad():
        for name in NEW.get(layout, []):
            if name in FC_NORM:
                wrapper.backbone.get_parameter(name).copy_(mm[name])
        src = build_host(tiny)
        src.load_state_dict(mm)
        src.eval()
        for got, want in zip(run(wrapper, tiny), run(src, tiny), strict=True):
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_runner_load_from_of_a_recognizer_loads_every_layout(layout, tmp_path):
    tiny, write = LAYOUTS[layout]
    mm = reference(tiny)
    torch.save(write(mm), tmp_path / 'ckpt.pth')
    model = recognizer(tiny)
    before = petl_state(model.backbone)
    messages = runner_load_from(model, tmp_path / 'ckpt.pth')
    # cls_head.* now goes to the recognizer's head; the hook keeps only a pretrain's encoder.
    unexpected = [k for k in NOT_LOADED[layout] if re.match(r'(norm|head)\.', k)]
    check_loaded(model.backbone, mm, layout, unexpected, petl_before=before)
    if layout == PRETRAIN:
        assert any('not loaded, the VideoMAE decoder: decoder.* (30)' in m for m in messages)
    assert model.backbone.load_reporter.last['context'] == 'checkpoint load'
    if layout in (MMACTION, 'swin3d_mmaction'):  # the head is loaded too, as mmaction does
        assert torch.equal(model.cls_head.fc_cls.weight,
                           torch.load(tmp_path / 'ckpt.pth')['state_dict'][CLS_HEAD[1]])


@pytest.mark.parametrize('layout', [PRETRAIN, FINETUNE])
def test_load_from_without_the_hook_loads_nothing_and_says_so(layout, tmp_path):
    torch.save(LAYOUTS[layout][1](reference(VIT)), tmp_path / 'ckpt.pth')
    model = recognizer(VIT)
    messages = runner_load_from(model, tmp_path / 'ckpt.pth', hook=False)
    assert model.backbone.load_reporter.last['host_loaded'] == []
    assert any(m.startswith('Nothing loaded into the backbone') for m in messages)


# -- the cases around the layouts ------------------------------------------------------------
def test_other_window_size_is_a_clear_error(tmp_path):
    torch.save(videoswin_k400(reference(SWIN)), tmp_path / 'k400.pth')  # window (2, 4, 4)
    key = 'layers.0.blocks.0.attn.relative_position_bias_table'
    with pytest.raises(ValueError, match=re.escape(f'{key}: the checkpoint has shape (147, 1), '
                                                   'the backbone (27, 1)')) as error:
        pretrained(SWIN, tmp_path / 'k400.pth', window_size=(2, 2, 2))
    assert 'Set window_size to the checkpoint' in str(error.value)
    with pytest.raises(ValueError, match='heads differ'):
        pretrained(SWIN, tmp_path / 'k400.pth', arch=dict(embed_dims=16, depths=[2, 2],
                                                          num_heads=[2, 2]))


def test_fixed_pos_embed_of_another_size_is_dropped(tmp_path):
    mm = reference(VIT, num_frames=8)  # pos_embed (1, 64, 32); the host's is (1, 32, 32)
    torch.save(videomae_finetune(mm), tmp_path / 'ft.pth')
    wrapper, messages = pretrained(VIT, tmp_path / 'ft.pth')
    state = wrapper.backbone.state_dict()
    assert torch.equal(state['pos_embed'], build_host(VIT).pos_embed)  # the host's sinusoid
    assert all(torch.equal(state[k], v) for k, v in mm.items() if k != 'pos_embed')
    assert any('pos_embed (1, 64, 32) dropped' in m for m in messages)


@pytest.mark.parametrize('source, resize', [(dict(img_size=48), 'space'),
                                            (dict(num_frames=8), 'time')])
def test_learnable_pos_embed_is_interpolated(source, resize, tmp_path):
    mm = reference(VIT, use_learnable_pos_emb=True, **source)
    torch.save(videomae_finetune(mm), tmp_path / 'ft.pth')
    wrapper, messages = pretrained(VIT, tmp_path / 'ft.pth', use_learnable_pos_emb=True)
    pos = mm['pos_embed']
    if resize == 'space':  # VideoMAE's rule: bicubic per frame, 2 x 6x6 -> 2 x 4x4 tokens
        grid = pos.reshape(2, 6, 6, DIM).permute(0, 3, 1, 2)
        want = F.interpolate(grid, size=(4, 4), mode='bicubic', align_corners=False)
        want = want.permute(0, 2, 3, 1).reshape(1, 32, DIM)
    else:  # 4 -> 2 temporal tokens, linearly, per spatial position
        seq = pos.reshape(4, 16 * DIM).t()[None]
        want = F.interpolate(seq, size=2, mode='linear', align_corners=False)[0].t()
        want = want.reshape(1, 32, DIM)
    torch.testing.assert_close(wrapper.backbone.pos_embed.data, want)
    assert any('pos_embed interpolated (1, 72, 32)' in m or 'pos_embed interpolated (1, 64, 32)'
               in m for m in messages)


def test_pretrain_norm_loads_when_the_host_does_not_mean_pool(tmp_path):
    mm = reference(VIT, use_mean_pooling=False)
    checkpoint = videomae_pretrain(mm)
    checkpoint['model'].update({'encoder.norm.weight': mm['norm.weight'],
                                'encoder.norm.bias': mm['norm.bias']})
    torch.save(checkpoint, tmp_path / 'pre.pth')
    wrapper, _ = pretrained(VIT, tmp_path / 'pre.pth', use_mean_pooling=False)
    state = wrapper.backbone.state_dict()
    assert all(torch.equal(state[k], v) for k, v in mm.items() if k != 'pos_embed')
    assert wrapper.load_reporter.last['host_missing'] == ['pos_embed']


def test_other_pretrained_routes(tmp_path):
    torch.save(mmaction_file(mm := reference(VIT)), tmp_path / 'vit.pth')
    wrapper = build_petl(VIT, PETL, init_cfg=dict(type='Pretrained', prefix='backbone.',
                                                  checkpoint=str(tmp_path / 'vit.pth')))
    wrapper.init_weights()  # mmaction configs load recognizer files with prefix='backbone.'
    assert all(torch.equal(wrapper.backbone.state_dict()[k], v) for k, v in mm.items())
    torch.save(videoswin_k400(mm := reference(SWIN)), tmp_path / 'swin.pth')
    # Swin3D's own pretrained= (3-D when pretrained2d=False), and init_cfg with the default
    # pretrained2d=True, where mmaction would try to inflate pretrained=None (TypeError).
    for host in (dict(pretrained=str(tmp_path / 'swin.pth')),
                 dict(pretrained2d=True, init_cfg=dict(type='Pretrained',
                                                       checkpoint=str(tmp_path / 'swin.pth')))):
        wrapper = build_petl(SWIN, PETL, **host)
        wrapper.init_weights()
        assert all(torch.equal(wrapper.backbone.state_dict()[k], v) for k, v in mm.items())


class NotATensor:
    """A pickled object a weights-only load must refuse."""


@pytest.mark.parametrize('tiny', [VIT, SWIN], ids=['videomae', 'swin3d'])
def test_pretrained_loading_is_weights_only(tiny, tmp_path):
    torch.save({'model': reference(tiny), 'args': NotATensor()}, tmp_path / 'evil.pth')
    # the message says how to re-save the weights (original VideoMAE files pickle `args`)
    with pytest.raises(ValueError, match=r'pickled Python objects.*weights_only=False.*'
                                         r'weights\.pth.*Weights only load failed'):
        pretrained(tiny, tmp_path / 'evil.pth')


# -- conversion units ------------------------------------------------------------------------
def test_layout_detection_and_summary():
    assert detect_videomae_layout({'encoder.blocks.0.attn.qkv.weight'}) == PRETRAIN
    assert detect_videomae_layout({'encoder.blocks.0.attn.q_proj.weight'}) == ADAPTFORMER
    assert detect_videomae_layout({'blocks.0.fc1.weight'}) == ADAPTFORMER
    assert detect_videomae_layout({'blocks.0.mlp.fc1.weight', 'head.weight'}) == FINETUNE
    assert detect_videomae_layout({'blocks.0.mlp.layers.0.0.weight'}) == MMACTION
    assert detect_videomae_layout({'blocks.0.petl_adaptformer_mlp.up.weight'}) is None
    assert summarise(['decoder.a', 'decoder.b', 'mask_token', 'head.w']) == \
        'decoder.* (2), mask_token, head.*'


def test_split_qkv_fuses_in_q_k_v_order_and_biases_map():
    q, k, v = torch.randn(3, 4, 4)
    out, extra = convert_videomae({
        'blocks.0.attn.v_proj.weight': v, 'blocks.0.attn.q_proj.weight': q,
        'blocks.0.attn.k_proj.weight': k, 'blocks.0.attn.q_proj.bias': q[0],
        'blocks.0.attn.v_proj.bias': v[0], 'blocks.0.attn.k_proj.bias': torch.zeros(4)})
    assert torch.equal(out['blocks.0.attn.qkv.weight'], torch.cat([q, k, v]))
    assert torch.equal(out['blocks.0.attn.q_bias'], q[0]) and extra == []
    with pytest.raises(ValueError, match='cannot fuse'):
        convert_videomae({'blocks.0.attn.q_proj.weight': q})

