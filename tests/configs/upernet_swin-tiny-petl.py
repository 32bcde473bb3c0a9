# The official mmseg UperNet Swin-T ADE20K config with a tiny Swin in PETLBackbone, 64 px
# crops and a few iterations, for CPU runner tests. The tests write a tiny ADE20K-format set
# and set data_root with --cfg-options.
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)

data_root = 'data/ade-tiny'
max_iters = 4
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='vpetl_mm.PETLBackbone',
        backbone=dict(type='SwinTransformer', pretrain_img_size=64, embed_dims=16, depths=(2, 2),
                      num_heads=(1, 2), strides=(4, 2), window_size=4, out_indices=(0, 1),
                      drop_path_rate=0., init_cfg=None),
        petl=dict(type='Adapter', bottleneck=8)),
    decode_head=dict(in_channels=[16, 32], in_index=[0, 1], channels=32),
    auxiliary_head=dict(in_channels=32, in_index=1, channels=16))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='Resize', scale=crop_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
optim_wrapper = dict(constructor='vpetl_mm.PETLOptimWrapperConstructor')
default_hooks = dict(logger=dict(interval=1, log_metric_by_epoch=False),
                     checkpoint=dict(by_epoch=False, interval=max_iters))
