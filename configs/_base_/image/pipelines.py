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

# GPS's selection pass (PETLCalibrationHook views=2): two views of each training image through
# its contrastive augmentation (GPS's TwoCropTransform: RandomResizedCrop 0.08-1, flip,
# colour jitter 0.4/0.4/0.4/0.1 with p 0.8, grayscale p 0.2; bicubic as its VTAB runs).
# vpetl_mm.ColorJitter: mmpretrain's, whose hue shift fails on NumPy 2 for negative factors.
gps_contrast_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.08, 1.0),
         interpolation='bicubic', backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomApply', prob=0.8, transforms=[
        dict(type='vpetl_mm.ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)]),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='PackInputs'),
]
