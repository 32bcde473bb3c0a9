# LoRA (dense defaults: rank 64, alpha 1, on q and v)
# on UperNet DINOv2 ViT-B/14 (mmseg VisionTransformer), ADE20K, 160k; no published mIoU.
_base_ = '../_base_/dense/upernet_dinov2-b14_ade20k.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='LoRA')))
