# Mona: two multi-cognitive visual adapters per block, bottleneck 8 (dense default 64).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='Mona', bottleneck=8)))
optim_wrapper = dict(optimizer=dict(lr=3e-3))
