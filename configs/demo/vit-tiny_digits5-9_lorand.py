# LoRand: low-rank-synthesised adapters, bottleneck 8, kernel 2 (scaled to the tiny ViT).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='LoRand', mid=8, kernel=2)))
optim_wrapper = dict(optimizer=dict(lr=1e-2))
