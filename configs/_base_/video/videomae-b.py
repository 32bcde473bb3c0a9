# VideoMAE ViT-B/16 (mmaction2 VisionTransformer) for PETL training, 8 frames x 224 px.
#
# mmaction2 1.2 ships only a test config for VideoMAE (videomae/vit-base-p16_videomae-k400-pre_
# 16x4x1_kinetics-400.py); this is its model written for training: the same backbone at
# 8 frames (tokens 4 x 14 x 14, tubelet 2), mean pooling + fc_norm, a linear head.
# Pretrained: the self-supervised VideoMAE ViT-B Kinetics-400 pretrain (1600 epochs) of the
# VideoMAE release (`encoder.*` keys), saved as
# pretrained/videomae_vit-b-p16_k400-pretrain-1600e.pth (relative to the directory you train
# from); vpetl_mm converts its keys to mmaction's names when it loads (docs/video.md).
# Method configs (configs/<method>/videomae-b_<dataset>.py) set `petl` and `num_classes`.
_base_ = ['mmaction::_base_/default_runtime.py', './schedule_sgd-cosine-90e.py',
          '../runtime/petl_hooks.py']
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3, save_best='auto'))

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='vpetl_mm.PETLBackbone',
        backbone=dict(
            type='VisionTransformer',
            img_size=224,
            patch_size=16,
            embed_dims=768,
            depth=12,
            num_heads=12,
            mlp_ratio=4,
            qkv_bias=True,
            num_frames=8,
            tubelet_size=2,
            drop_path_rate=0.,  # the AdaptFormer video default
            norm_cfg=dict(type='LN', eps=1e-6),
            use_mean_pooling=True,
            init_cfg=dict(type='Pretrained',
                          checkpoint='pretrained/videomae_vit-b-p16_k400-pretrain-1600e.pth')),
        petl=dict(type='Full')),  # placeholder: each method config replaces it
    # A linear head on fc_norm(mean of tokens). The AdaptFormer code puts a BatchNorm1d
    # (affine=False) before it (MAE linear-probe style); mmaction's head has none.
    cls_head=dict(type='TimeSformerHead', num_classes=400, in_channels=768, init_std=0.01,
                  average_clips='score'),  # the reference averages logits over views
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCTHW'))
