# Hydra: parallel + sequential rank-2 branches around proj and fc2 (image defaults).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='Hydra')))
optim_wrapper = dict(optimizer=dict(lr=3e-2))
