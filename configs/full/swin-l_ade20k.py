# Full fine-tuning (every backbone parameter trains)
# on UperNet Swin-L IN-22K, ADE20K, 160k; published mIoU 52.10 (V-PETL Bench).
_base_ = '../_base_/dense/upernet_swin-l_ade20k.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='Full')))
