# VPT-deep: 5 prompt tokens per layer, prompt dropout 0.1.
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='VPT', length=5, deep=True, dropout=0.1)))
optim_wrapper = dict(optimizer=dict(lr=1e-1))
