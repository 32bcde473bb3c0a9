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
  setting (:mod:`.recipe_settings`).

Another table plugs in by adding its lookup to :data:`SOURCE_LOOKUPS`
(:func:`register_source_lookup`). A pair no lookup knows gets :data:`NO_SOURCE`.

Examples:
    >>> [s.text for s in recipe_sources('lora', 'vit-b_vtab-cifar100')]  # doctest: +ELLIPSIS
    ['synbol/...@c188fad ImageClassification/scripts/run_vit_lora.sh', 'synbol/...']
    >>> source_text('lora', 'vit-tiny_digits5-9_lora')
    'no recorded source'
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Tuple

from .pertask import lookup as per_task_lookup
from .recipe_resolve import resolve
from .recipe_settings import matching_rows
from .recipe_settings import source_text as row_source
from .recipe_table_dense import DENSE_ROWS
from .recipe_table_video import VIDEO_ROWS

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


def table_sources(folder: str, setting: str) -> List[RecipeSource]:
    """The recipe table's sources of an image config (:func:`.recipe_resolve.resolve`).

    Examples:
        >>> [s.keys for s in table_sources('hydra', 'vit-b_vtab-dtd')][0]
        ('lr', 'weight_decay', 'batch_size')
    """
    recipe = resolve(folder, split_setting(setting)[1]) if setting.startswith('vit-b_') \
        else None
    if recipe is None:
        return []
    return [RecipeSource(tuple(values), text, dict(values)) for text, values in recipe.layers]


def per_task_sources(folder: str, setting: str) -> List[RecipeSource]:
    """The method arguments a method's own repository sets for the task (:mod:`.pertask`).

    Examples:
        >>> per_task_sources('gps', 'vit-b_fgvc-cars')[0].values
        {'k': 15}
    """
    found = per_task_lookup(folder, split_setting(setting)[1])
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
            for row in matching_rows(VIDEO_ROWS + DENSE_ROWS, folder, setting)]


#: the lookups, most specific first; each one that knows a (folder, setting) adds its sources
SOURCE_LOOKUPS: List[SourceLookup] = [table_sources, per_task_sources, setting_sources]


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
