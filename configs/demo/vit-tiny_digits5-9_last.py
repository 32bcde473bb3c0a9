# LAST: rank-8 low-rank self-attention side blocks on the no-grad backbone (image default 32).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='LAST', rank=8)))
optim_wrapper = dict(optimizer=dict(lr=1e-2))
