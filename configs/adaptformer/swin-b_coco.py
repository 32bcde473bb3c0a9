# AdaptFormer (dense defaults: bottleneck 64, scale 0.1, beside the MLP)
# on Mask R-CNN Swin-B IN-22K, COCO, 1x.
_base_ = '../_base_/dense/mask-rcnn_swin-b_coco.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='AdaptFormer', init='trunc_normal')))
