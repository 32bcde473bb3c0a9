# ViT-L/16 (mmpretrain VisionTransformer), ImageNet-21K pretrained, for the image benchmarks.
#
# vit-b16.py at the large width (arch 'l': 24 blocks, width 1024, 16 heads, MLP 4096) with
# Google's ImageNet-21K file: https://storage.googleapis.com/vit_models/imagenet21k/ViT-L_16.npz
# saved as pretrained/ViT-L_16.npz (vpetl_mm/compat/vit_npz.py reads the JAX layout).
# Everything else (V-PETL Bench's trainer, ImageNet normalisation as V-PETL feeds its ViT-B) is
# the ViT-B/16 base's; the methods keep their ViT-B defaults (docs/foundation.md, "Configs":
# what scales with the width and what does not).
_base_ = ['./vit-b16.py']

model = dict(
    backbone=dict(backbone=dict(arch='l',
                                init_cfg=dict(checkpoint='pretrained/ViT-L_16.npz'))),
    head=dict(in_channels=1024))
