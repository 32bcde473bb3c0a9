"""The recipe of one image config from the recipe table (:mod:`.recipe_table`), key by key.

:func:`resolve` merges, from general to specific, the family's common row (for rows that
inherit it), the method's row, the row's values for the task and the method's per-task file
(:mod:`.pertask`), and keeps for every key the source it came from.

Examples:
    >>> recipe = resolve('ssf', 'vtab-cifar100')
    >>> recipe.values['lr'], recipe.values['weight_decay'], recipe.values['decay_1d']
    (0.005, 5e-05, False)
    >>> recipe.cites['lr']
    'dongzelian/SSF@e94e0e7 train_scripts/vit/vtab/cifar_100/train_ssf.sh, train.py'
    >>> resolve('lora', 'fgvc-cub').values['batch_size']
    128
"""
import contextlib
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..datasets import FGVC_DATASETS, VTAB_DATASETS
from .pertask import lookup as per_task_lookup
from .recipe_table import COMMON, ROWS, TIMM_TASKS, VPETL, Row

# V-PETL Bench's file names of the tasks (configs/model_*/{vtab,fgvc}/<task>.yaml)
_VPETL_TASKS = {**VTAB_DATASETS, 'vtab-cifar100': 'cifar100',
                **{k: v[1] for k, v in FGVC_DATASETS.items()}}


@dataclass
class Resolved:
    """The recipe of one (folder, dataset).

    Attributes:
        values: Recipe key -> value (:data:`~.recipe_table.RECIPE_FIELDS`).
        cites: Recipe key -> the source it was read in.
        layers: (source, values) from the most specific source to the least, each with only
            the keys it sets for this config.
        note: The method row's note.
    """
    values: Dict[str, Any]
    cites: Dict[str, str]
    layers: List[Tuple[str, Dict[str, Any]]]
    note: str = ''


def family_of(dataset: str) -> Optional[str]:
    """``'vtab'``, ``'fgvc'`` or None for a dataset key.

    Examples:
        >>> family_of('vtab-dtd'), family_of('fgvc-cub'), family_of('ssv2')
        ('vtab', 'fgvc', None)
    """
    return 'vtab' if dataset in VTAB_DATASETS else 'fgvc' if dataset in FGVC_DATASETS else None


def row_of(folder: str, family: str) -> Optional[Row]:
    """The method's row of the table, or None.

    Examples:
        >>> row_of('hydra', 'vtab').values['t_initial'], row_of('ia3', 'vtab')
        (500, None)
    """
    return TABLE.get((folder, family))


def cite_of(row: Row, dataset: str) -> str:
    """A row's source for one task (``<task>`` replaced by the source's task name)."""
    names = _VPETL_TASKS if row.source.startswith(VPETL) else TIMM_TASKS
    return row.source.replace('<task>', names[dataset])


#: which rows apply: ``'published'`` (the default: the source of each published number) or
#: ``'vpetl'`` (V-PETL Bench's protocol for every method: the rows read in a method's own
#: repository and its per-task lr / wd / batch / drop path are left out)
CHOICES = ('published', 'vpetl')
_CHOICE = {'rows': 'published'}


@contextlib.contextmanager
def recipe_choice(choice: str) -> Iterator[None]:
    """Resolve with the ``choice`` of :data:`CHOICES` inside the block
    (``tools/generate_configs.py --recipe vpetl``).

    Examples:
        >>> with recipe_choice('vpetl'):
        ...     resolve('ssf', 'vtab-cifar100').values['weight_decay']
        1.0
    """
    if choice not in CHOICES:
        raise ValueError(f'unknown recipe choice {choice!r}; choose one of {CHOICES}')
    before, _CHOICE['rows'] = _CHOICE['rows'], choice
    try:
        yield
    finally:
        _CHOICE['rows'] = before


def current_choice() -> str:
    """The :data:`CHOICES` entry :func:`resolve` follows now."""
    return _CHOICE['rows']


def resolve(folder: str, dataset: str) -> Optional[Resolved]:
    """The recipe of ``configs/<folder>/vit-b_<dataset>.py``; None outside VTAB-1k / FGVC
    (``folder='*'``: the family's common row, what the setting bases hold)."""
    family = family_of(dataset)
    if family is None:
        return None
    row = None if folder == '*' else row_of(folder, family)
    own = row is not None and not row.inherits
    if own and _CHOICE['rows'] == 'vpetl':
        row = None
    layers: List[Tuple[str, Dict[str, Any]]] = []  # general -> specific
    for source in ([COMMON[family]] if row is None or row.inherits else []) + \
            ([row] if row else []):
        layers.append((cite_of(source, dataset), dict(source.values)))
        layers.append((cite_of(source, dataset), dict(source.tasks.get(dataset, {}))))
    found = per_task_lookup(folder, dataset)
    if found and found[1] and _CHOICE['rows'] == 'published':
        layers.append((found[2], dict(found[1])))
    values: Dict[str, Any] = {}
    cites: Dict[str, str] = {}
    for text, layer in layers:
        values.update(layer)
        cites.update({key: text for key in layer})
    merged: Dict[str, Dict[str, Any]] = {}  # source -> its keys, most specific source first
    for text, layer in reversed(layers):
        merged.setdefault(text, {}).update(
            {k: v for k, v in layer.items() if cites[k] == text})
    return Resolved(values, cites, [(text, own) for text, own in merged.items() if own],
                    row.note if row else '')


#: (folder, family) -> row
TABLE: Dict[Tuple[str, str], Row] = {(row.folder, row.family): row for row in ROWS}
