# The official mmdet Mask R-CNN Swin-T COCO config with a tiny Swin in PETLBackbone, 64 px
# images and a few iterations, for CPU runner tests. The tests write a tiny COCO set and set
# data_root / ann_file with --cfg-options.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)

data_root = 'data/coco-tiny/'
max_iters = 4
model = dict(
    backbone=dict(
        _delete_=True,
        type='vpetl_mm.PETLBackbone',
        backbone=dict(type='SwinTransformer', pretrain_img_size=64, embed_dims=16, depths=(2, 2),
                      num_heads=(1, 2), strides=(4, 2), window_size=4, out_indices=(0, 1),
                      drop_path_rate=0., init_cfg=None),
        petl=dict(type='LoRA', rank=4)),
    neck=dict(in_channels=[16, 32]),
    roi_head=dict(bbox_head=dict(num_classes=2), mask_head=dict(num_classes=2)),
    # 4 iterations leave every score under the default 0.05: keep all so COCO eval has input
    test_cfg=dict(rcnn=dict(score_thr=0.)))

metainfo = dict(classes=('person', 'car'))  # the two categories the tests write
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PackDetInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor'))]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dict(data_root=data_root, pipeline=train_pipeline,
                                     metainfo=metainfo,
                                     ann_file='annotations/instances_train2017.json',
                                     data_prefix=dict(img='train2017/')))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline,
                                   metainfo=metainfo,
                                   ann_file='annotations/instances_val2017.json',
                                   data_prefix=dict(img='val2017/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
optim_wrapper = dict(constructor='vpetl_mm.PETLOptimWrapperConstructor')
default_hooks = dict(logger=dict(interval=1, log_metric_by_epoch=False),
                     checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
