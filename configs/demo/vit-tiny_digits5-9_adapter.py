# Sequential (Houlsby-style) bottleneck adapters after each MLP, bottleneck 8 (image default).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='Adapter', bottleneck=8)))
optim_wrapper = dict(optimizer=dict(lr=2e-2))
