"""The benchmark's config matrices (variants x backbones x datasets) and the files they generate.

Which variants run is :mod:`vpetl_mm.benchmark.variants`'s; here are the backbones, the
datasets, the per-setting lines (data, loss, lr / wd) and the per-variant recipe lines (the
methods' own per-task values, :mod:`vpetl_mm.benchmark.pertask`). Edit the tables, then run
``python tools/generate_configs.py``; ``--check`` (and ``tests/test_configs.py``) fail when a
committed file differs from :func:`expected_files`.

Examples:
    >>> files = expected_files()
    >>> print(files['configs/lora/vit-b_vtab-dtd.py'].splitlines()[5])
    _base_ = ['../_base_/image/vit-b16_vtab-dtd.py']
"""
import glob
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

from ..datasets import (FGVC_DATASETS, FGVC_LR_WD, VTAB_AUGMENTED, VTAB_CIFAR100_LR_WD,
                        VTAB_DATASETS, VTAB_GROUPS, VTAB_LABEL_SMOOTHING, VTAB_LR_WD, VTAB_TASKS)
from . import published as pub
from .configgen import (MARK, META_MARK, Backbone, Dataset, Matrix, Published, comment,
                        demo_path, leaf_path, render_demo, render_leaf, render_metafile,
                        render_setting, setting_path)
from .pertask import lookup, petl_kwargs, with_overrides
from .variants import Variant, demo_variants, matrix_variants

_RECIPE_NAMES = dict(lr='lr', weight_decay='weight decay', batch_size='batch size',
                     drop_path_rate='drop path')


# -- video: VideoMAE ViT-B and Video Swin-B on SSv2, HMDB51, K400 -----------------------------
def _video_published(variant: Variant, backbone: Backbone) -> Optional[Published]:
    return pub.VIDEO.get((variant.published, backbone.key))


VIDEO = Matrix(
    name='video',
    backbones=[
        Backbone('videomae-b', 'VideoMAE ViT-B/16 (self-supervised K400 pretrain)',
                 '_base_/video/videomae-b.py', 'mmaction.VisionTransformer'),
        Backbone('videoswin-b', 'Video Swin-B (Kinetics-400 pretrained)',
                 '_base_/video/videoswin-b.py', 'mmaction.SwinTransformer3D'),
    ],
    datasets=[
        Dataset('ssv2', 'Something-Something V2', '_base_/video/ssv2.py', 174),
        Dataset('hmdb51', 'HMDB51 split 1', '_base_/video/hmdb51.py', 51),
        Dataset('k400', 'Kinetics-400', '_base_/video/k400.py', 400),
    ],
    published=_video_published,
    source='V-PETL Bench video table, Kinetics-400 pre-training',
    task='Action Recognition',
    head='cls_head')


# -- image classification: ViT-B/16 on VTAB-1k (19) and FGVC (5) ------------------------------
def _image_datasets() -> List[Dataset]:
    datasets = []
    for key, folder in VTAB_DATASETS.items():
        datasets.append(Dataset(key, f'VTAB-1k {folder} ({VTAB_GROUPS[key]})',
                                '_base_/image/vtab-1k.py', VTAB_TASKS[folder]))
    for key, info in FGVC_DATASETS.items():
        datasets.append(Dataset(key, f'FGVC {info[1]}', '_base_/image/fgvc.py', info[2]))
    return datasets


def _image_setting(dataset: Dataset) -> Tuple[str, List[str]]:
    """A setting's head fields (label smoothing) and lines: data and the reference's lr / wd."""
    if dataset.key in VTAB_DATASETS:
        shared = dict(data_root=f'data/vtab-1k/{VTAB_DATASETS[dataset.key]}',
                      task=VTAB_DATASETS[dataset.key])
        lr, wd = VTAB_LR_WD[dataset.key]
        smoothing = VTAB_LABEL_SMOOTHING[dataset.key]
        pipeline = 'vtab_train_pipeline_aug' if dataset.key in VTAB_AUGMENTED else None
    else:
        name, folder = FGVC_DATASETS[dataset.key][:2]
        shared = dict(data_root=f'data/fgvc/{folder}', name=name)
        lr, wd = FGVC_LR_WD[dataset.key]
        smoothing, pipeline = 0., None
    fields = ', '.join(f'{k}={v!r}' for k, v in shared.items())
    train = f'dict(**dataset, pipeline={{{{_base_.{pipeline}}}}})' if pipeline else 'dataset'
    loss = (f",\n{' ' * 23}loss=dict(_delete_=True, type='LabelSmoothLoss', "
            f"label_smooth_val={smoothing},\n{' ' * 33}mode='original')") if smoothing else ''
    return loss, [f'data_preprocessor = dict(num_classes={dataset.num_classes})',
                  '# the fields every split shares', f'dataset = dict({fields})',
                  f'train_dataloader = dict(dataset={train})',
                  'val_dataloader = dict(dataset=dataset)',
                  'test_dataloader = dict(dataset=dataset)',
                  f'optim_wrapper = dict(optimizer=dict(lr={lr!r}, weight_decay={wd!r}))']


def _image_recipe(variant: Variant, dataset: Dataset) -> List[str]:
    """A leaf's own recipe: the method's per-task lr / wd / batch (pertask.py), or its
    CIFAR-100 lr / wd (the reference's per-method YAMLs)."""
    per_task = lookup(variant.folder, dataset.key)
    recipe = per_task[1] if per_task else {}
    lines = []
    overridden = [_RECIPE_NAMES[k] for k in ('lr', 'weight_decay', 'batch_size') if k in recipe]
    if overridden:
        lines += comment(f"{' / '.join(overridden)} for this task: {per_task[2]}")
    if 'batch_size' in recipe:
        lines.append(f"train_dataloader = dict(batch_size={recipe['batch_size']})")
    own = VTAB_CIFAR100_LR_WD.get(variant.folder) if dataset.key == 'vtab-cifar100' else None
    if own or 'lr' in recipe or 'weight_decay' in recipe:
        lr, wd = own or VTAB_LR_WD.get(dataset.key) or FGVC_LR_WD[dataset.key]
        lr, wd = recipe.get('lr', lr), recipe.get('weight_decay', wd)
        lines.append(f'optim_wrapper = dict(optimizer=dict(lr={lr!r}, weight_decay={wd!r}))')
    return lines


def _image_backbone(variant: Variant, dataset: Dataset) -> Optional[str]:
    """The `backbone` entry with the method's per-task arguments (and drop path), if any."""
    per_task = lookup(variant.folder, dataset.key)
    if per_task is None:
        return None
    kwargs, recipe, cite = per_task
    names = list(kwargs) + [_RECIPE_NAMES[k] for k in ('drop_path_rate', ) if k in recipe]
    lines = comment(f"{', '.join(names)} for this task: {cite}", ' ' * 4)
    entry = _packed('    backbone=dict(petl=', with_overrides(variant.petl_source, kwargs))
    if 'drop_path_rate' in recipe:
        entry += f",\n{' ' * 18}backbone=dict(drop_path_rate={recipe['drop_path_rate']!r})"
    return '\n'.join(lines + [entry + ')'])


def _packed(head: str, petl: str, width: int = 100) -> str:
    """``head + petl`` (a ``dict(...)`` source), its keywords packed into lines of at most
    ``width`` characters (one value per line where they are long: NOAH's per-layer widths)."""
    if len(head + petl) + 2 <= width:
        return head + petl
    pad = ' ' * (len(head) + len('dict('))
    lines, line = [], f'{head}dict('
    for part in (f'{k}={v!r}' for k, v in petl_kwargs(petl).items()):
        if line.strip() and not line.endswith('(') and len(line) + len(part) + 4 > width:
            lines.append(line + ',')
            line = pad + part
        else:
            line += part if line.endswith('(') else f', {part}'
    return '\n'.join(lines + [line + ')'])


def _image_published(variant: Variant, backbone: Backbone) -> Optional[Published]:
    """The VTAB-1k and FGVC tables' figures of a variant (params differ between the tables)."""
    top1: Dict[str, float] = {}
    params: Dict[str, str] = {}
    for table, keys, label in ((pub.VTAB, VTAB_DATASETS, 'VTAB-1k'),
                               (pub.FGVC, FGVC_DATASETS, 'FGVC')):
        row = table.get(variant.published or '')
        if row is not None:  # some methods are in one table only
            top1.update(row['top1'])
            params.update({k: f"{row['params']} ({label} table)" for k in keys})
    return (params, top1) if params else None


IMAGE = Matrix(
    name='image',
    backbones=[Backbone('vit-b', 'ViT-B/16 (ImageNet-21K, Google .npz)',
                        '_base_/image/vit-b16.py', 'mmpretrain.VisionTransformer')],
    datasets=_image_datasets(),
    published=_image_published,
    source='V-PETL Bench, legacy protocol: test-set selection',
    setting=_image_setting,
    recipe=_image_recipe,
    backbone=_image_backbone)

MATRICES: List[Matrix] = [VIDEO, IMAGE]


def leaves(matrix: Matrix) -> List[Tuple[Variant, Backbone, Dataset]]:
    """(variant, backbone, dataset) of every leaf of a matrix: the matrix's variants on the
    backbones their methods support, read from the registry at call time."""
    return [(v, b, d) for v in matrix_variants(matrix.name) for b in matrix.backbones
            if v.supports(b.profile) for d in matrix.datasets]


def expected_files(matrices: Optional[List[Matrix]] = None) -> Dict[str, str]:
    """Path (relative to the repo root) -> generated source: setting bases, leaves, metafiles
    and the demo configs of variants without a hand-written one."""
    files: Dict[str, str] = {}
    metas = defaultdict(list)
    for matrix in MATRICES if matrices is None else matrices:
        for backbone in matrix.backbones:
            for dataset in matrix.datasets:
                files[osp.join('configs', setting_path(backbone, dataset))] = \
                    render_setting(matrix, backbone, dataset)
        for variant, backbone, dataset in leaves(matrix):
            files[leaf_path(variant, backbone, dataset)] = \
                render_leaf(matrix, variant, backbone, dataset)
            metas[variant.folder].append((matrix, variant, backbone, dataset))
    for folder, rows in metas.items():
        files[osp.join('configs', folder, 'metafile.yml')] = render_metafile(folder, rows)
    for variant in demo_variants():
        if not variant.demo_config:
            files[demo_path(variant)] = render_demo(variant)
    return files


def stale_files(root: str) -> List[str]:
    """Generated files that are missing or differ from what the generator writes, and files
    marked as generated that it no longer writes (a variant or setting that went away)."""
    expected = expected_files()
    stale = [path for path, text in expected.items()
             if not osp.isfile(osp.join(root, path)) or open(osp.join(root, path)).read() != text]
    for full in glob.glob(osp.join(root, 'configs', '**', '*.*'), recursive=True):
        path = osp.relpath(full, root)
        if path not in expected and full.endswith(('.py', '.yml')):
            with open(full) as f:
                head = f.read(2000)
            if MARK in head or META_MARK in head:
                stale.append(path)
    return stale
