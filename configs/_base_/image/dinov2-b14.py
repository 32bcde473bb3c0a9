# DINOv2 ViT-B/14 (mmpretrain VisionTransformer with layer scale), for the image benchmarks.
#
# The host that the DINOv2 configs put in place of ViT-B/16's: each generated setting base
# dinov2-b14_<dataset>.py inherits ViT-B/16's setting base of the dataset (vit-b16_<dataset>.py:
# V-PETL Bench's trainer, AdamW, batch 64, 100 epochs, timm cosine, drop path 0.1, the head and
# V-PETL's per-dataset protocol; vpetl_mm/benchmark/matrices_foundation.py says why every method
# runs that protocol here, docs/foundation.md) and this file, and merges `host` into it.
# (mmengine refuses two bases that set the same key: hence one key, `host`, which the setting
# pops, so that no resolved config has it.)
# Host: mmpretrain configs/dinov2/vit-base-p14_dinov2-pre_headless.py (arch 'b', patch 14,
# layer scale 1e-5) at 224 px: a 16 x 16 patch grid (the file's 37 x 37 position embedding,
# from 518 px, is resized bicubically when it loads: mmpretrain's _prepare_pos_embed).
# Pretrained: https://download.openmmlab.com/mmpretrain/v1.0/dinov2/
# vit-base-p14_dinov2-pre_3rdparty_20230426-ba246503.pth saved under pretrained/ (mmpretrain
# names); Meta's dinov2_vitb14_pretrain.pth loads too (vpetl_mm/compat/dinov2_weights.py).
# Inputs: ImageNet mean / std (the DINOv2 headless config's).
host = dict(
    model=dict(
        backbone=dict(
            backbone=dict(
                patch_size=14, layer_scale_init_value=1e-5,
                init_cfg=dict(
                    checkpoint='pretrained/vit-base-p14_dinov2-pre_3rdparty_20230426-ba246503.pth',
                    prefix='backbone.')))),
    data_preprocessor=dict(norm='imagenet'))
