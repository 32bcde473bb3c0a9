# CLIP ViT-B/16 (OpenAI; mmpretrain VisionTransformer with pre_norm), for the image benchmarks.
#
# vit-b16.py with the CLIP host and its input: everything else (V-PETL Bench's trainer) is the
# ViT-B/16 base's, and the generated setting bases add V-PETL's per-dataset protocol
# (vpetl_mm/benchmark/matrices_foundation.py; docs/foundation.md).
# Host: mmpretrain configs/clip/vit-base-p16_pt-64xb64_in1k.py (arch 'b', patch 16,
# pre_norm=True: the LayerNorm before the blocks), 224 px.
# Pretrained: https://download.openmmlab.com/mmclassification/v0/clip/
# clip-vit-base-p16_openai-pre_3rdparty_in1k_20221220-c7d9c899.pth saved under pretrained/
# (mmpretrain names; the CLIP image tower fine-tuned on ImageNet-1k: its head is not loaded).
# The image tower as pretrained, without that fine-tuning, is timm's
# vit_base_patch16_clip_224.openai on the timm host (docs/foundation.md).
# Inputs: OpenAI CLIP's mean / std (norm='clip').
_base_ = ['./vit-b16.py']

model = dict(
    backbone=dict(
        backbone=dict(
            pre_norm=True,
            init_cfg=dict(
                checkpoint='pretrained/clip-vit-base-p16_openai-pre_3rdparty_in1k_20221220-'
                'c7d9c899.pth',
                prefix='backbone.'))))
data_preprocessor = dict(norm='clip')
