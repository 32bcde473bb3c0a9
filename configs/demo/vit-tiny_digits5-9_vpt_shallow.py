# VPT-shallow: 10 prompt tokens at the input (image default: 100 for 196 patches).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='VPT', length=10)))
optim_wrapper = dict(optimizer=dict(lr=1e-1))
