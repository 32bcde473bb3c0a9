# Adapter+: post-adapter on every block output with channel scaling, its published defaults
# (bottleneck 8, Houlsby init, drop path 0.1 on the branch) on the 64-wide tiny ViT. lr 3e-2,
# selected on the val split among 1e-3 (the base's), 1e-2 and 3e-2 (val top-1 at 40 epochs:
# 90, 92 and 93).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='AdapterPlus')))
optim_wrapper = dict(optimizer=dict(lr=3e-2))
