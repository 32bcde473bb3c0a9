# Demo step 2: pre-train the tiny ViT from scratch on the source task (digits 0-4), all
# parameters trained (petl=Full). Its last checkpoint becomes the transfer runs' init_cfg.
_base_ = ['./_base_/vit-tiny_digits.py']

source_root = 'work_dirs/demo/data/digits_0-4'
epochs = 30

model = dict(backbone=dict(backbone=dict(init_cfg=None), petl=dict(type='Full')))

# light shift augmentation: the from-scratch ViT sees only ~700 images
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color'),
    dict(type='Resize', scale=(32, 32), interpolation='bilinear'),
    dict(type='RandomCrop', crop_size=32, padding=3, pad_val=0),
    dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(data_root=source_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=source_root))
test_dataloader = dict(dataset=dict(data_root=source_root))

optim_wrapper = dict(optimizer=dict(lr=2e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=2, end=epochs, eta_min=1e-5,
         convert_to_iter_based=True)]
train_cfg = dict(max_epochs=epochs, val_interval=10)
default_hooks = dict(checkpoint=dict(interval=epochs))
