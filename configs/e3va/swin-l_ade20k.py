# E3VA (defaults: rank 24, a gradient highway beside the no-grad backbone)
# on UperNet Swin-L IN-22K, ADE20K, 160k; published mIoU 49.64 (V-PETL Bench).
_base_ = '../_base_/dense/upernet_swin-l_ade20k.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='E3VA')))
