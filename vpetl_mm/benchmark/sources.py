"""Where a config's recipe comes from: the recorded source of a (method folder, setting).

``tools/analysis/recipe.py`` prints, next to the recipe a config really runs, the source that
recipe was taken from. The answer comes from a chain of lookups, each ``(folder, setting) ->
[RecipeSource] or []``, tried in :data:`SOURCE_LOOKUPS` order; every lookup that knows the
pair adds its entries. Today the chain reads what the repository records:

* :mod:`.recipe_table` (through :mod:`.recipe_resolve`): the image benchmark's recipe table,
  one row per method x family (VTAB-1k, FGVC) with its ``repo@commit path``, the per-task lr /
  wd / batch / drop path of :mod:`.pertask` on top; one entry per source, most specific first;
* :mod:`.pertask`: the method arguments a method's own repository sets per task (Hydra's
  scale, GPS's k ...);
* :mod:`.recipe_table_video` and :mod:`.recipe_table_dense`: the video and dense rows, keyed by
  setting (:mod:`.recipe_settings`);
* the backbones after ViT-B/16 (:mod:`.matrices_foundation`): the recipe table under its
  ``'vpetl'`` choice (V-PETL Bench's protocol, what their configs run) and the backbone base
  that sets the input normalisation;
* a variant that wraps another's config (``Variant.wraps``: PACE over LoRA): the wrapped
  folder's sources and the wrapper's own arguments (:data:`WRAPPER_SOURCES`);
* the embedded digits demo: its own recipe (:data:`DEMO_SOURCE`).

Another table plugs in by adding its lookup to :data:`SOURCE_LOOKUPS`
(:func:`register_source_lookup`). A pair no lookup knows gets :data:`NO_SOURCE`.

Examples:
    >>> [s.text for s in recipe_sources('lora', 'vit-b_vtab-cifar100')]  # doctest: +ELLIPSIS
    ['synbol/...@c188fad ImageClassification/scripts/run_vit_lora.sh', 'synbol/...']
    >>> source_text('lora', 'vit-tiny_digits5-9_lora')  # doctest: +ELLIPSIS
    "optimizer, lr, batch_size, max_epochs: vpetl_mm's own demo recipe: ..."
    >>> source_text('lora', 'vit-s16_vtab-dtd')
    'no recorded source'
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Tuple

from ..datasets import FGVC_DATASETS, VTAB_DATASETS
from .configgen import Backbone
from .matrices_foundation import FOUNDATION, FOUNDATION_VTAB, RECIPE
from .pertask import lookup as per_task_lookup
from .recipe_resolve import recipe_choice, resolve
from .recipe_settings import matching_rows
from .recipe_settings import source_text as row_source
from .recipe_table_dense import DENSE_ROWS
from .recipe_table_video import VIDEO_ROWS
from .variants import variants

NO_SOURCE = 'no recorded source'


@dataclass(frozen=True)
class RecipeSource:
    """One recorded source: what it sets (``keys``), where it was read (``text``) and, where
    the table holds them, the recorded ``values`` (the recipe table's
    :data:`~.recipe_table.RECIPE_FIELDS`, method arguments), which
    :func:`vpetl_mm.apis.recipe.deviations` compares with what the config runs."""
    keys: Tuple[str, ...]
    text: str
    values: Dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(keys=list(self.keys), source=self.text, values=dict(self.values))


SourceLookup = Callable[[str, str], List[RecipeSource]]


def split_setting(stem: str) -> Tuple[str, str]:
    """A generated config's file stem as (backbone key, dataset key).

    Examples:
        >>> split_setting('vit-b_vtab-cifar100'), split_setting('vit-b16_fgvc-cub')
        (('vit-b', 'vtab-cifar100'), ('vit-b16', 'fgvc-cub'))
    """
    backbone, _, dataset = stem.partition('_')
    return backbone, dataset


def wrapped_folder(folder: str) -> str:
    """The folder whose recipe a variant's configs inherit (``Variant.wraps``), else itself.

    Examples:
        >>> wrapped_folder('pace_lora'), wrapped_folder('ssf')
        ('lora', 'ssf')
    """
    found = [v.wraps for v in variants() if v.folder == folder and v.wraps]
    return found[0] if found else folder


def foundation_backbones() -> Dict[str, Backbone]:
    """Backbone key -> backbone of the image matrices after ViT-B/16 (:mod:`.matrices_foundation`),
    whose configs run the recipe table's :data:`~.matrices_foundation.RECIPE` choice."""
    return {b.key: b for matrix in (FOUNDATION, FOUNDATION_VTAB) for b in matrix.backbones}


def table_sources(folder: str, setting: str) -> List[RecipeSource]:
    """The recipe table's sources of an image config (:func:`.recipe_resolve.resolve`): the
    ViT-B/16 configs under the table's default choice, the foundation backbones' under V-PETL's
    protocol (``'vpetl'``) without the normalisation (their backbone base sets it:
    :func:`backbone_sources`); a wrapper variant reads the folder it wraps.

    Examples:
        >>> [s.keys for s in table_sources('hydra', 'vit-b_vtab-dtd')][0]
        ('lr', 'weight_decay', 'batch_size')
        >>> table_sources('ssf', 'clip-b16_vtab-dtd')[-1].text  # doctest: +ELLIPSIS
        'synbol/...@c188fad ImageClassification/train/train_model_lora.py, ...'
    """
    backbone, dataset = split_setting(setting)
    folder = wrapped_folder(folder)
    if backbone == 'vit-b':
        recipe = resolve(folder, dataset)
    elif backbone in foundation_backbones():
        with recipe_choice(RECIPE):
            recipe = resolve(folder, dataset)
    else:
        recipe = None
    if recipe is None:
        return []
    found = []
    for text, values in recipe.layers:
        if backbone != 'vit-b':
            values = {k: v for k, v in values.items() if k != 'normalisation'}
        if values:
            found.append(RecipeSource(tuple(values), text, dict(values)))
    return found


def backbone_sources(folder: str, setting: str) -> List[RecipeSource]:
    """The backbone base of a foundation image config: its input normalisation (the
    backbone's own, not the ViT-B/16 rows': :mod:`.matrices_foundation`).

    Examples:
        >>> backbone_sources('lora', 'dinov2-b14_vtab-dtd')[0].text  # doctest: +ELLIPSIS
        "configs/_base_/image/dinov2-b14.py (the backbone's own input normalisation; ..."
    """
    backbone, dataset = split_setting(setting)
    found = foundation_backbones().get(backbone)
    if found is None or dataset not in {**VTAB_DATASETS, **FGVC_DATASETS}:
        return []
    return [RecipeSource(('normalisation', ), f"configs/{found.base} (the backbone's own input "
                         f'normalisation; every method runs the {RECIPE!r} protocol: '
                         'vpetl_mm/benchmark/matrices_foundation.py)')]


def per_task_sources(folder: str, setting: str) -> List[RecipeSource]:
    """The method arguments a method's own repository sets for the task (:mod:`.pertask`).

    Examples:
        >>> per_task_sources('gps', 'vit-b_fgvc-cars')[0].values
        {'k': 15}
    """
    found = per_task_lookup(wrapped_folder(folder), split_setting(setting)[1])
    if found is None or not found[0]:
        return []
    return [RecipeSource(tuple(found[0]), found[2], dict(found[0]))]


def setting_sources(folder: str, setting: str) -> List[RecipeSource]:
    """The video and dense rows of a config, the method's own first.

    Examples:
        >>> [s.text.split()[0] for s in setting_sources('mona', 'swin-l_ade20k')]
        ['Leiyi-Hu/mona@5deeac9', 'Leiyi-Hu/mona@5deeac9']
    """
    return [RecipeSource(tuple(row.values), row_source(row, folder), dict(row.values))
            for row in matching_rows(VIDEO_ROWS + DENSE_ROWS, wrapped_folder(folder), setting)]


#: folder -> the recorded source of the wrapper's own arguments (the recipe is the wrapped
#: folder's config's); PACE: the class defaults, its repository's VTAB-1k CIFAR-100 example
WRAPPER_SOURCES: Dict[str, RecipeSource] = dict(pace_lora=RecipeSource(
    ('lambda_', 'sigma'), 'MaxwellYaoNi/PACE@9fee345 Vision/README.md (its VTAB-1k CIFAR-100 '
    'example, tuned per task there; vpetl_mm/methods/pace.py)', dict(lambda_=1.0, sigma=1.2)))


def wrapper_sources(folder: str, setting: str) -> List[RecipeSource]:
    """The wrapper's own arguments' source (:data:`WRAPPER_SOURCES`), for a config the
    other lookups know through the wrapped folder.

    Examples:
        >>> wrapper_sources('pace_lora', 'clip-b16_fgvc-cub')[0].values
        {'lambda_': 1.0, 'sigma': 1.2}
    """
    found = WRAPPER_SOURCES.get(folder)
    return [found] if found is not None and wrapped_folder(folder) != folder else []


#: the embedded CPU demo (configs/demo): a recipe of this repository, no published reference
DEMO_SOURCE = RecipeSource(
    ('optimizer', 'lr', 'batch_size', 'max_epochs'),
    "vpetl_mm's own demo recipe: configs/demo/_base_/vit-tiny_digits.py (no published "
    "reference; each method's lr chosen on the val split: demo/digits_transfer.py)")


def demo_sources(folder: str, setting: str) -> List[RecipeSource]:
    """:data:`DEMO_SOURCE` for the digits demo's configs and base.

    Examples:
        >>> demo_sources('demo', 'vit-tiny_digits5-9_lora')[0].keys[0]
        'optimizer'
    """
    return [DEMO_SOURCE] if setting.startswith('vit-tiny_digits') else []


#: the lookups, most specific first; each one that knows a (folder, setting) adds its sources
SOURCE_LOOKUPS: List[SourceLookup] = [table_sources, per_task_sources, backbone_sources,
                                      setting_sources, wrapper_sources, demo_sources]


def register_source_lookup(lookup: SourceLookup, first: bool = True) -> SourceLookup:
    """Add a lookup to the chain (in front by default: a recipe table outranks the defaults).

    Examples:
        >>> def table(folder, setting):
        ...     return [RecipeSource(('lr',), 'org/repo@abc1234 configs/x.yaml')] \\
        ...         if folder == 'mine' else []
        >>> _ = register_source_lookup(table)
        >>> source_text('mine', 'vit-b_vtab-dtd')  # doctest: +ELLIPSIS
        'lr: org/repo@abc1234 configs/x.yaml; lr, weight_decay, ...'
        >>> SOURCE_LOOKUPS.remove(table)
    """
    SOURCE_LOOKUPS.insert(0 if first else len(SOURCE_LOOKUPS), lookup)
    return lookup


def recipe_sources(folder: str, setting: str) -> List[RecipeSource]:
    """Every recorded source of the config ``configs/<folder>/<setting>.py``, most specific
    first; empty when none is recorded."""
    return [source for lookup in SOURCE_LOOKUPS for source in lookup(folder, setting)]


def source_text(folder: str, setting: str) -> str:
    """The sources as one line (``keys: source; ...``), or :data:`NO_SOURCE`."""
    sources = recipe_sources(folder, setting)
    if not sources:
        return NO_SOURCE
    return '; '.join(f"{', '.join(s.keys)}: {s.text}" for s in sources)
