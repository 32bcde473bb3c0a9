# SSF: scale and shift after every layer with a bias and every LayerNorm (no size option).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='SSF')))
optim_wrapper = dict(optimizer=dict(lr=3e-2))
