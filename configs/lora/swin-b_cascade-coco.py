# LoRA (dense defaults: rank 64, alpha 1, on q and v)
# on Cascade Mask R-CNN Swin-B IN-22K, COCO, 3x; published box / mask AP 51.2 / 44.3 (V-PETL Bench).
_base_ = '../_base_/dense/cascade-mask-rcnn_swin-b_coco-3x.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='LoRA')))
