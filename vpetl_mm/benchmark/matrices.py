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

from ..datasets import FGVC_DATASETS, VTAB_DATASETS
from . import published as pub
from .configgen import (MARK, META_MARK, Backbone, Dataset, Matrix, Published, comment,
                        data_path, demo_path, leaf_path, render_data, render_demo, render_leaf,
                        render_metafile, render_setting, setting_path)
from .recipe_base import family_bases, own_leaf, render_recipe_base, shared_recipe
from .recipe_render import image_data, image_leaf_recipe, image_setting
from .matrices_foundation import FOUNDATION, FOUNDATION_VTAB, image_datasets, render_wrapper
from .recipe_resolve import family_of
from .variants import Variant, demo_variants, variants

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
def _image_setting(dataset: Dataset) -> Tuple[str, List[str]]:
    """A setting's head fields and lines: the common recipe over the data base."""
    return image_setting(dataset.key, dataset.num_classes)


def _image_leaf(variant: Variant, dataset: Dataset) -> Tuple[Optional[str], List[str]]:
    """A leaf's `model` entries and lines: over its method's recipe base where it has one
    (recipe_base.py: the per-task values), else where its row differs from the setting's."""
    shared = shared_recipe(variant.folder, family_of(dataset.key) or '')
    if shared is not None:
        return own_leaf(shared, dataset.key, variant.petl_source)
    return image_leaf_recipe(variant.folder, dataset.key, variant.petl_source, variant.head)


def _image_recipe(variant: Variant, dataset: Dataset) -> List[str]:
    """A leaf's own recipe lines (after `model`)."""
    return _image_leaf(variant, dataset)[1]


def _image_backbone(variant: Variant, dataset: Dataset) -> Optional[str]:
    """The leaf's `model` entries: per-task method arguments, drop path, head, batch augments."""
    return _image_leaf(variant, dataset)[0]


def _image_data(dataset: Dataset) -> List[str]:
    return image_data(dataset.key)


def _image_bases(variant: Variant, backbone: Backbone, dataset: Dataset) -> Optional[List[str]]:
    """A leaf's data base and its method's recipe base, where the method has one."""
    return family_bases(backbone.base, variant.folder, dataset.key)


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
    datasets=image_datasets(),
    published=_image_published,
    source='V-PETL Bench, legacy protocol: test-set selection',
    setting=_image_setting,
    recipe=_image_recipe,
    backbone=_image_backbone,
    data=_image_data,
    bases=_image_bases)

#: the ViT-B/16 matrix first: the foundation matrices' PACE configs inherit LoRA configs
MATRICES: List[Matrix] = [VIDEO, IMAGE, FOUNDATION, FOUNDATION_VTAB]


def backbone_variants(matrix: Matrix, backbone: Backbone) -> List[Variant]:
    """The variants a backbone runs, in table order: every variant of the matrix its profile
    supports, or the folders its ``variants`` names (a variant that joins no matrix by itself,
    ``matrices=()``, runs where a backbone names it: PACE on LoRA)."""
    pool = [v for v in variants()
            if v.joins(matrix.name) or (backbone.variants and v.matrices == ())]
    if backbone.variants is None:
        return [v for v in pool if v.joins(matrix.name) and v.supports(backbone.profile)]
    chosen = [v for v in pool if v.folder in backbone.variants]
    missing = set(backbone.variants) - {v.folder for v in chosen if v.supports(backbone.profile)}
    if missing:
        raise ValueError(f'backbone {backbone.key!r} names variants {sorted(missing)} that are '
                         f'not in the {matrix.name!r} matrix or whose methods refuse '
                         f'{backbone.profile}; fix its variants in {__name__} or the variant.')
    return chosen


def leaves(matrix: Matrix) -> List[Tuple[Variant, Backbone, Dataset]]:
    """(variant, backbone, dataset) of every leaf of a matrix, variant by variant: each
    backbone's variants (:func:`backbone_variants`), read from the registry at call time."""
    chosen = {b.key: backbone_variants(matrix, b) for b in matrix.backbones}
    return [(v, b, d) for v in variants() for b in matrix.backbones if v in chosen[b.key]
            for d in matrix.datasets]


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
        for dataset in matrix.datasets if matrix.data else []:
            files[osp.join('configs', data_path(dataset))] = render_data(matrix, dataset)
        for variant, backbone, dataset in leaves(matrix):
            path = leaf_path(variant, backbone, dataset)
            if variant.wraps:
                inner = osp.join('configs', variant.wraps, osp.basename(path))
                if inner not in files:
                    raise ValueError(f'{path} wraps {inner}, which no matrix writes: add '
                                     f'{variant.wraps!r} to the backbone {backbone.key!r}.')
                files[path] = render_wrapper(variant, backbone, dataset)
            else:
                files[path] = render_leaf(matrix, variant, backbone, dataset)
            metas[variant.folder].append((matrix, variant, backbone, dataset))
            files.update(_recipe_base(matrix, variant, backbone, dataset))
    for folder, rows in metas.items():
        files[osp.join('configs', folder, 'metafile.yml')] = render_metafile(folder, rows)
    for variant in demo_variants():
        if not variant.demo_config:
            files[demo_path(variant)] = render_demo(variant)
    return files


def _recipe_base(matrix: Matrix, variant: Variant, backbone: Backbone,
                 dataset: Dataset) -> Dict[str, str]:
    """{path: source} of the method-level recipe base a leaf inherits, if any."""
    bases = matrix.bases(variant, backbone, dataset) if matrix.bases else None
    if not bases:
        return {}
    shared = shared_recipe(variant.folder, family_of(dataset.key) or '')
    return {osp.join('configs', bases[-1]): render_recipe_base(
        shared, backbone.base, f'{variant.title} on {backbone.title}', variant.petl_source,
        variant.head)}


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
