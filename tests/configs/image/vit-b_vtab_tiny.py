# CPU-sized copy of the real image benchmark setting (configs/_base_/image/vit-b16.py +
# vtab-1k.py): the same ImageClassifier, PETLBackbone, named ImageNet normalisation, AdamW +
# warm-up cosine (per epoch), VTAB1k dataset, Accuracy and protocol, with a 2-block 32-px ViT,
# 3 epochs and 32-px inputs. The tests write a tiny VTAB-1k task (tests/runner_utils.py) and set
# data_root with --cfg-options; they switch the method with model.backbone.petl.type=<Name>.
_base_ = ['../../../configs/_base_/image/vit-b16.py', '../../../configs/_base_/image/vtab-1k.py']

data_root = 'data/vtab-tiny'
num_classes = 4
model = dict(
    backbone=dict(backbone=dict(arch=dict(_delete_=True, embed_dims=32, num_layers=2, num_heads=2,
                                          feedforward_channels=64),
                                img_size=32, patch_size=8, drop_path_rate=0., init_cfg=None),
                  petl=dict(type='LoRA', rank=2, alpha=2)),
    head=dict(num_classes=num_classes, in_channels=32))
data_preprocessor = dict(num_classes=num_classes)

pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(32, 32)),
            dict(type='PackInputs')]
loader = dict(batch_size=4, num_workers=0, persistent_workers=False)
train_dataloader = dict(**loader, dataset=dict(data_root=data_root, num_classes=num_classes,
                                               pipeline=pipeline))
val_dataloader = dict(**loader, dataset=dict(data_root=data_root, num_classes=num_classes,
                                             pipeline=pipeline))
test_dataloader = dict(**loader, dataset=dict(data_root=data_root, num_classes=num_classes,
                                              pipeline=pipeline))

optim_wrapper = dict(optimizer=dict(lr=1e-2, weight_decay=1e-4))
param_scheduler = dict(t_initial=3, warmup_t=1, warmup_lr_init=1e-3)
train_cfg = dict(max_epochs=3, val_interval=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=3))
