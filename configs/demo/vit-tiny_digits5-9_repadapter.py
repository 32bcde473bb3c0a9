# RepAdapter: linear adapters before qkv and fc1, hidden 8, groups 2 (image defaults).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='RepAdapter')))
optim_wrapper = dict(optimizer=dict(lr=3e-2))
