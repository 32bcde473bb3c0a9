# Tiny mmpretrain ViT with a PETL method on a VTAB-1k-layout task, for CPU runner tests.
# The tests write the data (vpetl_mm.datasets.write_vtab1k) and point the three dataloaders at
# it with --cfg-options {train,val,test}_dataloader.dataset.data_root=<dir>.
# Iteration-based: max_iters=6, validation and a checkpoint at the end.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'

data_root = 'data/vtab-tiny'
num_classes = 4
max_iters = 6

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='vpetl_mm.PETLBackbone',
        backbone=dict(
            type='VisionTransformer',
            arch=dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64),
            img_size=32, patch_size=8, drop_rate=0., drop_path_rate=0.,
            init_cfg=None),  # no pretrained download; tests set a Pretrained file if needed
        petl=dict(type='LoRA', rank=4, alpha=4)),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=num_classes, in_channels=32,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

data_preprocessor = dict(num_classes=num_classes, mean=[127.5, 127.5, 127.5],
                         std=[127.5, 127.5, 127.5], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackInputs')]
test_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='vpetl_mm.VTAB1k', data_root=data_root, split='train',
                 num_classes=num_classes, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='vpetl_mm.VTAB1k', data_root=data_root, split='val',
                 num_classes=num_classes, pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='vpetl_mm.VTAB1k', data_root=data_root, split='test',
                 num_classes=num_classes, pipeline=test_pipeline))
test_evaluator = val_evaluator

optim_wrapper = dict(type='OptimWrapper',
                     constructor='vpetl_mm.PETLOptimWrapperConstructor',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=max_iters)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
