# AdaptFormer (dense defaults: bottleneck 64, scale 0.1, beside the MLP)
# on Cascade Mask R-CNN Swin-B IN-22K, COCO, 3x; published box / mask AP 51.4 / 44.5 (V-PETL Bench).
_base_ = '../_base_/dense/cascade-mask-rcnn_swin-b_coco-3x.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='AdaptFormer', init='trunc_normal')))
