# Image pipelines of V-PETL Bench (methods.md section 3), in mmpretrain transforms.
#
# Normalisation is not here: it is the named `norm` of vpetl_mm.NamedNormClsDataPreprocessor
# (configs/_base_/image/vit-b16.py, ImageNet mean/std as the reference).
# Images load as BGR (mmcv); the preprocessor converts to RGB (to_rgb=True).

# VTAB-1k. Test (and training on the tasks the reference does not augment): torchvision
# Resize((224, 224)) on PIL images, i.e. Pillow bilinear.
vtab_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(224, 224), interpolation='bilinear', backend='pillow'),
    dict(type='PackInputs'),
]
vtab_train_pipeline = vtab_test_pipeline

# VTAB-1k tasks with `train_aug: True` in the reference YAMLs (vpetl_mm.datasets.VTAB_AUGMENTED):
# timm create_transform('rand-m9-mstd0.5-inc1', hflip 0.5, re_prob 0) with its
# RandomResizedCrop replaced by a bicubic Resize((224, 224)). timm order: resize, flip,
# RandAugment (2 ops, magnitude 9 of 10, std 0.5, the 'increasing' op set, fill = the ImageNet
# mean, here in BGR because the image is still BGR at this point).
_imagenet_mean_bgr = [104, 116, 124]
vtab_train_pipeline_aug = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(224, 224), interpolation='bicubic', backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=_imagenet_mean_bgr, interpolation='bicubic')),
    dict(type='PackInputs'),
]

# FGVC: Resize(256) (shorter edge) -> RandomCrop(224) -> horizontal flip for training,
# Resize(256) -> CenterCrop(224) for evaluation.
fgvc_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', interpolation='bilinear', backend='pillow'),
    dict(type='RandomCrop', crop_size=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
fgvc_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', interpolation='bilinear', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
