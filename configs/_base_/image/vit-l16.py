# ViT-L/16 (mmpretrain VisionTransformer), ImageNet-21K pretrained, for the image benchmarks.
#
# ViT-B/16 at the large width (arch 'l': 24 blocks, width 1024, 16 heads, MLP 4096) with
# Google's ImageNet-21K file: https://storage.googleapis.com/vit_models/imagenet21k/ViT-L_16.npz
# saved as pretrained/ViT-L_16.npz (vpetl_mm/compat/vit_npz.py reads the JAX layout).
# Each generated setting base vit-l16_<dataset>.py inherits ViT-B/16's setting base of the
# dataset (vit-b16_<dataset>.py: V-PETL Bench's trainer and per-dataset protocol) and this file,
# and merges `host` into it (popped by the setting: no resolved config has a `host` key). The
# methods keep their ViT-B defaults (docs/foundation.md, "Configs": what scales with the width
# and what does not).
# Inputs: ImageNet normalisation, as V-PETL feeds its ViT-B (ViT-B/16's).
host = dict(
    model=dict(
        backbone=dict(backbone=dict(arch='l',
                                    init_cfg=dict(checkpoint='pretrained/ViT-L_16.npz'))),
        head=dict(in_channels=1024)),
    data_preprocessor=dict(norm='imagenet'))
