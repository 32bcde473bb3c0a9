# AdaptFormer on ViT-B/16 for one VTAB-1k task (DTD), with mmpretrain's ViT-B/16 model base.
_base_ = ['mmpretrain::_base_/models/vit-base-p16.py', 'mmpretrain::_base_/default_runtime.py',
          '../_base_/runtime/petl_hooks.py']
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='vpetl_mm.PETLBackbone',
        backbone=dict(type='VisionTransformer', arch='b', img_size=224, patch_size=16,
                      drop_path_rate=0.1,
                      init_cfg=dict(type='Pretrained', checkpoint='pretrained/vit-b16_in21k.pth',
                                    prefix='backbone.')),
        petl=dict(type='AdaptFormer')),  # image defaults: bottleneck 8 + input LN, 175,200
    head=dict(num_classes=47, loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1)))

data_root = 'data/vtab-1k/dtd'
pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(224, 224)),
            dict(type='PackInputs')]
data_preprocessor = dict(num_classes=47, mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)
train_dataloader = dict(batch_size=64, num_workers=4, sampler=dict(type='DefaultSampler',
                                                                   shuffle=True),
                        dataset=dict(type='vpetl_mm.VTAB1k', data_root=data_root, split='train',
                                     pipeline=pipeline))
val_dataloader = dict(batch_size=256, num_workers=4, sampler=dict(type='DefaultSampler',
                                                                  shuffle=False),
                      dataset=dict(type='vpetl_mm.VTAB1k', data_root=data_root, split='val',
                                   pipeline=pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = dict(val_dataloader, dataset=dict(val_dataloader['dataset'], split='test'))
test_evaluator = val_evaluator

optim_wrapper = dict(constructor='vpetl_mm.PETLOptimWrapperConstructor',
                     optimizer=dict(type='AdamW', lr=3.2e-3, weight_decay=0.04))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=90, eta_min=1e-5, by_epoch=True, begin=10, end=100)]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=10)
val_cfg = dict()
test_cfg = dict()
default_scope = 'mmpretrain'
