# NOAH step 1 on VTAB-1k DTD: the supernet (Adapter + LoRA + VPT-deep in every layer, widths
# up to 10), one random subnet per iteration (NOAHSamplingHook), NOAH's supernet recipe.
#   1. python tools/train.py configs/examples/vit-b16_vtab-dtd_noah-supernet.py
#   2. python tools/noah_search.py configs/examples/vit-b16_vtab-dtd_noah-supernet.py \
#          work_dirs/vit-b16_vtab-dtd_noah-supernet/epoch_500.pth \
#          --out configs/noah/searched/vit-b_vtab-dtd.py --param-limit 0.43
#   3. python tools/train.py configs/noah/searched/vit-b_vtab-dtd.py
# The search config inherits ../noah/vit-b_vtab-dtd.py (this file's base): the benchmark
# config of DTD, with the searched widths instead of the default subnet (docs/image.md, NOAH).
_base_ = ['../noah/vit-b_vtab-dtd.py']

# train800 only, validation on val200: the splits NOAH trains the supernet on and searches on
protocol = 'none'
model = dict(backbone=dict(petl=dict(_delete_=True, type='NOAH', supernet=True)))
# the vpetl_mm hooks of the base (configs/_base_/runtime/petl_hooks.py) and NOAH's sampler
custom_hooks = _base_.custom_hooks + [dict(type='vpetl_mm.NOAHSamplingHook')]
# NOAH's VTAB supernet run: 500 epochs, lr 5e-4, weight decay 1e-4 (same warm-up and cosine)
max_epochs = 500
optim_wrapper = dict(optimizer=dict(lr=5e-4, weight_decay=1e-4))
param_scheduler = dict(t_initial=max_epochs)
train_cfg = dict(max_epochs=max_epochs, val_interval=50)
default_hooks = dict(checkpoint=dict(interval=50))
# a sampled subnet leaves some modules unused in an iteration: DDP must expect that
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
