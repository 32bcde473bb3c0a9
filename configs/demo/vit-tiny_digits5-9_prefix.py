# Prefix tuning: 4 key/value prefixes per layer from a 16-wide re-parameterisation MLP.
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='PrefixTuning', length=4, mid=16)))
optim_wrapper = dict(optimizer=dict(lr=1e-2))
