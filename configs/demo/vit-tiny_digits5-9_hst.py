# HST: meta tokens + a 4-stage side network (widths scaled to the 64-wide tiny ViT).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='HST', dims=(16, 24, 32, 36), heads=(2, 2, 4, 4))))
optim_wrapper = dict(optimizer=dict(lr=3e-3))
