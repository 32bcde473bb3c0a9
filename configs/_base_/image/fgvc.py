# An FGVC dataset (VPT-style json splits: data/fgvc/<folder>/{train,val,test}.json), read by
# vpetl_mm.FGVC. The generated configs set the dataset, its folder and class count. Splits
# follow the protocol (vpetl_mm/apis/protocol.py): tools/train.py switches `split`
# (select on val, retrain on train + val, test once); `--protocol none` trains on train.
_base_ = ['./pipelines.py']
dataset_type = 'vpetl_mm.FGVC'
data_root = 'data/fgvc/CUB_200_2011'  # each generated config sets its dataset

train_dataloader = dict(
    batch_size=64, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, name='cub', split='train',
                 pipeline={{_base_.fgvc_train_pipeline}}))
val_dataloader = dict(
    batch_size=256, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, name='cub', split='val',
                 pipeline={{_base_.fgvc_test_pipeline}}))
test_dataloader = dict(
    batch_size=256, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, name='cub', split='test',
                 pipeline={{_base_.fgvc_test_pipeline}}))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
