# Partial-1 (the last Swin block; Partial's default k=1)
# on Cascade Mask R-CNN Swin-B IN-22K, COCO, 3x; published box / mask AP 49.2 / 42.8 (V-PETL Bench).
_base_ = '../_base_/dense/cascade-mask-rcnn_swin-b_coco-3x.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='Partial')))
