# Partial-1 (the last Swin block; Partial's default k=1)
# on UperNet Swin-L IN-22K, ADE20K, 160k; published mIoU 47.44 (V-PETL Bench).
_base_ = '../_base_/dense/upernet_swin-l_ade20k.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='Partial')))
