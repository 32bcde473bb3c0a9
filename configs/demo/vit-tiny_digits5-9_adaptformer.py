# AdaptFormer: a bottleneck branch parallel to each MLP, bottleneck 8 (image default).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='AdaptFormer', bottleneck=8)))
optim_wrapper = dict(optimizer=dict(lr=1e-2))
