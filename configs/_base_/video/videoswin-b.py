# Video Swin-B (mmaction2 SwinTransformer3D), Kinetics-400 pretrained, for PETL training.
#
# The official mmaction2 Swin model (_base_/models/swin_tiny.py) scaled to Swin-B with the
# V-PETL BAPAT settings: patch (2, 4, 4), window (8, 7, 7), drop path 0.4, I3D head on 1024
# channels (spatio-temporal average pooling, then a linear classifier).
# Pretrained: swin_base_patch244_window877_kinetics400_22k.pth of the Video Swin release
# (https://github.com/SwinTransformer/storage/releases/download/v1.0.4/), `backbone.*` keys, saved
# as pretrained/swin_base_patch244_window877_kinetics400_22k.pth; vpetl_mm maps its final
# `norm` to mmaction's `norm3` (docs/video.md).
# with_cp=True (activation checkpointing) works with every PETL method: vpetl_mm runs the
# blocks' checkpoints in non-reentrant mode (the host's reentrant mode gives PETL no gradient).
_base_ = ['mmaction::_base_/models/swin_tiny.py', 'mmaction::_base_/default_runtime.py',
          './schedule_sgd-cosine-90e.py', '../runtime/petl_hooks.py']
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3, save_best='auto'))

model = dict(
    backbone=dict(
        _delete_=True,
        type='vpetl_mm.PETLBackbone',
        backbone=dict(
            type='SwinTransformer3D',
            arch='base',
            patch_size=(2, 4, 4),
            window_size=(8, 7, 7),
            mlp_ratio=4.,
            qkv_bias=True,
            qk_scale=None,
            drop_rate=0.,
            attn_drop_rate=0.,
            drop_path_rate=0.4,
            patch_norm=True,
            with_cp=False,
            frozen_stages=-1,  # PETLBackbone owns freezing
            pretrained=None,
            pretrained2d=False,
            init_cfg=dict(
                type='Pretrained',
                checkpoint='pretrained/swin_base_patch244_window877_kinetics400_22k.pth')),
        petl=dict(type='Full')),  # placeholder: each method config replaces it
    cls_head=dict(in_channels=1024, num_classes=400, average_clips='score'))
