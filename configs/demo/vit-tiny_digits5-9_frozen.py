# Linear probing: the pre-trained backbone is frozen, only the classification head trains.
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='Frozen')))
optim_wrapper = dict(optimizer=dict(lr=1e-1))
