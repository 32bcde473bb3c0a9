# LST: a ladder side transformer of width 64 / 8, pruned from the backbone; no-grad backbone.
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='LST')))
optim_wrapper = dict(optimizer=dict(lr=3e-2))
