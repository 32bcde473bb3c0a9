# CPU-sized copy of the real RetinaNet VOC07+12 setting (configs/_base_/dense/
# retinanet_swin-l_voc0712.py): the same detector (20 classes), VOC07+12 trainval -> VOC2007
# test data layout, VOCMetric (mAP, 11 points) and optimiser, with a 2-stage randomly
# initialised Swin, 64 px images and 2 iterations. The tests write a tiny VOCdevkit and set the
# data roots with --cfg-options; they switch the method with model.backbone.petl.type=<Name>.
_base_ = '../../../configs/_base_/dense/retinanet_swin-l_voc0712.py'

data_root = 'data/VOCdevkit/'
max_iters = 2
model = dict(
    backbone=dict(
        # Swin-L's own widths (192, 384) so the methods' dense defaults give realistic ratios.
        # The real out_indices (1, 2, 3) start at stride 8, where the anchors start: with two
        # stages that is stage 1 alone, and FPN convolves the 4 extra levels (16-128) from it.
        backbone=dict(pretrain_img_size=64, embed_dims=192, depths=(2, 2), num_heads=(6, 12),
                      strides=(4, 2), window_size=4, out_indices=(1, ), drop_path_rate=0.,
                      convert_weights=False, init_cfg=None)),
    neck=dict(in_channels=[384]),
    # 2 iterations leave every score under the default 0.05: keep all so VOC eval has input
    test_cfg=dict(score_thr=0., nms_pre=100, max_per_img=20))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor'))]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    # voc0712.py's VOC2007 + VOC2012 trainval ConcatDataset (filters included), written out
    # again because a config cannot reach into the base's list to replace the pipelines
    dataset=dict(dataset=dict(datasets=[
        dict(type='VOCDataset', data_root=data_root,
             ann_file=f'{year}/ImageSets/Main/trainval.txt',
             data_prefix=dict(sub_data_root=f'{year}/'),
             filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
             pipeline=train_pipeline) for year in ('VOC2007', 'VOC2012')])))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
# the real warm-up + epoch steps mean nothing over 2 iterations
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1, log_metric_by_epoch=False),
                     checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
