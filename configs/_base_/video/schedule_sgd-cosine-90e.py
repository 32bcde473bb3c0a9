# The V-PETL video recipe (AdaptFormer / BAPAT code): SGD momentum 0.9, weight decay 0,
# lr = blr * total_batch / 256 with blr 0.1, 10 linear warm-up epochs then a half cosine to 0,
# 90 epochs, AMP (fp16 autocast + loss scaling), cross-entropy. The same recipe for every method,
# full fine-tuning included (the reference trains all of them with one script).
# Batch: 16 clips/GPU x 8 GPUs = 128, so lr = 0.1 * 128 / 256 = 0.05; `--auto-scale-lr` rescales
# it for other batch sizes (base_batch_size below).
max_epochs = 90
warmup_epochs = 10

optim_wrapper = dict(
    type='AmpOptimWrapper',  # CPU runs: --cfg-options optim_wrapper.type=OptimWrapper
    constructor='vpetl_mm.PETLOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=0.))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0., by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=128)
