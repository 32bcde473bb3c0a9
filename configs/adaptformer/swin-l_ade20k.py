# AdaptFormer (dense defaults: bottleneck 64, scale 0.1, beside the MLP)
# on UperNet Swin-L IN-22K, ADE20K, 160k; published mIoU 50.83 (V-PETL Bench).
_base_ = '../_base_/dense/upernet_swin-l_ade20k.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='AdaptFormer', init='trunc_normal')))
