"""Foundation-model checkpoints in their published key layouts load into PETL-wrapped hosts.

Each test writes a tiny file in one published layout and loads it through the host's
``init_cfg=dict(type='Pretrained')`` (the route configs use), with a PETL method injected; the
load report must cover every host tensor, and the features must equal those of an independent
reference: timm's own loader for timm files, and for Meta's DINOv2 layout both timm and the
mmpretrain ViT (one file, two libraries, the same features).
"""
import dataclasses

import pytest
import torch
from mmengine.registry import MODELS, DefaultScope
from safetensors.torch import save_file
from timm import create_model
from timm.models import load_checkpoint
from timm.models.vision_transformer import checkpoint_filter_fn

from conftest import build_host, build_petl, run
from tiny_backbones import TINY_FOUNDATION
from vpetl_mm.compat.keys import rename_keys

VARIANTS = {t.id: t for t in TINY_FOUNDATION}
TIMM_HOSTS = [VARIANTS['timm.VisionTransformer:dinov2-reg4'],
              VARIANTS['timm.VisionTransformer:clip']]
MM_DINO = VARIANTS['mmpretrain.VisionTransformer:dinov2']
MM_HOSTS = [MM_DINO, VARIANTS['mmpretrain.VisionTransformer:clip'],
            VARIANTS['mmpretrain.ViTEVA02'], VARIANTS['mmpretrain.ConvNeXt']]
LORA = dict(type='LoRA', rank=2)
# Meta's DINOv2 names for the mmpretrain ViT's (written here, independently of the converter)
_TO_META = ((r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
            (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
            (r'^layers\.(\d+)\.attn\.gamma1\.weight', r'blocks.\1.ls1.gamma'),
            (r'^layers\.(\d+)\.ffn\.gamma2\.weight', r'blocks.\1.ls2.gamma'),
            (r'^layers\.(\d+)\.attn\.', r'blocks.\1.attn.'),
            (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
            (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
            (r'^patch_embed\.projection\.', 'patch_embed.proj.'), (r'^ln1\.', 'norm.'))


def randomised(module):
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(std=0.2)
    module.eval()  # mmpretrain hosts' train() returns None: no chaining
    return module


def timm_kwargs(tiny, **overrides) -> dict:
    return {k: v for k, v in {**tiny.cfg, **overrides}.items()
            if k not in ('type', 'model_name', 'pretrained')}


def timm_reference(tiny, path, **overrides):
    """timm's own model and loader (its checkpoint_filter_fn), as TIMMBackbone builds it."""
    model = create_model(tiny.cfg['model_name'], num_classes=0, global_pool='',
                         **timm_kwargs(tiny, **overrides))
    load_checkpoint(model, str(path), filter_fn=checkpoint_filter_fn, strict=True)
    return model.eval()


def load_pretrained(tiny, path, petl=LORA, **cfg):
    wrapper = build_petl(tiny, petl, init_cfg=dict(type='Pretrained', checkpoint=str(path), **cfg))
    wrapper.init_weights()
    return wrapper.eval(), wrapper.load_reporter.last


def assert_clean(report, unexpected=()):
    assert report['context'] == 'host init_weights'
    assert report['host_missing'] == [] and report['unexpected'] == list(unexpected)


def features(model, tiny):
    with torch.no_grad():
        return run(model, tiny)[0]


@pytest.mark.parametrize('tiny', TIMM_HOSTS, ids=lambda t: t.variant)
@pytest.mark.parametrize('fmt', ['safetensors', 'pth'])
def test_timm_file_loads_as_timm_loads_it(tiny, fmt, tmp_path):
    """The hub's timm state dict, trained at a larger grid (timm resamples the position
    embedding); safetensors as on the hub, or a .pth."""
    source = randomised(create_model(tiny.cfg['model_name'], num_classes=0,
                                     **timm_kwargs(tiny, img_size=56)))
    path = tmp_path / f'model.{fmt}'
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file(state, path) if fmt == 'safetensors' else torch.save(state, path)
    wrapper, report = load_pretrained(tiny, path)
    assert_clean(report)
    torch.testing.assert_close(features(wrapper, tiny), features(timm_reference(tiny, path), tiny))


def meta_dinov2_from_timm(state, reg: bool) -> dict:
    """timm DINOv2 state dict -> Meta's layout (inverse of timm's _convert_dinov2 for
    registers: Meta keeps the class position in pos_embed and has a mask token)."""
    out = dict(state, mask_token=torch.randn(1, state['cls_token'].shape[-1]))
    if reg:
        cls_pos = torch.randn_like(out['cls_token'])
        out['register_tokens'] = out.pop('reg_token')
        out['cls_token'] = out['cls_token'] - cls_pos
        out['pos_embed'] = torch.cat((cls_pos, out['pos_embed']), dim=1)
    return out


def test_meta_dinov2_register_file_loads_into_timm(tmp_path):
    tiny = TIMM_HOSTS[0]
    source = randomised(create_model(tiny.cfg['model_name'], num_classes=0, **timm_kwargs(tiny)))
    torch.save(source.state_dict(), tmp_path / 'timm.pth')
    torch.save(meta_dinov2_from_timm(source.state_dict(), reg=True), tmp_path / 'meta.pth')
    wrapper, report = load_pretrained(tiny, tmp_path / 'meta.pth')
    assert_clean(report)
    expected = features(timm_reference(tiny, tmp_path / 'timm.pth'), tiny)
    torch.testing.assert_close(features(wrapper, tiny), expected)


@pytest.mark.parametrize('tiny', MM_HOSTS, ids=lambda t: t.id)
def test_mmpretrain_converted_file_loads(tiny, tmp_path):
    """mmpretrain's published DINOv2 / CLIP / EVA-02 / ConvNeXt files: its own names under
    'backbone.'; the ViTs' trained at a larger grid (the host resizes pos_embed)."""
    grid = {'img_size': 2 * tiny.cfg['img_size']} if 'img_size' in tiny.cfg else {}
    big = dataclasses.replace(tiny, cfg={**tiny.cfg, **grid})
    source = randomised(build_host(big))
    torch.save({'meta': {}, 'state_dict': {f'backbone.{k}': v for k, v in
                                           source.state_dict().items()}}, tmp_path / 'mm.pth')
    wrapper, report = load_pretrained(tiny, tmp_path / 'mm.pth', prefix='backbone.')
    assert_clean(report)
    host = wrapper.backbone.state_dict()
    for key, value in source.state_dict().items():
        # grid-sized: pos_embed is resized, EVA-02's RoPE tables are the host's own
        if key != 'pos_embed' and 'rope.' not in key:
            torch.testing.assert_close(host[key], value)


def test_meta_dinov2_file_loads_into_mmpretrain_like_timm(tmp_path):
    """Meta's dinov2_vit*14_pretrain.pth layout into the mmpretrain ViT: every tensor
    arrives, and the features equal timm's from the same file."""
    mm = dataclasses.replace(MM_DINO, cfg={**MM_DINO.cfg, 'out_type': 'raw'})
    source = randomised(build_host(mm)).state_dict()
    meta = dict(rename_keys(source, _TO_META), mask_token=torch.randn(1, 32))
    torch.save(meta, tmp_path / 'dinov2_vits14_pretrain.pth')
    wrapper, report = load_pretrained(mm, tmp_path / 'dinov2_vits14_pretrain.pth')
    assert_clean(report, unexpected=['mask_token'])
    host = wrapper.backbone.state_dict()
    assert all(torch.equal(host[k], v) for k, v in source.items())
    timm_dino = dataclasses.replace(TIMM_HOSTS[0], cfg=dict(
        type='TIMMBackbone', model_name='vit_small_patch14_dinov2', img_size=28, embed_dim=32,
        depth=3, num_heads=2, mlp_ratio=2., init_values=0.5))
    reference = timm_reference(timm_dino, tmp_path / 'dinov2_vits14_pretrain.pth')
    torch.testing.assert_close(features(wrapper, mm), features(reference, mm), rtol=1e-4,
                               atol=1e-4)


def test_meta_register_file_into_mmpretrain_names_the_host_that_takes_it(tmp_path):
    state = dict(randomised(build_host(MM_DINO)).state_dict(), mask_token=torch.zeros(1, 32),
                 register_tokens=torch.zeros(1, 4, 32))
    state = {k.replace('layers.0.attn.gamma1.weight', 'blocks.0.ls1.gamma'): v
             for k, v in state.items()}
    torch.save(state, tmp_path / 'dinov2_vits14_reg4_pretrain.pth')
    with pytest.raises(ValueError, match=r"'register_tokens'.*vit_base_patch14_reg4_dinov2"):
        load_pretrained(MM_DINO, tmp_path / 'dinov2_vits14_reg4_pretrain.pth')


def test_vpt_prompts_follow_the_class_and_register_tokens():
    """timm's num_prefix_tokens counts the 4 registers: prompts go after all 5 prefix tokens."""
    tiny = TIMM_HOSTS[0]
    wrapper = build_petl(tiny, dict(type='VPT', length=3)).eval()
    assert wrapper.anatomy.num_prefix_tokens() == 5
    seen = []
    wrapper.anatomy.blocks[0].module.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    features(wrapper, tiny)
    prompts = [p for n, p in wrapper.named_parameters() if p.requires_grad and 'vpt' in n]
    tokens = seen[0]
    assert tokens.shape[1] == 5 + 3 + 4  # prefix, prompts, the 2 x 2 patches
    torch.testing.assert_close(tokens[0, 5:8], prompts[0].reshape(-1, 3, 32)[0])


@pytest.mark.parametrize('host,petl,why', [
    ('mmpretrain.ViTEVA02', 'VPT', r'inserts tokens, which that host cannot position'),
    ('mmpretrain.ConvNeXt', 'UTuning', r"needs the site\(s\) \['attn', 'proj', 'qkv'\]"),
])
def test_refusals_say_why(host, petl, why):
    with pytest.raises(ValueError, match=f'{petl} is not supported on .{host}. backbones: .*{why}'):
        build_petl(VARIANTS[host], dict(type=petl))
