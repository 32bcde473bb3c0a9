# GLoRA step 1 on VTAB-1k DTD: the supernet (every linear of every block holds the largest
# A..E support tensors; each training forward draws a choice per tensor and layer), trained with
# GLoRA's supernet recipe (Arnav0400/ViT-Slim@0fed674 GLoRA/supernet.py: 500 epochs, AdamW lr
# 1e-4, weight decay 1e-4, cosine with 10 warm-up epochs from 1e-6 down to 1e-5, rank 4;
# GLoRA/data/vtab.py: batch 64, train800 / val200; drop path 0.1: the base's already).
#   1. python tools/train.py configs/examples/vit-b16_vtab-dtd_glora-supernet.py
#   2. python tools/glora_search.py configs/examples/vit-b16_vtab-dtd_glora-supernet.py \
#          work_dirs/vit-b16_vtab-dtd_glora-supernet/epoch_500.pth \
#          --out configs/glora/searched/vit-b_vtab-dtd.py --param-limit 0.86
#   3. python tools/test.py configs/glora/searched/vit-b_vtab-dtd.py \
#          configs/glora/searched/vit-b_vtab-dtd.py.pth   (the supernet weights, no retraining)
# The searched config inherits ../glora/vit-b_vtab-dtd.py (this file's base) with the searched
# subnet instead of the fixed default (docs/methods-2024.md, GLoRA).
_base_ = ['../glora/vit-b_vtab-dtd.py']

# train800 only, validation on val200: the search scores subnets on data the training never saw
protocol = 'none'
model = dict(backbone=dict(petl=dict(_delete_=True, type='GLoRA', supernet=True)))
max_epochs = 500
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=1e-4))
param_scheduler = dict(t_initial=max_epochs, warmup_t=10, warmup_lr_init=1e-6, lr_min=1e-5)
# GLoRA/engine.py: evaluate (and save) every 100 epochs
train_cfg = dict(max_epochs=max_epochs, val_interval=100)
default_hooks = dict(checkpoint=dict(interval=100))
# every forward uses only the drawn choices' tensors: DDP must expect unused parameters
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
