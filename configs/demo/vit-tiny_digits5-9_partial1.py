# Partial-1: only the last block trains.
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='Partial', k=1)))
optim_wrapper = dict(optimizer=dict(lr=1e-2))
