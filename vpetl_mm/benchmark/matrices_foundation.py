"""The image matrices of the backbones after V-PETL Bench's ViT-B/16: foundation models and the
larger ImageNet-21k ViTs (issue 21, section 3).

Each :class:`~.configgen.Backbone` names the variant folders it runs; the leaves go through the
same renderers as the ViT-B leaves (:func:`~.recipe_render.image_leaf_recipe`,
:func:`~.configgen.render_leaf`), over a setting base
``configs/_base_/image/<backbone>_<dataset>.py``: ViT-B/16's setting base of the dataset
(``vit-b16_<dataset>.py``: V-PETL's trainer, data and per-dataset protocol) with the host of the
hand-written backbone base ``configs/_base_/image/<backbone>.py`` (host, weight file, input
normalisation), which it inherits too (:func:`~.configgen.render_host_setting`; :func:`_over`
checks that the protocol's setting lines are ViT-B/16's).

The recipe: no method has a published VTAB-1k or FGVC number on these backbones, so there is no
source to reproduce. Every method runs **V-PETL Bench's protocol** (:data:`RECIPE`: the
recipe table's ``'vpetl'`` choice, :func:`~.recipe_resolve.recipe_choice`): the family's common
row plus V-PETL's own per-method scripts (LoRA's and the adapter trainers' FGVC batch 128, full
fine-tuning's lr / wd ...), with the methods' per-task arguments (VPT-deep's prompt length per
task). The rows read in a method's own repository (SSF's timm recipe) reproduce ViT-B numbers
and carry ViT-B choices (SSF's Inception normalisation is Google's pretraining scale), so they
are left out: one protocol for every method on a backbone is the like-for-like comparison, and
the backbone base's normalisation is the backbone's own. docs/foundation.md, "Configs".

Examples:
    >>> [b.key for b in FOUNDATION.backbones]
    ['dinov2-b14', 'clip-b16', 'vit-l16', 'vit-h14']
    >>> FOUNDATION_VTAB.backbones[0].variants, len(FOUNDATION_VTAB.datasets)
    (('lora',), 19)
"""
import os.path as osp
from typing import List, Optional

from ..datasets import FGVC_DATASETS, VTAB_DATASETS, VTAB_GROUPS, VTAB_TASKS
from .configgen import MARK, Backbone, Dataset, Matrix, Published, leaf_path
from .recipe_render import image_data, image_leaf_recipe, image_setting
from .recipe_resolve import recipe_choice
from .variants import Variant

#: the recipe table's choice for these backbones (module docstring)
RECIPE = 'vpetl'
#: ViT-B/16's backbone base: the settings here are its settings with another host
VIT_B_BASE = '_base_/image/vit-b16.py'
#: DINOv2 and CLIP: V-PETL's methods and the methods after it (issue 21, section 3)
FOUNDATION_VARIANTS = ('full', 'linear', 'lora', 'dora', 'adapter', 'adaptformer', 'ssf',
                       'vpt_deep', 'glora', 'adapter_plus', 'pace_lora')
#: ViT-L/16 and ViT-H/14: V-PETL's methods that its larger-backbone tables run
LARGE_VARIANTS = ('full', 'linear', 'bitfit', 'lora', 'adapter', 'adaptformer', 'ssf',
                  'vpt_deep')


def image_datasets(fgvc: bool = True) -> List[Dataset]:
    """VTAB-1k's 19 tasks, then (``fgvc``) FGVC's 5 datasets, as matrix datasets.

    Examples:
        >>> len(image_datasets()), image_datasets(fgvc=False)[-1].key
        (24, 'vtab-smallnorb-ele')
    """
    datasets = [Dataset(key, f'VTAB-1k {folder} ({VTAB_GROUPS[key]})',
                        '_base_/image/vtab-1k.py', VTAB_TASKS[folder])
                for key, folder in VTAB_DATASETS.items()]
    if fgvc:
        datasets += [Dataset(key, f'FGVC {info[1]}', '_base_/image/fgvc.py', info[2])
                     for key, info in FGVC_DATASETS.items()]
    return datasets


def _over(dataset: Dataset) -> str:
    """ViT-B/16's setting base of ``dataset`` (relative to ``configs/``), which each setting
    base of these backbones inherits with its backbone's host.

    ViT-B/16's settings follow the recipe table's default choice; for every dataset their lines
    (head init, loss, augmentation, lr / wd, test epochs) and data are those of V-PETL's
    protocol (:data:`RECIPE`), which these backbones run. A dataset where they part is an error.

    Examples:
        >>> _over(FOUNDATION.datasets[2])
        '_base_/image/vit-b16_vtab-dtd.py'
    """
    default = image_setting(dataset.key, dataset.num_classes), image_data(dataset.key)
    with recipe_choice(RECIPE):
        ours = image_setting(dataset.key, dataset.num_classes), image_data(dataset.key)
    if ours != default:
        raise ValueError(
            f'{dataset.key}: the recipe table\'s {RECIPE!r} setting lines differ from those of '
            f'ViT-B/16\'s setting base ({ours} vs {default}), so the foundation settings cannot '
            f'inherit it; give their matrix a setting of its own ({__name__}).')
    return f'{osp.splitext(VIT_B_BASE)[0]}_{dataset.key}.py'


def _recipe(variant: Variant, dataset: Dataset) -> List[str]:
    with recipe_choice(RECIPE):
        return image_leaf_recipe(variant.folder, dataset.key, variant.petl_source)[1]


def _backbone(variant: Variant, dataset: Dataset) -> Optional[str]:
    with recipe_choice(RECIPE):
        return image_leaf_recipe(variant.folder, dataset.key, variant.petl_source,
                                 variant.head)[0]


def _published(variant: Variant, backbone: Backbone) -> Optional[Published]:
    """None: no VTAB-1k / FGVC figure is published per task for these backbones
    (../shared/reference/anchors-2026.md names peers that run DINOv2 and CLIP, no tables)."""
    return None


_SOURCE = 'none published for this backbone'
_GOOGLE = 'ImageNet-21K, Google .npz'
FOUNDATION = Matrix(
    name='image',
    backbones=[
        Backbone('dinov2-b14', 'DINOv2 ViT-B/14 (LVD-142M, mmpretrain file; 224 px, 16 x 16 '
                 'patches)', '_base_/image/dinov2-b14.py', 'mmpretrain.VisionTransformer',
                 FOUNDATION_VARIANTS),
        Backbone('clip-b16', 'CLIP ViT-B/16 (OpenAI, pre-norm; mmpretrain file)',
                 '_base_/image/clip-b16.py', 'mmpretrain.VisionTransformer',
                 FOUNDATION_VARIANTS),
        Backbone('vit-l16', f'ViT-L/16 ({_GOOGLE})', '_base_/image/vit-l16.py',
                 'mmpretrain.VisionTransformer', LARGE_VARIANTS),
        Backbone('vit-h14', f'ViT-H/14 ({_GOOGLE})', '_base_/image/vit-h14.py',
                 'mmpretrain.VisionTransformer', LARGE_VARIANTS),
    ],
    datasets=image_datasets(),
    published=_published,
    source=_SOURCE,
    recipe=_recipe,
    backbone=_backbone,
    over=_over)

#: one VTAB-1k config per task with LoRA (LoRA's per-profile defaults: q and v on EVA-02's fused
#: qkv, fc1 + fc2 on ConvNeXt's pointwise MLP)
FOUNDATION_VTAB = Matrix(
    name='image',
    backbones=[
        Backbone('eva02-b14', 'EVA-02 ViT-B/14 (MIM on IN-21K, mmpretrain ViTEVA02; 224 px)',
                 '_base_/image/eva02-b14.py', 'mmpretrain.ViTEVA02', ('lora', )),
        Backbone('convnext-b', 'ConvNeXt-B (ImageNet-21K, mmpretrain ConvNeXt)',
                 '_base_/image/convnext-b.py', 'mmpretrain.ConvNeXt', ('lora', )),
    ],
    datasets=image_datasets(fgvc=False),
    published=_published,
    source=_SOURCE,
    recipe=_recipe,
    backbone=_backbone,
    over=_over)


def render_wrapper(variant: Variant, backbone: Backbone, dataset: Dataset) -> str:
    """The config of a variant that wraps another's (``variant.wraps``): it inherits that
    variant's config of the same setting and adds ``variant.lines`` (PACE's model wrapper).

    Examples:
        >>> from vpetl_mm.benchmark.variants import variants
        >>> pace = [v for v in variants() if v.folder == 'pace_lora'][0]
        >>> text = render_wrapper(pace, FOUNDATION.backbones[0], FOUNDATION.datasets[2])
        >>> text.splitlines()[5]
        "_base_ = ['../lora/dinov2-b14_vtab-dtd.py']"
    """
    inner = osp.join('..', variant.wraps, osp.basename(leaf_path(variant, backbone, dataset)))
    return '\n'.join([
        f'# {variant.title}',
        f'# on {backbone.title},',
        f'# {dataset.title} ({dataset.num_classes} classes).',
        f'# Published figures: configs/{variant.folder}/metafile.yml.',
        MARK,
        f'_base_ = [{inner!r}]',
        '',
        variant.lines.rstrip('\n')]) + '\n'
