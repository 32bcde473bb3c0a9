# LoRA (dense defaults: rank 64, alpha 1, on q and v)
# on UperNet Swin-L IN-22K, ADE20K, 160k; published mIoU 50.34 (V-PETL Bench).
_base_ = '../_base_/dense/upernet_swin-l_ade20k.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='LoRA')))
