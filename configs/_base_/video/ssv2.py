# Something-Something V2 (174 classes), videos as mp4 under data/sthv2/videos.
# Lists: mmaction2's tools/data/sthv2 scripts write sthv2_{train,val}_list_videos.txt
# ('path label'); the V-PETL CSVs (train.csv / val.csv: '/abs/path.mp4,label') work too, e.g.
#   --cfg-options train_dataloader.dataset.ann_file=data/sthv2/train.csv
#   'train_dataloader.dataset.path_remap={"/home/xbyu/data/20bn-something-something-v2":"data/sthv2/videos"}'
# As in the reference, the validation split is the test split (the labelled SSv2 test set is
# not public). Convert webm to mp4 keeping the height (240 px), as the reference does.
_base_ = ['./pipelines_8x4.py']
dataset_type = 'vpetl_mm.VideoListDataset'
data_root = 'data/sthv2'
num_classes = 174

train_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, ann_file=f'{data_root}/sthv2_train_list_videos.txt', num_classes=num_classes,
                 data_prefix=dict(video=f'{data_root}/videos'),
                 pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, ann_file=f'{data_root}/sthv2_val_list_videos.txt', num_classes=num_classes,
                 data_prefix=dict(video=f'{data_root}/videos'),
                 pipeline={{_base_.val_pipeline}}, test_mode=True))
test_dataloader = dict(
    batch_size=1, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, ann_file=f'{data_root}/sthv2_val_list_videos.txt', num_classes=num_classes,
                 data_prefix=dict(video=f'{data_root}/videos'),
                 pipeline={{_base_.test_pipeline}}, test_mode=True))
val_evaluator = dict(type='AccMetric')  # clip-level top-1 / top-5 during training
test_evaluator = dict(type='AccMetric')  # video-level: scores averaged over the 4 x 3 views
