# ConvNeXt-B (mmpretrain ConvNeXt), ImageNet-21K pretrained, for the image benchmarks.
#
# vit-b16.py with the ConvNeXt host, a linear head on its pooled 1024-wide feature, and the
# V-PETL trainer of the ViT-B/16 base (drop path 0.1, not ConvNeXt's pretraining 0.5); the
# generated setting bases add V-PETL's per-dataset protocol
# (vpetl_mm/benchmark/matrices_foundation.py; docs/foundation.md).
# Host: mmpretrain configs/_base_/models/convnext/convnext-base.py (global average pool before
# the final norm), 224 px.
# Pretrained: https://download.openmmlab.com/mmclassification/v0/convnext/
# convnext-base_3rdparty_in21k_20220124-13b83eec.pth saved under pretrained/ (mmpretrain names).
# Inputs: ImageNet mean / std (mmpretrain's ConvNeXt configs').
_base_ = ['./vit-b16.py']

model = dict(
    backbone=dict(
        backbone=dict(
            _delete_=True, type='ConvNeXt', arch='base', drop_path_rate=0.1,
            init_cfg=dict(
                type='Pretrained', prefix='backbone.',
                checkpoint='pretrained/convnext-base_3rdparty_in21k_20220124-13b83eec.pth'))),
    head=dict(_delete_=True, type='LinearClsHead', num_classes=1000, in_channels=1024,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
data_preprocessor = dict(norm='imagenet')
