# BAPAT: PATT offsets on k / v (mid 8) + AdaptFormer adapter (8), scaled to the tiny ViT.
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='BAPAT', bottleneck=8, att_mid=8)))
optim_wrapper = dict(optimizer=dict(lr=3e-3))
