# Swin-B (mmdet's SwinTransformer, the host of the dense benchmarks) as an image classifier on
# VTAB-1k cifar: E3VA's host architecture under a light head, so that the efficiency tool
# (tools/analysis/efficiency.py) measures the backbone's cost rather than a detector's heads.
# E3VA runs on the mmdet / mmseg Swin only; every other Swin method runs here too.
_base_ = ['../full/vit-b_vtab-cifar100.py']

model = dict(
    backbone=dict(
        backbone=dict(_delete_=True, type='mmdet.SwinTransformer', embed_dims=128,
                      depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=7,
                      drop_path_rate=0.2, out_indices=(3, ))),
    # mmdet's Swin returns a list of maps: average the last one
    neck=dict(_delete_=True, type='vpetl_mm.TokenPool', mode='avg'),
    head=dict(_delete_=True, type='LinearClsHead', num_classes=100, in_channels=1024,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
