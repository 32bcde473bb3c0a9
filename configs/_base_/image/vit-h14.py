# ViT-H/14 (mmpretrain VisionTransformer), ImageNet-21K pretrained, for the image benchmarks.
#
# ViT-B/16 at the huge width (arch 'h': 32 blocks, width 1280, 16 heads, MLP 5120; patch 14:
# a 16 x 16 grid at 224 px) with Google's ImageNet-21K file:
# https://storage.googleapis.com/vit_models/imagenet21k/ViT-H_14.npz saved as
# pretrained/ViT-H_14.npz (vpetl_mm/compat/vit_npz.py reads the JAX layout).
# Each generated setting base vit-h14_<dataset>.py inherits ViT-B/16's setting base of the
# dataset (vit-b16_<dataset>.py: V-PETL Bench's trainer and per-dataset protocol) and this file,
# and merges `host` into it (popped by the setting: no resolved config has a `host` key). The
# methods keep their ViT-B defaults (docs/foundation.md, "Configs").
# Inputs: ImageNet normalisation, as V-PETL feeds its ViT-B (ViT-B/16's).
host = dict(
    model=dict(
        backbone=dict(backbone=dict(arch='h', patch_size=14,
                                    init_cfg=dict(checkpoint='pretrained/ViT-H_14.npz'))),
        head=dict(in_channels=1280)),
    data_preprocessor=dict(norm='imagenet'))
