# ConvNeXt-B (mmpretrain ConvNeXt), ImageNet-21K pretrained, for the image benchmarks.
#
# The host that the ConvNeXt configs put in place of ViT-B/16's, with a linear head on its
# pooled 1024-wide feature (ViT-B/16's head fields otherwise: classes, loss, init) and drop path
# 0.1 as V-PETL's ViT-B (not ConvNeXt's pretraining 0.5): each generated setting base
# convnext-b_<dataset>.py inherits ViT-B/16's setting base of the dataset (vit-b16_<dataset>.py:
# V-PETL Bench's trainer and per-dataset protocol; vpetl_mm/benchmark/matrices_foundation.py,
# docs/foundation.md) and this file, and merges `host` into it (popped by the setting: no
# resolved config has a `host` key).
# Host: mmpretrain configs/_base_/models/convnext/convnext-base.py (global average pool before
# the final norm), 224 px.
# Pretrained: https://download.openmmlab.com/mmclassification/v0/convnext/
# convnext-base_3rdparty_in21k_20220124-13b83eec.pth saved under pretrained/ (mmpretrain names).
# Inputs: ImageNet mean / std (mmpretrain's ConvNeXt configs').
host = dict(
    model=dict(
        backbone=dict(
            backbone=dict(
                _delete_=True, type='ConvNeXt', arch='base', drop_path_rate=0.1,
                init_cfg=dict(
                    type='Pretrained', prefix='backbone.',
                    checkpoint='pretrained/convnext-base_3rdparty_in21k_20220124-13b83eec.pth'))),
        head=dict(type='LinearClsHead', in_channels=1024)),
    data_preprocessor=dict(norm='imagenet'))
