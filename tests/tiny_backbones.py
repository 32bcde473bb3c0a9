"""Tiny variants of every profiled backbone (real host classes, small widths and inputs).

``TINY_BACKBONES``: one row per profile: the registry scope, the host backbone config, an input
shape, and the name of the host option that freezes stages (None if the host has none). Other
tests index it (``[0]`` is the mmpretrain ViT, ``[-1]`` the timm ViT) and key it by profile, so
it keeps one row per profile.

``TINY_FOUNDATION``: the foundation-model hosts (``docs/foundation.md``): configurations of the
profiles above that exercise other host features (layer scale, register tokens, pre-norm), told
apart by ``variant``, and the profiles added for them. ``CONTRACT_HOSTS`` (both lists) is what
the contract matrix (``tests/test_contract.py``) runs every method on.
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
    variant: str = ''  # tells apart hosts of one profile (test ids: 'profile:variant')

    @property
    def id(self) -> str:
        return f'{self.profile}:{self.variant}' if self.variant else self.profile


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

# Layer scale: the hosts initialise it at 1e-5 (DINOv2's recipe), which would hide every branch
# inside a block from the contract's output checks; trained DINOv2 scales are O(0.1-1), so the
# tiny hosts start there.
_LAYER_SCALE = 0.5
# Three blocks on mmpretrain hosts, as above: with out_type='cls_token' DTL's side path (added
# after the second half of the blocks) reaches the output only through a later block.
TINY_FOUNDATION = [
    TinyBackbone(  # DINOv2 in mmpretrain (configs/dinov2): patch 14, layer scale
        'mmpretrain.VisionTransformer', 'mmpretrain',
        dict(type='VisionTransformer', img_size=28, patch_size=14, drop_rate=0.,
             layer_scale_init_value=_LAYER_SCALE,
             arch=dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)),
        (2, 3, 28, 28), variant='dinov2'),
    TinyBackbone(  # CLIP in mmpretrain (configs/clip): pre-norm, no patch-embedding bias
        'mmpretrain.VisionTransformer', 'mmpretrain',
        dict(type='VisionTransformer', img_size=32, patch_size=16, drop_rate=0., pre_norm=True,
             arch=dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)),
        (2, 3, 32, 32), variant='clip'),
    TinyBackbone(  # timm DINOv2 with 4 registers: 1 + 4 prefix tokens, layer scale
        'timm.VisionTransformer', 'mmpretrain',
        dict(type='TIMMBackbone', model_name='vit_small_patch14_reg4_dinov2', pretrained=False,
             img_size=28, embed_dim=32, depth=2, num_heads=2, init_values=_LAYER_SCALE),
        (2, 3, 28, 28), frozen_stages_key=None, variant='dinov2-reg4'),
    TinyBackbone(  # timm CLIP image tower: norm_pre before the blocks
        'timm.VisionTransformer', 'mmpretrain',
        dict(type='TIMMBackbone', model_name='vit_base_patch16_clip_224', pretrained=False,
             img_size=32, embed_dim=32, depth=2, num_heads=2),
        (2, 3, 32, 32), frozen_stages_key=None, variant='clip'),
    TinyBackbone(  # EVA-02 as mmpretrain's configs/eva02/eva02-base-p14_headless.py: RoPE,
        # SwiGLU MLP (fused w12, a LayerNorm (sub_ln), w3), no final norm, patch-token mean
        'mmpretrain.ViTEVA02', 'mmpretrain',
        dict(type='ViTEVA02', img_size=28, patch_size=14, drop_rate=0., sub_ln=True,
             final_norm=False, out_type='avg_featmap',
             arch=dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)),
        (2, 3, 28, 28)),
    TinyBackbone(  # ConvNeXt-V2 (use_grn=True, layer scale off as V2), two stages
        'mmpretrain.ConvNeXt', 'mmpretrain',
        dict(type='ConvNeXt', arch=dict(depths=[2, 2], channels=[16, 32]), use_grn=True,
             layer_scale_init_value=0., drop_path_rate=0., out_indices=(1, ),
             frozen_stages=-1),  # the host's 0 freezes nothing, but PETLBackbone asks for -1
        (2, 3, 32, 32)),
    TinyBackbone(  # mmseg's plain ViT (UperNet-ViT) as the dense DINOv2 host: patch bias,
        # final norm, last block out; torch.nn.MultiheadAttention behind the mmcv_attention patch
        'mmseg.VisionTransformer', 'mmseg',
        dict(type='VisionTransformer', img_size=32, patch_size=8, embed_dims=32, num_layers=2,
             num_heads=2, mlp_ratio=2, out_indices=(1, ), patch_bias=True, final_norm=True,
             norm_cfg=dict(type='LN', eps=1e-6)),
        (2, 3, 32, 32), frozen_stages_key=None),
    TinyBackbone(  # SAM's encoder: 4 x 4 tokens, 2 x 2 windows in block 0, global block 1,
        # relative positions, the channel-reduction neck
        'mmpretrain.ViTSAM', 'mmpretrain',
        dict(type='ViTSAM', img_size=32, patch_size=8, window_size=2, out_channels=16,
             arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64,
                       global_attn_indexes=[1])),
        (2, 3, 32, 32)),
    TinyBackbone(  # timm EVA-02 B: RoPE, SwiGLU (fc1_g, fc1_x, norm, fc2), its q/k/v in timm's
        # fused layout (qkv_fused=True: the profile's patch needs it; B's files still load)
        'timm.Eva', 'mmpretrain',
        dict(type='TIMMBackbone', model_name='eva02_base_patch14_224', pretrained=False,
             img_size=28, embed_dim=32, depth=2, num_heads=2, qkv_fused=True),
        (2, 3, 28, 28), frozen_stages_key=None),
]
CONTRACT_HOSTS = TINY_BACKBONES + TINY_FOUNDATION
