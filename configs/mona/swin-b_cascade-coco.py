# Mona (defaults: two per block, bottleneck 64)
# on Cascade Mask R-CNN Swin-B IN-22K, COCO, 3x; published box / mask AP 53.4 / 46.0 (V-PETL Bench).
_base_ = '../_base_/dense/cascade-mask-rcnn_swin-b_coco-3x.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='Mona')))
