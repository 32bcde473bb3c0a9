# Full fine-tuning of the pre-trained backbone (every backbone parameter trains).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='Full')))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
