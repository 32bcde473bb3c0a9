# LoRA (dense defaults: rank 64, alpha 1, on q and v)
# on RetinaNet Swin-L IN-22K, VOC07+12; published AP50 87.5 (V-PETL Bench).
_base_ = '../_base_/dense/retinanet_swin-l_voc0712.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='LoRA')))
