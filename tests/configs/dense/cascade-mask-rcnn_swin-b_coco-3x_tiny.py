# CPU-sized copy of the real Cascade Mask R-CNN 3x COCO setting (configs/_base_/dense/
# cascade-mask-rcnn_swin-b_coco-3x.py, the V-PETL Bench COCO table): the same detector (3
# cascade stages of 4conv1fc GIoU heads, 80 classes), evaluator (COCO bbox + segm) and
# optimiser, with a 2-stage randomly initialised Swin, 64 px images and 2 iterations. The
# tests write a tiny COCO set (listing all 80 categories) and set data_root / ann_file with
# --cfg-options; they switch the method with model.backbone.petl.type=<Name>.
_base_ = '../../../configs/_base_/dense/cascade-mask-rcnn_swin-b_coco-3x.py'

data_root = 'data/coco-tiny/'
max_iters = 2
model = dict(
    backbone=dict(
        # No _delete_: every other Swin / wrapper key (the petl placeholder too) stays real.
        # Swin-B's own widths (128, 256) so the methods' dense defaults give realistic ratios.
        backbone=dict(pretrain_img_size=64, embed_dims=128, depths=(2, 2), num_heads=(4, 8),
                      strides=(4, 2), window_size=4, out_indices=(0, 1), drop_path_rate=0.,
                      convert_weights=False, init_cfg=None)),
    neck=dict(in_channels=[128, 256]),  # strides 4, 8; FPN max-pools levels 16-64
    # The base's three rcnn training stages (IoU 0.5 / 0.6 / 0.7), written out again because a
    # config cannot reach into the base's list; only the sampled RoIs drop (512 -> 8): three
    # 4-conv 256-channel heads on 512 RoIs per image would take minutes per CPU iteration.
    train_cfg=dict(rpn_proposal=dict(max_per_img=100), rcnn=[
        dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou,
                           min_pos_iou=iou, match_low_quality=False, ignore_iof_thr=-1),
             sampler=dict(type='RandomSampler', num=8, pos_fraction=0.25, neg_pos_ub=-1,
                          add_gt_as_proposals=True),
             mask_size=28, pos_weight=-1, debug=False) for iou in (0.5, 0.6, 0.7)]),
    # 2 iterations leave every score under the default 0.05: keep all so COCO eval has input;
    # 20 proposals (not 1000) through the three 4-conv heads keep validation cheap
    test_cfg=dict(rpn=dict(max_per_img=20), rcnn=dict(score_thr=0., max_per_img=10)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
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
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
# the real warm-up + epoch steps mean nothing over 2 iterations
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1, log_metric_by_epoch=False),
                     checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
