# LoRand (defaults: 2 branches, kernel 8, bottleneck 64)
# on UperNet Swin-L IN-22K, ADE20K, 160k; published mIoU 50.76 (V-PETL Bench).
_base_ = '../_base_/dense/upernet_swin-l_ade20k.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='LoRand')))
