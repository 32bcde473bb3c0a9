# Frozen backbone (only the neck and heads train)
# on Cascade Mask R-CNN Swin-B IN-22K, COCO, 3x; published box / mask AP 43.5 / 38.6 (V-PETL Bench).
_base_ = '../_base_/dense/cascade-mask-rcnn_swin-b_coco-3x.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='Frozen')))
