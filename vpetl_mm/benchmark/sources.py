"""Where a config's recipe comes from: the recorded source of a (method folder, setting).

``tools/analysis/recipe.py`` prints, next to the recipe a config really runs, the source that
recipe was taken from. The answer comes from a chain of lookups, each ``(folder, setting) ->
[RecipeSource] or []``, tried in :data:`SOURCE_LOOKUPS` order; every lookup that knows the
pair adds its entries (a per-task table that sets the lr on top of the common table's
augmentation ...). Today the chain reads what the repository records:

* :mod:`.pertask`: per-task values of a method read in its own repository (``repo@commit
  path``), e.g. Hydra's lr / weight decay / batch size per VTAB-1k task;
* :mod:`vpetl_mm.datasets.recipes`: V-PETL Bench's common image tables (per-task lr / weight
  decay, label smoothing, augmentation flags; the per-method CIFAR-100 YAMLs).

A recipe table with one row per method x benchmark and its source plugs in by adding its
lookup at the front of :data:`SOURCE_LOOKUPS` (:func:`register_source_lookup`). A pair no
lookup knows gets :data:`NO_SOURCE`.

Examples:
    >>> [s.text for s in recipe_sources('lora', 'vit-b_vtab-cifar100')]  # doctest: +ELLIPSIS
    ['V-PETL Bench reference YAML of lora on VTAB-1k cifar ...']
    >>> source_text('lora', 'videoswin-b_ssv2')
    'no recorded source'
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Tuple

from ..datasets import (FGVC_DATASETS, FGVC_LR_WD, VTAB_AUGMENTED, VTAB_CIFAR100_LR_WD,
                        VTAB_DATASETS, VTAB_LABEL_SMOOTHING, VTAB_LR_WD)
from .pertask import lookup as per_task_lookup

NO_SOURCE = 'no recorded source'
_TABLES = 'vpetl_mm/datasets/recipes.py'


@dataclass(frozen=True)
class RecipeSource:
    """One recorded source: what it sets (``keys``), where it was read (``text``) and, where
    the table holds them, the recorded ``values`` (``lr``, ``weight_decay``, ``batch_size``,
    ``drop_path_rate``, ``label_smoothing``, ``augmentation`` (bool), method arguments), which
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


def per_task_sources(folder: str, setting: str) -> List[RecipeSource]:
    """The method's per-task values read in its own repository (:mod:`.pertask`)."""
    found = per_task_lookup(folder, split_setting(setting)[1])
    if found is None:
        return []
    method_args, recipe, cite = found
    return [RecipeSource(tuple(recipe) + tuple(method_args), cite, {**recipe, **method_args})]


def common_image_sources(folder: str, setting: str) -> List[RecipeSource]:
    """V-PETL Bench's common image tables (the reference YAMLs, methods.md sections 3-5)."""
    dataset = split_setting(setting)[1]
    if dataset in VTAB_DATASETS:
        task = VTAB_DATASETS[dataset]
        sources = []
        if dataset == 'vtab-cifar100' and folder in VTAB_CIFAR100_LR_WD:
            lr, wd = VTAB_CIFAR100_LR_WD[folder]
            sources.append(RecipeSource(
                ('lr', 'weight_decay'), f'V-PETL Bench reference YAML of {folder} on VTAB-1k '
                f'{task} ({_TABLES} VTAB_CIFAR100_LR_WD)', dict(lr=lr, weight_decay=wd)))
        lr, wd = VTAB_LR_WD[dataset]
        values = dict(label_smoothing=VTAB_LABEL_SMOOTHING[dataset],
                      augmentation=dataset in VTAB_AUGMENTED)
        values.update({} if sources else dict(lr=lr, weight_decay=wd))
        aug = 'RandAugment' if dataset in VTAB_AUGMENTED else 'no augmentation'
        sources.append(RecipeSource(tuple(values), f'V-PETL Bench common VTAB-1k table, task '
                                    f'{task} ({aug}; {_TABLES} VTAB_LR_WD, VTAB_LABEL_SMOOTHING,'
                                    ' VTAB_AUGMENTED)', values))
        return sources
    if dataset in FGVC_DATASETS and dataset in FGVC_LR_WD:
        lr, wd = FGVC_LR_WD[dataset]
        return [RecipeSource(('lr', 'weight_decay'), 'V-PETL Bench common FGVC table, '
                             f'{FGVC_DATASETS[dataset][0]} ({_TABLES} FGVC_LR_WD)',
                             dict(lr=lr, weight_decay=wd))]
    return []


#: the lookups, most specific first; each one that knows a (folder, setting) adds its sources
SOURCE_LOOKUPS: List[SourceLookup] = [per_task_sources, common_image_sources]


def register_source_lookup(lookup: SourceLookup, first: bool = True) -> SourceLookup:
    """Add a lookup to the chain (in front by default: a recipe table outranks the defaults).

    Examples:
        >>> def table(folder, setting):
        ...     return [RecipeSource(('lr',), 'org/repo@abc1234 configs/x.yaml')] \\
        ...         if folder == 'mine' else []
        >>> _ = register_source_lookup(table)
        >>> source_text('mine', 'vit-b_vtab-dtd')  # doctest: +ELLIPSIS
        'lr: org/repo@abc1234 configs/x.yaml; label_smoothing, augmentation, lr, ...'
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
