# E3VA (defaults: rank 24, a gradient highway beside the no-grad backbone)
# on Cascade Mask R-CNN Swin-B IN-22K, COCO, 3x; published box / mask AP 50.5 / 43.8 (V-PETL Bench).
_base_ = '../_base_/dense/cascade-mask-rcnn_swin-b_coco-3x.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='E3VA')))
