# LoRA (dense defaults: rank 64, alpha 1, on q and v)
# on UperNet Swin-L IN-22K, VOC2012 aug, 40k.
_base_ = '../_base_/dense/upernet_swin-l_voc12aug.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='LoRA')))
