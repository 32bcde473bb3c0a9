# LoRand (defaults: 2 branches, kernel 8, bottleneck 64)
# on Cascade Mask R-CNN Swin-B IN-22K, COCO, 3x; published box / mask AP 51.0 / 43.9 (V-PETL Bench).
_base_ = '../_base_/dense/cascade-mask-rcnn_swin-b_coco-3x.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='LoRand')))
