"""The benchmark's config matrices (methods x backbones x datasets), as data.

Edit here, then run ``python tools/generate_configs.py``.
"""
from typing import List, Optional, Tuple

from .configgen import Backbone, Dataset, Matrix, Method
from .pertask import lookup, with_overrides

VIDEO = Matrix(
    name='video',
    methods=[
        Method('full', 'Full fine-tuning', "dict(_delete_=True, type='Full')"),
        Method('frozen', 'Frozen backbone (linear probe)', "dict(_delete_=True, type='Frozen')"),
        Method('adaptformer', 'AdaptFormer (video defaults: bottleneck 64, scale 0.1)',
               "dict(_delete_=True, type='AdaptFormer')"),
        Method('bapat', 'BAPAT (PATT on k/v + AdaptFormer adapter; BAPAT README settings)',
               "dict(_delete_=True, type='BAPAT')"),
        Method('lora', 'LoRA (video defaults: q and v, rank 16)',
               "dict(_delete_=True, type='LoRA')"),
        Method('bitfit', 'BitFit (biases, incl. relative-position bias tables)',
               "dict(_delete_=True, type='BitFit')"),
        Method('prefix', 'Prefix tuning (20 key/value prefixes per layer, MLP re-parameterised)',
               "dict(_delete_=True, type='PrefixTuning')"),
    ],
    backbones=[
        Backbone('videomae-b', 'VideoMAE ViT-B/16 (self-supervised K400 pretrain)',
                 '_base_/video/videomae-b.py'),
        Backbone('videoswin-b', 'Video Swin-B (Kinetics-400 pretrained)',
                 '_base_/video/videoswin-b.py'),
    ],
    datasets=[
        Dataset('ssv2', 'Something-Something V2', '_base_/video/ssv2.py', 174),
        Dataset('hmdb51', 'HMDB51 split 1', '_base_/video/hmdb51.py', 51),
        Dataset('k400', 'Kinetics-400', '_base_/video/k400.py', 400),
    ],
    published={
        ('full', 'videomae-b'): ('85.97M', dict(ssv2=53.97, hmdb51=46.41)),
        ('frozen', 'videomae-b'): ('0M', dict(ssv2=29.23, hmdb51=49.84)),
        ('adaptformer', 'videomae-b'): ('1.19M', dict(ssv2=59.02, hmdb51=55.69)),
        ('bapat', 'videomae-b'): ('2.06M', dict(ssv2=57.78, hmdb51=57.18)),
        ('full', 'videoswin-b'): ('87.64M', dict(ssv2=50.99, hmdb51=68.07)),
        ('frozen', 'videoswin-b'): ('0M', dict(ssv2=24.13, hmdb51=71.28)),
        ('lora', 'videoswin-b'): ('0.75M', dict(ssv2=38.34, hmdb51=62.12)),
        ('bitfit', 'videoswin-b'): ('1.09M', dict(ssv2=45.94, hmdb51=68.26)),
        ('adaptformer', 'videoswin-b'): ('1.56M', dict(ssv2=40.80, hmdb51=68.66)),
        ('prefix', 'videoswin-b'): ('6.37M', dict(ssv2=39.46, hmdb51=56.13)),
        ('bapat', 'videoswin-b'): ('6.18M', dict(ssv2=53.36, hmdb51=71.93)),
    },
    source='V-PETL Bench video table, Kinetics-400 pre-training',
    head='cls_head')

MATRICES: List[Matrix] = [VIDEO]


# -- image classification: ViT-B/16 on VTAB-1k (19) and FGVC (5) ------------------------------
IMAGE_METHODS = [
    Method('full', 'Full fine-tuning', "dict(_delete_=True, type='Full')"),
    Method('linear', 'Linear probing (frozen backbone)', "dict(_delete_=True, type='Frozen')"),
    Method('bitfit', 'BitFit (every bias)', "dict(_delete_=True, type='BitFit')"),
    Method('lntune', 'LN-tune (every LayerNorm)', "dict(_delete_=True, type='LNTune')"),
    Method('partial1', 'Partial-1 (the last block)', "dict(_delete_=True, type='Partial', k=1)"),
    Method('adapter', 'Adapter (image defaults: bottleneck 8, after the MLP)',
           "dict(_delete_=True, type='Adapter')"),
    Method('lora', 'LoRA (image defaults: q and v, rank 8)', "dict(_delete_=True, type='LoRA')"),
    Method('adaptformer', 'AdaptFormer (image defaults: bottleneck 8)',
           "dict(_delete_=True, type='AdaptFormer')"),
    # the method zoo (docs/image.md); the reference's common lr / wd table
    Method('ssf', 'SSF (scale and shift after every operation, mergeable)',
           "dict(_delete_=True, type='SSF')"),
    Method('repadapter', 'RepAdapter (repblock: hidden 8, groups 2, per-task scale; mergeable)',
           "dict(_delete_=True, type='RepAdapter')"),
    Method('hydra', 'Hydra (parallel + sequential rank-2 branches on proj and fc2; per-task '
                    'scale; mergeable)',
           "dict(_delete_=True, type='Hydra')"),
    Method('fact', 'FacT (VTAB-1k: FacT-TK, per-task rank and scale; FGVC: FacT-TT rank 16; '
                   'mergeable)',
           "dict(_delete_=True, type='FacT')"),
    Method('vpt_shallow', 'VPT-shallow (100 prompt tokens at the input)',
           "dict(_delete_=True, type='VPT')"),
    Method('vpt_deep', "VPT-deep (P prompts per layer: 50, or VPT's own P for the task; "
                       'prompt dropout 0.1)',
           "dict(_delete_=True, type='VPT', length=50, deep=True, dropout=0.1)"),
    Method('dtl', 'DTL (rank-2 side path from every block, swish-gated into blocks 6-11)',
           "dict(_delete_=True, type='DTL')"),
    Method('prefix', 'Prefix tuning (20 key/value prefixes per layer, MLP re-parameterised)',
           "dict(_delete_=True, type='PrefixTuning')"),
    Method('utuning', 'U-Tuning (parallel prefix of 11 beside MHA, parallel adapter 8 beside FFN)',
           "dict(_delete_=True, type='UTuning')"),
    # selection passes: PETLCalibrationHook (tools/train.py adds it; GPS sets its views)
    Method('sct', 'SCT (96 salient channels per block from a calibration pass)',
           "dict(_delete_=True, type='SCT')"),
    Method('gps', 'GPS (k gradient-selected entries per weight row + biases, k per task; '
                  'mergeable)',
           "dict(_delete_=True, type='GPS')",
           lines="# GPS's selection pass: SupCon gradients on two contrastive views per image\n"
                 "custom_hooks = [dict(type='vpetl_mm.PETLCalibrationHook', views=2,\n"
                 "                     pipeline={{_base_.gps_contrast_pipeline}})]\n"),
    Method('snf', 'SNF (affine + 6 planar layers on both shortcuts of every block)',
           "dict(_delete_=True, type='SNF')"),
    # a fixed subnet (NOAH's searched VTAB SVHN one); tools/noah_search.py finds one per task
    Method('noah', 'NOAH (Adapter + LoRA + VPT-deep per layer; a fixed searched subnet)',
           "dict(_delete_=True, type='NOAH')"),
    # side networks (docs/image.md): LST and LAST run the backbone without autograd
    Method('lst', 'LST (pruned ladder side transformer, width D/8, no-grad backbone)',
           "dict(_delete_=True, type='LST')"),
    Method('last', 'LAST (rank-32 low-rank self-attention side blocks, no-grad backbone)',
           "dict(_delete_=True, type='LAST')"),
    Method('hst', 'HST (meta-registers + bridges into a 4-stage side network; block norms)',
           "dict(_delete_=True, type='HST')"),
]
# our method folder -> the method's name in the published tables
_PUBLISHED_NAMES = dict(full='Full fine-tuning', linear='Linear probing', bitfit='BitFit',
                        adapter='Adapter', lora='LoRA', adaptformer='AdaptFormer', ssf='SSF',
                        repadapter='RepAdapter', hydra='Hydra', fact='FacT',
                        vpt_shallow='VPT-Shallow', vpt_deep='VPT-Deep', dtl='DTL', sct='SCT',
                        gps='GPS', prefix='Prefix tuning', utuning='U-Tuning',
                        snf='SNF', noah='NOAH', lst='LST',
                        last='LAST', hst='HST')


def _image_datasets() -> List[Dataset]:
    from ..datasets import FGVC_DATASETS, VTAB_DATASETS, VTAB_GROUPS, VTAB_TASKS
    datasets = []
    for key, folder in VTAB_DATASETS.items():
        datasets.append(Dataset(key, f'VTAB-1k {folder} ({VTAB_GROUPS[key]})',
                                '_base_/image/vtab-1k.py', VTAB_TASKS[folder]))
    for key, info in FGVC_DATASETS.items():
        datasets.append(Dataset(key, f'FGVC {info[1]}', '_base_/image/fgvc.py', info[2]))
    return datasets


def _image_extra(method: Method, dataset: Dataset) -> Tuple[str, str]:
    """Per-dataset lines: data, loss (label smoothing) and lr / wd (the reference's table, or
    the method's own per-task recipe: vpetl_mm/benchmark/pertask.py)."""
    from ..datasets import (FGVC_DATASETS, FGVC_LR_WD, VTAB_AUGMENTED, VTAB_CIFAR100_LR_WD,
                            VTAB_DATASETS, VTAB_LABEL_SMOOTHING, VTAB_LR_WD)
    lines = []
    if dataset.key in VTAB_DATASETS:
        root = f'data/vtab-1k/{VTAB_DATASETS[dataset.key]}'
        lr, wd = VTAB_CIFAR100_LR_WD.get(method.folder, VTAB_LR_WD[dataset.key]) \
            if dataset.key == 'vtab-cifar100' else VTAB_LR_WD[dataset.key]
        smoothing = VTAB_LABEL_SMOOTHING[dataset.key]
        shared = dict(data_root=root, task=VTAB_DATASETS[dataset.key])
        pipeline = 'vtab_train_pipeline_aug' if dataset.key in VTAB_AUGMENTED else None
    else:
        name, folder = FGVC_DATASETS[dataset.key][:2]
        root = f'data/fgvc/{folder}'
        lr, wd = FGVC_LR_WD[dataset.key]
        smoothing, pipeline = 0., None
        shared = dict(data_root=root, name=name)
    fields = ', '.join(f'{k}={v!r}' for k, v in shared.items())
    train = f'dict(**dataset, pipeline={{{{_base_.{pipeline}}}}})' if pipeline else 'dataset'
    # the method's own per-task recipe, where its repository publishes one (pertask.py)
    per_task = lookup(method.folder, dataset.key)
    recipe = per_task[1] if per_task else {}
    overridden = [_RECIPE_NAMES[k] for k in ('lr', 'weight_decay', 'batch_size') if k in recipe]
    loader = f'dataset={train}'
    if 'batch_size' in recipe:
        loader = f"batch_size={recipe['batch_size']}, {loader}"
        if len(loader) > 75:  # `train_dataloader = dict(...)` within 100 characters
            loader = loader.replace(', dataset=', f",\n{' ' * 24}dataset=")
    lr, wd = recipe.get('lr', lr), recipe.get('weight_decay', wd)
    lines += [f"data_preprocessor = dict(num_classes={dataset.num_classes})",
              "# the fields every split shares", f"dataset = dict({fields})"]
    if overridden:
        lines += _comment(f"{' / '.join(overridden)} for this task: {per_task[2]}")
    lines += [f"train_dataloader = dict({loader})",
              "val_dataloader = dict(dataset=dataset)",
              "test_dataloader = dict(dataset=dataset)",
              f"optim_wrapper = dict(optimizer=dict(lr={lr!r}, weight_decay={wd!r}))",
              '']
    loss = (f",\n{' ' * 14}loss=dict(_delete_=True, type='LabelSmoothLoss', "
            f"label_smooth_val={smoothing},\n{' ' * 24}mode='original')") if smoothing else ''
    return loss, '\n'.join(lines)


_RECIPE_NAMES = dict(lr='lr', weight_decay='weight decay', batch_size='batch size',
                     drop_path_rate='drop path')


def _comment(text: str, indent: str = '') -> List[str]:
    """``text`` as ``#`` comment lines of at most 100 characters."""
    import textwrap
    return textwrap.wrap(text, 100, initial_indent=f'{indent}# ',
                         subsequent_indent=f'{indent}# ', break_on_hyphens=False)


def _image_backbone(method: Method, dataset: Dataset) -> Optional[str]:
    """The `backbone` entry with the method's per-task arguments (and drop path), if any."""
    per_task = lookup(method.folder, dataset.key)
    if per_task is None:
        return None
    kwargs, recipe, cite = per_task
    names = list(kwargs) + [_RECIPE_NAMES[k] for k in ('drop_path_rate', ) if k in recipe]
    lines = _comment(f"{', '.join(names)} for this task: {cite}", ' ' * 4)
    entry = f'    backbone=dict(petl={with_overrides(method.petl, kwargs)}'
    if 'drop_path_rate' in recipe:
        entry += f",\n{' ' * 18}backbone=dict(drop_path_rate={recipe['drop_path_rate']!r})"
    return '\n'.join(lines + [entry + '),'])


def _image_published():
    from .published import FGVC, VTAB
    from ..datasets import FGVC_DATASETS, VTAB_DATASETS
    table = {}
    for folder, name in _PUBLISHED_NAMES.items():
        top1, params = {}, {}
        # the published counts differ between the two tables (docs/image.md)
        for published, keys, label in ((VTAB, VTAB_DATASETS, 'VTAB-1k'),
                                       (FGVC, FGVC_DATASETS, 'FGVC')):
            if name in published:  # some methods are in one table only
                top1.update(published[name]['top1'])
                params.update({k: f"{published[name]['params']} ({label} table)" for k in keys})
        table[(folder, 'vit-b')] = (params, top1)
    return table


IMAGE = Matrix(
    name='image',
    methods=IMAGE_METHODS,
    backbones=[Backbone('vit-b', 'ViT-B/16 (ImageNet-21K, Google .npz)',
                        '_base_/image/vit-b16.py')],
    datasets=_image_datasets(),
    published=_image_published(),
    source='V-PETL Bench, legacy protocol: test-set selection',
    extra=_image_extra,
    backbone=_image_backbone)

MATRICES.append(IMAGE)
