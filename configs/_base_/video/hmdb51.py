# HMDB51 (51 classes), split 1 by default; mmaction2's tools/data/hmdb51 scripts download it and
# write hmdb51_{train,val}_split_{1,2,3}_videos.txt ('class/video.avi label'). Other splits:
#   --cfg-options train_dataloader.dataset.ann_file=data/hmdb51/hmdb51_train_split_2_videos.txt
# (and the val / test ann_file likewise). Test = the split's test list, as the reference.
_base_ = ['./pipelines_8x4.py']
dataset_type = 'vpetl_mm.VideoListDataset'
data_root = 'data/hmdb51'
num_classes = 51

train_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, ann_file=f'{data_root}/hmdb51_train_split_1_videos.txt', num_classes=num_classes,
                 data_prefix=dict(video=f'{data_root}/videos'),
                 pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, ann_file=f'{data_root}/hmdb51_val_split_1_videos.txt', num_classes=num_classes,
                 data_prefix=dict(video=f'{data_root}/videos'),
                 pipeline={{_base_.val_pipeline}}, test_mode=True))
test_dataloader = dict(
    batch_size=1, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, ann_file=f'{data_root}/hmdb51_val_split_1_videos.txt', num_classes=num_classes,
                 data_prefix=dict(video=f'{data_root}/videos'),
                 pipeline={{_base_.test_pipeline}}, test_mode=True))
val_evaluator = dict(type='AccMetric')  # clip-level top-1 / top-5 during training
test_evaluator = dict(type='AccMetric')  # video-level: scores averaged over the 4 x 3 views
