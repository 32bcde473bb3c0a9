# U-Tuning: parallel prefix (4 pairs) beside attention, parallel adapter (8) beside the MLP.
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='UTuning', length=4, bottleneck=8)))
optim_wrapper = dict(optimizer=dict(lr=3e-3))
