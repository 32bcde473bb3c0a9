# ViT-H/14 (mmpretrain VisionTransformer), ImageNet-21K pretrained, for the image benchmarks.
#
# vit-b16.py at the huge width (arch 'h': 32 blocks, width 1280, 16 heads, MLP 5120; patch 14:
# a 16 x 16 grid at 224 px) with Google's ImageNet-21K file:
# https://storage.googleapis.com/vit_models/imagenet21k/ViT-H_14.npz saved as
# pretrained/ViT-H_14.npz (vpetl_mm/compat/vit_npz.py reads the JAX layout).
# Everything else (V-PETL Bench's trainer, ImageNet normalisation as V-PETL feeds its ViT-B) is
# the ViT-B/16 base's; the methods keep their ViT-B defaults (docs/foundation.md, "Configs").
_base_ = ['./vit-b16.py']

model = dict(
    backbone=dict(backbone=dict(arch='h', patch_size=14,
                                init_cfg=dict(checkpoint='pretrained/ViT-H_14.npz'))),
    head=dict(in_channels=1280))
