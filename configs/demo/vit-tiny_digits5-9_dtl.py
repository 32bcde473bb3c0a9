# DTL: rank-2 side path from every block, swish-gated into the second half (blocks 2-3).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='DTL')))
optim_wrapper = dict(optimizer=dict(lr=3e-2))
