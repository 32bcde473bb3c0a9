# LoRA on the q and v projections; rank 4 for the 64-wide tiny ViT (V-PETL image default: 8).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='LoRA', rank=4, alpha=4)))
optim_wrapper = dict(optimizer=dict(lr=2e-2))
