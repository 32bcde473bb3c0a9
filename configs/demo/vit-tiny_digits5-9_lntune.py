# LN-tune: every LayerNorm's scale and shift.
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='LNTune')))
optim_wrapper = dict(optimizer=dict(lr=3e-2))
