# Tiny mmaction2 VideoMAE (VisionTransformer) with a PETL method on a RAWFRAMES dataset, for
# CPU runner tests. The tests write the frames (tests/datagen/rawframes.py) and point the
# dataloaders at them with --cfg-options, e.g.
#   train_dataloader.dataset.ann_file=<root>/train_list_rawframes.txt
#   train_dataloader.dataset.data_prefix.img=<root>/rawframes   (same for val/test)
# Iteration-based: max_iters=4, validation and a checkpoint at the end.
_base_ = ['mmaction::_base_/default_runtime.py']
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)
default_scope = 'mmaction'

data_root = 'data/rawframes-tiny'
num_classes = 3
max_iters = 4

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='vpetl_mm.PETLBackbone',
        backbone=dict(
            type='VisionTransformer', img_size=32, patch_size=8, embed_dims=32, depth=2,
            num_heads=2, mlp_ratio=2, qkv_bias=True, num_frames=4, tubelet_size=2,
            drop_path_rate=0., norm_cfg=dict(type='LN', eps=1e-6),
            init_cfg=None),  # no pretrained download
        petl=dict(type='LoRA', rank=4, alpha=4)),
    cls_head=dict(type='TimeSformerHead', num_classes=num_classes, in_channels=32,
                  average_clips='prob'),
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], format_shape='NCTHW'))

dataset_type = 'RawframeDataset'
train_pipeline = [
    dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')]
test_pipeline = [
    dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1, test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')]

train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, ann_file=f'{data_root}/train_list_rawframes.txt',
                 data_prefix=dict(img=f'{data_root}/rawframes'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, ann_file=f'{data_root}/val_list_rawframes.txt',
                 data_prefix=dict(img=f'{data_root}/rawframes'), pipeline=test_pipeline,
                 test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

optim_wrapper = dict(type='OptimWrapper',
                     constructor='vpetl_mm.PETLOptimWrapperConstructor',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=max_iters)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
