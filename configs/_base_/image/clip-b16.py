# CLIP ViT-B/16 (OpenAI; mmpretrain VisionTransformer with pre_norm), for the image benchmarks.
#
# The host that the CLIP configs put in place of ViT-B/16's: each generated setting base
# clip-b16_<dataset>.py inherits ViT-B/16's setting base of the dataset (vit-b16_<dataset>.py:
# V-PETL Bench's trainer, the head and V-PETL's per-dataset protocol;
# vpetl_mm/benchmark/matrices_foundation.py, docs/foundation.md) and this file, and merges
# `host` into it (popped by the setting: no resolved config has a `host` key).
# Host: mmpretrain configs/clip/vit-base-p16_pt-64xb64_in1k.py (arch 'b', patch 16,
# pre_norm=True: the LayerNorm before the blocks), 224 px.
# Pretrained: https://download.openmmlab.com/mmclassification/v0/clip/
# clip-vit-base-p16_openai-pre_3rdparty_in1k_20221220-c7d9c899.pth saved under pretrained/
# (mmpretrain names; the CLIP image tower fine-tuned on ImageNet-1k: its head is not loaded).
# The image tower as pretrained, without that fine-tuning, is timm's
# vit_base_patch16_clip_224.openai on the timm host (docs/foundation.md).
# Inputs: OpenAI CLIP's mean / std (norm='clip').
host = dict(
    model=dict(
        backbone=dict(
            backbone=dict(
                pre_norm=True,
                init_cfg=dict(
                    checkpoint='pretrained/clip-vit-base-p16_openai-pre_3rdparty_in1k_20221220-'
                    'c7d9c899.pth',
                    prefix='backbone.')))),
    data_preprocessor=dict(norm='clip'))
