# NOAH: a fixed subnet for the 4-layer tiny ViT (5 prompts, LoRA rank 2, adapter 5 per layer);
# tools/noah_search.py finds one from a trained supernet (docs/image.md).
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='NOAH', vpt=5, lora=2, adapter=5)))
optim_wrapper = dict(optimizer=dict(lr=3e-2))
