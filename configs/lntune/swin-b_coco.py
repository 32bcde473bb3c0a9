# LN-Tune (backbone LayerNorms)
# on Mask R-CNN Swin-B IN-22K, COCO, 1x.
_base_ = '../_base_/dense/mask-rcnn_swin-b_coco.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='LNTune')))
