# Kinetics-400 (400 classes): mmaction2's tools/data/kinetics layout, videos resized to a 320 px
# short side (as the reference) under data/kinetics400/videos_{train,val}, lists
# kinetics400_{train,val}_list_videos.txt ('path label'). Kinetics-400 is the pretraining source
# of both video backbones; this config fine-tunes / evaluates on it like the other datasets.
_base_ = ['./pipelines_8x4.py']
dataset_type = 'vpetl_mm.VideoListDataset'
data_root = 'data/kinetics400'
num_classes = 400

train_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, ann_file=f'{data_root}/kinetics400_train_list_videos.txt', num_classes=num_classes,
                 data_prefix=dict(video=f'{data_root}/videos_train'),
                 pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, ann_file=f'{data_root}/kinetics400_val_list_videos.txt', num_classes=num_classes,
                 data_prefix=dict(video=f'{data_root}/videos_val'),
                 pipeline={{_base_.val_pipeline}}, test_mode=True))
test_dataloader = dict(
    batch_size=1, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, ann_file=f'{data_root}/kinetics400_val_list_videos.txt', num_classes=num_classes,
                 data_prefix=dict(video=f'{data_root}/videos_val'),
                 pipeline={{_base_.test_pipeline}}, test_mode=True))
val_evaluator = dict(type='AccMetric')  # clip-level top-1 / top-5 during training
test_evaluator = dict(type='AccMetric')  # video-level: scores averaged over the 4 x 3 views
