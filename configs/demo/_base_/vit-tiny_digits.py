# Embedded CPU demo (demo/digits_transfer.py): a tiny mmpretrain ViT on scikit-learn's digits.
# Target task: digits 5-9 relabelled 0-4, written by the demo in the VTAB-1k file layout
# (train800.txt / val200.txt / test.txt; the sizes are scaled to the data: 400 / 100 / rest).
# Each method config inherits this file and sets petl=... and its learning rate (chosen per
# method on the val split among a few values; the test split is only used for the report).
# Paths are relative to the repository root (the demo runs the tools from there).
_base_ = ['mmpretrain::_base_/default_runtime.py', '../../_base_/runtime/petl_hooks.py']
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'

pretrained = 'work_dirs/demo/pretrain/vit-tiny_digits0-4.pth'  # written by the demo's step 2
data_root = 'work_dirs/demo/data/digits_5-9'
num_classes = 5
max_epochs = 40

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='vpetl_mm.PETLBackbone',
        backbone=dict(
            type='VisionTransformer',
            arch=dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128),
            img_size=32, patch_size=8,  # 8x8 digits upsampled to 32x32: 16 tokens + cls
            drop_rate=0., drop_path_rate=0.,
            init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
        petl=dict(type='Full')),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

# 8x8 grayscale PNGs (0-255): loaded as 3 identical channels, resized to the ViT input.
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color'),
    dict(type='Resize', scale=(32, 32), interpolation='bilinear'),
    dict(type='PackInputs')]
test_pipeline = train_pipeline
data_preprocessor = dict(num_classes=num_classes, mean=[78., 78., 78.], std=[96., 96., 96.],
                         to_rgb=False)

train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='vpetl_mm.VTAB1k', data_root=data_root, split='train',
                 num_classes=num_classes, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='vpetl_mm.VTAB1k', data_root=data_root, split='val',
                 num_classes=num_classes, pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = dict(
    batch_size=128, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='vpetl_mm.VTAB1k', data_root=data_root, split='test',
                 num_classes=num_classes, pipeline=test_pipeline))
test_evaluator = val_evaluator

optim_wrapper = dict(constructor='vpetl_mm.PETLOptimWrapperConstructor',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs, eta_min=1e-5,
         convert_to_iter_based=True)]
# the last epoch is the reported model (nothing is selected on the test split)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
