# SNF: an affine + 6-layer planar flow on both shortcuts of every block (image default).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='SNF')))
optim_wrapper = dict(optimizer=dict(lr=3e-2))
