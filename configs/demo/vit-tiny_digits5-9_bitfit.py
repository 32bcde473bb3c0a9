# BitFit: only the backbone's bias terms (and the head) train.
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='BitFit')))
optim_wrapper = dict(optimizer=dict(lr=5e-2))
