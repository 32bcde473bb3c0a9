# A VTAB-1k task (NOAH get_vtab1k.py layout: data/vtab-1k/<task>/{train800,val200,
# train800val200,test}.txt + images/), read by vpetl_mm.VTAB1k. The generated configs set the
# task folder, the class count and (on the tasks the reference augments) the RandAugment
# pipeline. Splits follow the protocol (vpetl_mm/apis/protocol.py): tools/train.py switches
# `split`; the values here are those of `--protocol none` (train800 / val200 / test).
_base_ = ['./pipelines.py']
dataset_type = 'vpetl_mm.VTAB1k'
data_root = 'data/vtab-1k/dtd'  # each generated config sets its task

train_dataloader = dict(
    batch_size=64, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline={{_base_.vtab_train_pipeline}}))
val_dataloader = dict(
    batch_size=256, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='val',
                 pipeline={{_base_.vtab_test_pipeline}}))
test_dataloader = dict(
    batch_size=256, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 pipeline={{_base_.vtab_test_pipeline}}))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
