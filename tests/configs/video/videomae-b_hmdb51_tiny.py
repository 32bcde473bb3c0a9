# CPU-sized copy of the real VideoMAE video setting (configs/_base_/video/videomae-b.py +
# hmdb51.py): the same Recognizer3D, PETLBackbone, head, SGD + warm-up cosine schedule, dataset
# class and multi-view test, with a 2-block 32-px ViT, 4-frame clips and 4 iterations. The tests
# generate a tiny mp4 set (tests/datagen/video.py) and point the dataloaders at it with
# --cfg-options; they switch the method with model.backbone.petl.type=<Name>.
_base_ = ['../../../configs/_base_/video/videomae-b.py', '../../../configs/_base_/video/hmdb51.py']

data_root = 'data/video-tiny'
num_classes = 2
max_iters = 4
model = dict(
    backbone=dict(backbone=dict(img_size=32, patch_size=8, embed_dims=32, depth=2, num_heads=2,
                                num_frames=4, tubelet_size=2, init_cfg=None)),
    cls_head=dict(num_classes=num_classes, in_channels=32))

decode = [dict(type='DecordInit'), dict(type='DecordDecode')]
train_pipeline = [
    decode[0], dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1), decode[1],
    dict(type='Resize', scale=(-1, 36)),
    dict(type='MultiScaleCrop', input_size=32, scales=(1, .875, .75, .66), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'), dict(type='PackActionInputs')]
val_pipeline = [
    decode[0], dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1,
                    test_mode=True), decode[1],
    dict(type='Resize', scale=(-1, 32)), dict(type='CenterCrop', crop_size=32),
    dict(type='FormatShape', input_format='NCTHW'), dict(type='PackActionInputs')]
test_pipeline = [
    decode[0], dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=4,
                    test_mode=True), decode[1],
    dict(type='Resize', scale=(-1, 32)), dict(type='ThreeCrop', crop_size=32),
    dict(type='FormatShape', input_format='NCTHW'), dict(type='PackActionInputs')]
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(batch_size=2, **loader, dataset=dict(
    num_classes=num_classes, ann_file=f'{data_root}/train_list.txt',
    data_prefix=dict(video=f'{data_root}/videos'), pipeline=train_pipeline))
val_dataloader = dict(batch_size=2, **loader, dataset=dict(
    num_classes=num_classes, ann_file=f'{data_root}/val_list.txt',
    data_prefix=dict(video=f'{data_root}/videos'), pipeline=val_pipeline))
test_dataloader = dict(batch_size=1, **loader, dataset=dict(
    num_classes=num_classes, ann_file=f'{data_root}/val_list.txt',
    data_prefix=dict(video=f'{data_root}/videos'), pipeline=test_pipeline))

optim_wrapper = dict(type='OptimWrapper')  # mmengine's AMP wrapper needs CUDA
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
# the real 10-epoch warm-up + cosine mean nothing over 4 iterations
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1, log_metric_by_epoch=False),
                     checkpoint=dict(by_epoch=False, interval=max_iters, save_best=None))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
