"""Tiny variants of every profiled backbone (real host classes, small widths and inputs).

One row per profile: the registry scope, the host backbone config, an input shape, and the
name of the host option that freezes stages (None if the host has none).
"""
from dataclasses import dataclass
from typing import Optional, Tuple


@dataclass(frozen=True)
class TinyBackbone:
    profile: str
    scope: str
    cfg: dict
    input_shape: Tuple[int, ...]
    frozen_stages_key: Optional[str] = 'frozen_stages'


TINY_BACKBONES = [
    TinyBackbone(
        'mmpretrain.VisionTransformer', 'mmpretrain',
        dict(type='VisionTransformer', img_size=32, patch_size=8, drop_rate=0.,
             arch=dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)),
        (2, 3, 32, 32)),
    TinyBackbone(
        'mmpretrain.SwinTransformer', 'mmpretrain',
        dict(type='SwinTransformer', img_size=32, window_size=4, out_indices=(1, ),
             arch=dict(embed_dims=16, depths=[2, 2], num_heads=[1, 2]), drop_path_rate=0.),
        (2, 3, 32, 32)),
    TinyBackbone(
        'mmdet.SwinTransformer', 'mmdet',
        dict(type='SwinTransformer', pretrain_img_size=32, embed_dims=16, depths=(2, 2),
             num_heads=(1, 2), strides=(4, 2), window_size=4, out_indices=(0, 1),
             drop_path_rate=0.),
        (2, 3, 32, 32)),
    TinyBackbone(
        'mmseg.SwinTransformer', 'mmseg',
        dict(type='SwinTransformer', pretrain_img_size=32, embed_dims=16, depths=(2, 2),
             num_heads=(1, 2), strides=(4, 2), window_size=4, out_indices=(0, 1),
             drop_path_rate=0.),
        (2, 3, 32, 32)),
    TinyBackbone(
        'mmaction.VisionTransformer', 'mmaction',
        dict(type='VisionTransformer', img_size=32, patch_size=8, embed_dims=32, depth=2,
             num_heads=2, num_frames=4, tubelet_size=2, drop_path_rate=0.),
        (1, 3, 4, 32, 32), frozen_stages_key=None),
    TinyBackbone(
        'mmaction.SwinTransformer3D', 'mmaction',
        dict(type='SwinTransformer3D', arch=dict(embed_dims=16, depths=[2, 2],
                                                  num_heads=[1, 2]),
             patch_size=(2, 4, 4), window_size=(2, 4, 4), drop_path_rate=0., out_indices=(1, ),
             pretrained=None, pretrained2d=False),
        (1, 3, 4, 32, 32)),
    TinyBackbone(
        'timm.VisionTransformer', 'mmpretrain',
        dict(type='TIMMBackbone', model_name='vit_tiny_patch16_224', pretrained=False,
             img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2),
        (2, 3, 32, 32), frozen_stages_key=None),
]
