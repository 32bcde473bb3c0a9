# Cascade Mask R-CNN, Swin-B (ImageNet-22K) on COCO instance segmentation, 3x schedule: the
# Mona release's COCO recipe (mona_configs/swin-b_coco/cascade_mask_swin_base_3x_coco_*.py),
# which is the setting of the V-PETL Bench COCO table.
#
# Base: mmdet 3.3's ConvNeXt-T Cascade Mask R-CNN "4conv1fc-giou ms-crop-3x" config, which is
# already that recipe apart from the backbone and the optimiser: 3 cascade stages (loss weights
# 1/0.5/0.25), ConvFCBBoxHead 4 convs + 1 fc with SyncBN, GIoU loss weight 10, reg_decoded_bbox,
# class-specific regression (reg_class_agnostic=False), FCNMaskHead; DETR-style augmentation
# (flip, then multi-scale resize 480-800 or resize 400-600 + crop 384-600 + multi-scale resize);
# 36 epochs, steps [27, 33]. mmdet 3.3 has no Swin Cascade config, and inheriting it avoids
# copying its three bbox heads and the pipeline.
# Published (V-PETL Bench / Mona, COCO box/mask AP): Full 51.9/45.0, Frozen 43.5/38.6,
# BitFit 47.9/41.9, LN-Tune 48.0/41.4, Partial-1 49.2/42.8, Adapter 50.9/43.8, LoRA 51.2/44.3,
# AdaptFormer 51.4/44.5, LoRand 51.0/43.9, E3VA 50.5/43.8, Mona 53.4/46.0.
# Pretrained: Microsoft's IN-22K Swin-B, https://github.com/SwinTransformer/storage/releases/
# download/v1.0.0/swin_base_patch4_window7_224_22k.pth, saved as
# pretrained/swin_base_patch4_window7_224_22k.pth (relative to the directory you train from);
# convert_weights=True maps its keys to mmdet's names.
# Batch: 16 images in total. Mona used 1 image/GPU x 16 GPUs; here the mmdet 3 convention,
# 2 images/GPU x 8 GPUs (coco_instance.py), the same total so the same lr. Mona trained with
# apex fp16: pass --amp to tools/train.py on GPUs for the equivalent.
_base_ = ['mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py',  # noqa: E501
          '../runtime/petl_hooks.py']
# Replaces the base's imports=['mmpretrain.models'] (only its ConvNeXt needed mmpretrain).
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='vpetl_mm.PETLBackbone',
        backbone=dict(
            type='SwinTransformer',
            embed_dims=128,
            depths=[2, 2, 18, 2],
            num_heads=[4, 8, 16, 32],
            window_size=7,
            mlp_ratio=4,
            qkv_bias=True,
            qk_scale=None,
            drop_rate=0.,
            attn_drop_rate=0.,
            drop_path_rate=0.3,
            patch_norm=True,
            out_indices=(0, 1, 2, 3),
            with_cp=False,
            frozen_stages=-1,  # PETLBackbone owns freezing (host freezing would hit adapters)
            convert_weights=True,
            init_cfg=dict(type='Pretrained',
                          checkpoint='pretrained/swin_base_patch4_window7_224_22k.pth')),
        petl=dict(type='Full')),  # placeholder: each method config replaces it
    neck=dict(in_channels=[128, 256, 512, 1024]))

# Mona's warm-up: linear over 500 iterations from 0.001x (its mmdet 2 schedule_1x); the base
# warms up over 1000.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1)
]

# Mona's optimiser for every method, full fine-tuning included: AdamW lr 1e-4 (2e-4 for batch
# 32), wd 0.05, no decay on position tables and norms. Replaces the base's ConvNeXt layer-wise
# lr decay constructor, its lr 2e-4 and its AMP wrapper (AMP needs a GPU; use --amp).
# The 'norm' key is a substring rule, so it also matches PETL parameters whose names contain
# 'norm' (Mona's LayerNorm, LNTune's norms, Partial's block norms). The Mona release had exactly
# that behaviour, so apply_host_rules=True keeps it (PETLOptimWrapperConstructor would otherwise
# give PETL parameters the plain optimizer defaults). No host rule changes an lr.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='vpetl_mm.PETLOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        },
        petl=dict(apply_host_rules=True)))
