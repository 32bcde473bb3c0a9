# FacT-TT, rank 8 for the 64-wide tiny ViT (image default: 16).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='FacT', rank=8)))
optim_wrapper = dict(optimizer=dict(lr=3e-2))
