# SCT: 16 of the 64 channels per block, selected by the calibration pass before training.
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='SCT', channels=16)))
optim_wrapper = dict(optimizer=dict(lr=1e-2))
