# The tiny image setting (vit-b_vtab_tiny.py) on an FGVC dataset (configs/_base_/image/fgvc.py's
# vpetl_mm.FGVC): Stanford Dogs' layout and 120 classes, written by tests/datagen/fgvc.py.
_base_ = ['./vit-b_vtab_tiny.py']

num_classes = 120
model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)
pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(32, 32)),
            dict(type='PackInputs')]
loader = dict(batch_size=16)
fgvc = dict(_delete_=True, type='vpetl_mm.FGVC', data_root='data/fgvc-tiny', name='dogs',
            pipeline=pipeline)
train_dataloader = dict(**loader, dataset=dict(**fgvc, split='train'))
val_dataloader = dict(**loader, dataset=dict(**fgvc, split='val'))
test_dataloader = dict(**loader, dataset=dict(**fgvc, split='test'))
