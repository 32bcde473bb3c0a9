# Adapter (dense defaults: bottleneck 64 after attention and after the MLP)
# on Cascade Mask R-CNN Swin-B IN-22K, COCO, 3x; published box / mask AP 50.9 / 43.8 (V-PETL Bench).
_base_ = '../_base_/dense/cascade-mask-rcnn_swin-b_coco-3x.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='Adapter', init='trunc_normal')))
