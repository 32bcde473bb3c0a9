"""Google ViT ``.npz`` checkpoints load into PETL-wrapped mmpretrain ``VisionTransformer``.

The file is written here in Google's JAX layout from random NumPy arrays (independently of both
loaders), then read by timm's own ``_load_weights`` and by ``vpetl_mm``: equal features prove
the key mapping and the reshapes, not only that conversion and an inverse agree.
"""
from typing import Dict

import numpy as np
import pytest
import torch
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import load_checkpoint
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer as TimmViT
from timm.models.vision_transformer import _load_weights

from conftest import captured
from vpetl_mm.compat.vit_npz import (convert_google_vit, load_npz, resize_pos_embed_grid,
                                     split_google_vit)

DIM, HEADS, DEPTH, MLP, PATCH = 64, 4, 2, 256, 8
ARCH = dict(embed_dims=DIM, num_layers=DEPTH, num_heads=HEADS, feedforward_channels=MLP)
DROPPED = ['head/bias', 'head/kernel', 'pre_logits/bias', 'pre_logits/kernel']
ATOL = 1e-5


# -- Google's layout, written independently ----------------------------------------------------
def google_arrays(grid: int = 4, dim: int = DIM, heads: int = HEADS, depth: int = DEPTH,
                  seed: int = 0) -> Dict[str, np.ndarray]:
    """Random weights named and shaped as in ``ViT-B_16.npz`` (JAX kernels: (in, out), HWIO)."""
    rng = np.random.default_rng(seed)

    def r(*shape, mean=0., std=0.2):
        return (mean + std * rng.standard_normal(shape)).astype(np.float32)

    hd, mlp = dim // heads, 4 * dim
    w = {'embedding/kernel': r(PATCH, PATCH, 3, dim, std=0.05), 'embedding/bias': r(dim),
         'cls': r(1, 1, dim), 'Transformer/posembed_input/pos_embedding': r(1, 1 + grid**2, dim),
         'Transformer/encoder_norm/scale': r(dim, mean=1.),
         'Transformer/encoder_norm/bias': r(dim),
         'pre_logits/kernel': r(dim, dim), 'pre_logits/bias': r(dim),
         'head/kernel': r(dim, 11), 'head/bias': r(11)}
    for i in range(depth):
        b = f'Transformer/encoderblock_{i}/'
        mha = b + 'MultiHeadDotProductAttention_1/'
        for ln in ('LayerNorm_0', 'LayerNorm_2'):
            w.update({f'{b}{ln}/scale': r(dim, mean=1.), f'{b}{ln}/bias': r(dim)})
        for n in ('query', 'key', 'value'):
            w.update({f'{mha}{n}/kernel': r(dim, heads, hd), f'{mha}{n}/bias': r(heads, hd)})
        w.update({f'{mha}out/kernel': r(heads, hd, dim), f'{mha}out/bias': r(dim),
                  f'{b}MlpBlock_3/Dense_0/kernel': r(dim, mlp), f'{b}MlpBlock_3/Dense_0/bias':
                  r(mlp), f'{b}MlpBlock_3/Dense_1/kernel': r(mlp, dim, std=0.1),
                  f'{b}MlpBlock_3/Dense_1/bias': r(dim)})
    return w


def write_npz(path, arrays: Dict[str, np.ndarray], prefix: str = '') -> str:
    np.savez(path, **{prefix + k: v for k, v in arrays.items()})
    return str(path)


# -- the two loaders ---------------------------------------------------------------------------
def timm_vit(path: str, img: int) -> TimmViT:
    torch.manual_seed(0)
    model = TimmViT(img_size=img, patch_size=PATCH, embed_dim=DIM, depth=DEPTH, num_heads=HEADS,
                    mlp_ratio=4, class_token=True, num_classes=0)
    _load_weights(model, path)  # timm's Google loader (bilinear pos_embed resize, timm >= 0.9)
    return model.eval()


def build(path: str, img: int, petl=None, **host):
    cfg = dict(type='vpetl_mm.PETLBackbone', petl=petl or dict(type='Frozen'),
               backbone=dict(type='VisionTransformer', arch=ARCH, img_size=img, patch_size=PATCH,
                             drop_rate=0., out_type='cls_token',
                             init_cfg=dict(type='Pretrained', checkpoint=path), **host))
    torch.manual_seed(3)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def pretrained(path: str, img: int, petl=None, **host):
    wrapper = build(path, img, petl, **host)
    with captured() as records:
        wrapper.init_weights()
    return wrapper.eval(), [r.getMessage() for r in records]


def features(model, img: int, ours: bool) -> torch.Tensor:
    torch.manual_seed(1)
    x = torch.randn(2, 3, img, img)
    with torch.no_grad():
        return model(x)[0] if ours else model.forward_features(x)[:, 0]


# -- tests -------------------------------------------------------------------------------------
@pytest.mark.parametrize('prefix', ['', 'opt/target/'])
def test_npz_loads_like_timm(prefix, tmp_path):
    path = write_npz(tmp_path / 'vit.npz', google_arrays(), prefix)
    wrapper, messages = pretrained(path, 32)
    ref = timm_vit(path, 32)
    assert torch.allclose(features(wrapper, 32, True), features(ref, 32, False), atol=ATOL)
    report = wrapper.load_reporter.last
    assert report['context'] == 'host init_weights' and report['host_missing'] == []
    assert report['unexpected'] == [prefix + k for k in DROPPED]  # listed, not loaded
    assert len(report['host_loaded']) == len(wrapper.backbone.state_dict())
    line = [m for m in messages if m.startswith('Google ViT weights')]
    assert len(line) == 1 and 'head/* (2), pre_logits/* (2)' in line[0], messages
    assert not any(p.requires_grad for p in wrapper.backbone.parameters())  # Frozen


def test_converted_keys_are_the_hosts(tmp_path):
    state, unused = split_google_vit(google_arrays(), num_layers=None)
    host = build(write_npz(tmp_path / 'vit.npz', google_arrays()), 32).backbone
    assert set(state) == set(host.state_dict())  # final_norm=True: encoder_norm -> ln1
    assert all(state[k].shape == v.shape for k, v in host.state_dict().items())
    assert unused == DROPPED
    assert set(convert_google_vit(google_arrays(), num_layers=1)) == {
        k for k in state if not k.startswith('layers.1.')}


@pytest.mark.parametrize('file_grid,host_grid', [(4, 6), (6, 4)])
def test_pos_embed_resize(file_grid, host_grid, tmp_path):
    arrays = google_arrays(grid=file_grid)
    path = write_npz(tmp_path / 'vit.npz', arrays)
    img = host_grid * PATCH
    ref = timm_vit(path, img)
    # timm >= 0.9 resizes Google files bilinearly: the host's interpolate_mode reproduces it.
    wrapper, messages = pretrained(path, img, interpolate_mode='bilinear')
    assert torch.allclose(features(wrapper, img, True), features(ref, img, False), atol=ATOL)
    assert any('pos_embed resized' in m and 'bilinear' in m for m in messages), messages
    assert wrapper.load_reporter.last['host_missing'] == []
    # Default bicubic, no antialias: timm 0.6.5 (the V-PETL reference) and mmpretrain's rule.
    pos = torch.from_numpy(arrays['Transformer/posembed_input/pos_embedding'])
    with torch.no_grad():
        ref.pos_embed.copy_(resample_abs_pos_embed(pos, (host_grid, host_grid),
                                                   num_prefix_tokens=1, interpolation='bicubic',
                                                   antialias=False))
    wrapper, _ = pretrained(path, img)
    assert torch.allclose(features(wrapper, img, True), features(ref, img, False), atol=ATOL)
    host = wrapper.backbone
    assert torch.equal(host.pos_embed[:, 0], pos[:, 0])  # the class position is kept
    assert torch.allclose(host.pos_embed, host.resize_pos_embed(
        pos, (file_grid, file_grid), (host_grid, host_grid), 'bicubic', 1), atol=1e-6)
    assert torch.allclose(resize_pos_embed_grid(pos, (host_grid, host_grid)), host.pos_embed)


def test_lora_still_loads_the_host_weights(tmp_path):
    path = write_npz(tmp_path / 'vit.npz', google_arrays())
    wrapper, _ = pretrained(path, 32, petl=dict(type='LoRA', rank=4))
    # LoRA's up-projection starts at zero, so the adapted model still computes timm's function.
    assert torch.allclose(features(wrapper, 32, True), features(timm_vit(path, 32), 32, False),
                          atol=ATOL)
    report = wrapper.load_reporter.last
    assert report['host_missing'] == [] and report['unexpected'] == DROPPED
    assert report['petl_loaded'] == [] and report['petl_missing']  # LoRA keeps its init
    trainable = {n for n, p in wrapper.backbone.named_parameters() if p.requires_grad}
    assert trainable and all('lora' in n for n in trainable)


def test_pth_checkpoints_keep_the_host_behaviour(tmp_path):
    """The documented one-off conversion to .pth loads through mmengine as before."""
    path = write_npz(tmp_path / 'vit.npz', google_arrays())
    torch.save({'state_dict': convert_google_vit(load_npz(path))}, tmp_path / 'vit.pth')
    wrapper, _ = pretrained(str(tmp_path / 'vit.pth'), 32)
    assert torch.allclose(features(wrapper, 32, True), features(timm_vit(path, 32), 32, False),
                          atol=ATOL)


def test_no_pretrained_is_the_random_init(tmp_path):
    wrapper = build(str(tmp_path / 'unused.npz'), 32)
    wrapper.backbone.init_cfg = None
    wrapper.init_weights()  # no file is read
    assert wrapper.load_reporter.loads_seen == 0


def test_bad_files_are_clear_errors(tmp_path):
    torch.save({'state_dict': {}}, tmp_path / 'torch.npz')
    with pytest.raises(ValueError, match=r'torch\.npz is a PyTorch checkpoint'):
        load_npz(str(tmp_path / 'torch.npz'))
    (tmp_path / 'text.npz').write_text('not an archive')
    with pytest.raises(ValueError, match=r'text\.npz is not a NumPy \.npz archive'):
        load_npz(str(tmp_path / 'text.npz'))
    path = write_npz(tmp_path / 'other.npz', {'foo/bar': np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match=r"other\.npz .*expected the key 'embedding/kernel'"):
        pretrained(path, 32)  # through init_weights: the error names the file
    stacked = google_arrays(depth=0)
    stacked['Transformer/encoderblock/LayerNorm_0/scale'] = np.ones((2, DIM), np.float32)
    with pytest.raises(ValueError, match='big_vision'):
        split_google_vit(stacked)
    path = write_npz(tmp_path / 'bv.npz', google_arrays(), prefix='params/')
    with pytest.raises(ValueError, match=r'bv\.npz is an \.npz archive but .*big_vision'):
        load_npz(path)
    with pytest.raises(ValueError, match='local files only'):
        load_npz('https://storage.googleapis.com/vit_models/imagenet21k/ViT-B_16.npz')
    np.savez(tmp_path / 'objects.npz', **{'embedding/kernel': np.array([None], dtype=object)})
    with pytest.raises(ValueError, match='pickled objects'):
        load_npz(str(tmp_path / 'objects.npz'))


@pytest.mark.parametrize('arrays,what', [(dict(dim=32, heads=2), 'width 32'),
                                         (dict(heads=2), '2 heads')])
def test_other_architecture_is_a_clear_error(arrays, what, tmp_path):
    # 2 heads of width 64 would load without a shape error, but compute another function.
    path = write_npz(tmp_path / 'vit.npz', google_arrays(**arrays))
    with pytest.raises(ValueError, match=rf'vit\.npz: .*another architecture: .*{what}'):
        pretrained(path, 32)


def test_load_from_an_npz_says_how_to_load_it(tmp_path):
    path = write_npz(tmp_path / 'vit.npz', google_arrays())
    model = build(path, 32)
    with pytest.raises(ValueError, match=r"Google JAX \.npz.*init_cfg=dict\(type='Pretrained'"):
        load_checkpoint(model, path)  # what Runner load_from and other hosts' Pretrained do
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'model.pth')
    load_checkpoint(model, str(tmp_path / 'model.pth'))  # .pth files still load locally
