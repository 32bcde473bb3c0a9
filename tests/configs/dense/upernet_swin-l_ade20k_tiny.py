# CPU-sized copy of the real UperNet ADE20K setting (configs/_base_/dense/
# upernet_swin-l_ade20k.py): the same segmentor (150 classes), ADE20K data layout, IoUMetric
# (mIoU) and optimiser, with a 2-stage randomly initialised Swin, 64 px crops and 2 iterations.
# The tests write a tiny ADE20K-format set and set data_root with --cfg-options; they switch
# the method with model.backbone.petl.type=<Name>.
_base_ = '../../../configs/_base_/dense/upernet_swin-l_ade20k.py'

data_root = 'data/ade-tiny'
max_iters = 2
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        # Swin-L's own widths (192, 384) so the methods' dense defaults give realistic ratios;
        # mmseg's Swin has no convert_weights (it always converts on load).
        backbone=dict(pretrain_img_size=64, embed_dims=192, depths=(2, 2), num_heads=(6, 12),
                      strides=(4, 2), window_size=4, out_indices=(0, 1), drop_path_rate=0.,
                      init_cfg=None)),
    # narrower heads: 512-channel PSP / FPN convs would dominate CPU time
    decode_head=dict(in_channels=[192, 384], in_index=[0, 1], channels=32),
    # the real auxiliary head reads the third stage; the last of two here
    auxiliary_head=dict(in_channels=384, in_index=1, channels=16))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(128, 64), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
# the real warm-up + poly decay mean nothing over 2 iterations
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1, log_metric_by_epoch=False),
                     checkpoint=dict(by_epoch=False, interval=max_iters))
