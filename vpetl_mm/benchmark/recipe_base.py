"""Method-level recipe bases: what a method's own recipe row shares across a family's tasks.

A method whose row stands alone (``inherits=False``: its own repository's recipe, not V-PETL's
common protocol) gets one recipe base per backbone x family,
``configs/_base_/recipes/<backbone>_<folder>_<family>.py``: the backbone base, the method and
every recipe key whose value is the same on all the family's tasks, each with its source. Each
of its leaves inherits the task's data base (``_base_/image/<dataset>.py``) and that recipe base
and writes only the task's classes and its per-task values.

mmengine refuses two bases that set the same top-level key, so the two split the keys: the
recipe base holds the backbone base's (``model``, ``data_preprocessor``, optimizer, schedule,
``legacy_eval``), the data base the data loaders; the classes (in ``model`` and
``data_preprocessor``) and a method's batch size and augmentation (in ``train_dataloader``) are
therefore the leaf's. A leaf resolves to the same config as over the setting base: the effective
recipe is the common row's per-task values under the method's own (:func:`effective`), and every
key of it is written, in the recipe base or the leaf. Methods whose rows start from the common
row keep their setting base (its per-task common values would otherwise move into every leaf).

Examples:
    >>> shared = shared_recipe('ssf', 'vtab')
    >>> shared.values['max_epochs'], 'lr' in shared.values, shared.tasks['vtab-dtd'][0]['lr']
    (110, False, 0.005)
"""
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ..datasets import FGVC_DATASETS, VTAB_DATASETS, VTAB_TASKS
from .configgen import MARK, comment
from .pertask import PER_TASK, lookup, with_overrides
from .recipe_render import (BATCH_AUGMENT_SOURCES, HEAD_INIT_SOURCES, cited, loader_lines,
                            loss_source, packed, schedule_lines)
from .recipe_resolve import Resolved, cite_of, current_choice, family_of, resolve, row_of
from .recipe_table import COMMON

_FAMILY = dict(vtab=list(VTAB_DATASETS), fgvc=list(FGVC_DATASETS))
# keys written together: the loss reads both, the decay rules both
_UNITS = (('label_smoothing', 'batch_augments'), ('decay_1d', 'decay_bias'))
# the data base's train loader (vtab-1k.py, fgvc.py): batch 64; VTAB without augmentation
_DATA_BATCH = 64
# explicit inits: the backbone base's head has no init_cfg to merge into (no _delete_)
_INITS = dict(HEAD_INIT_SOURCES, trunc_normal="dict(type='TruncNormal', layer='Linear', std=0.02)")


@dataclass
class Shared:
    """A method's recipe on one family, split into the shared part and the per-task rest.

    Attributes:
        folder: The method's config folder.
        family: ``'vtab'`` or ``'fgvc'``.
        values: Keys with one value on every task (the recipe base's), with ``cites``.
        tasks: Dataset key -> the task's own (values, cites).
    """
    folder: str
    family: str
    values: Dict[str, Any]
    cites: Dict[str, str]
    tasks: Dict[str, Tuple[Dict[str, Any], Dict[str, str]]]


def effective(folder: str, dataset: str) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """What a config of a stand-alone row runs, key by key with its source: the common row's
    values for the task (what the setting base holds) under the row's own.

    Examples:
        >>> values, cites = effective('dtl', 'vtab-dtd')
        >>> values['head_init'], cites['head_init'].split('@')[0]  # DTL's is not recorded
        ('default', 'synbol/Parameter-Efficient-Transfer-Learning-Benchmark')
    """
    common, own = resolve('*', dataset), resolve(folder, dataset)
    values = {**common.values, **own.values}
    if 'legacy_eval' in own.values:  # the leaf's dict merged into the setting's
        values['legacy_eval'] = {**common.values['legacy_eval'], **own.values['legacy_eval']}
    return values, {**common.cites, **own.cites}


def shared_recipe(folder: str, family: str) -> Optional[Shared]:
    """The family split of a stand-alone row (None: the method keeps its setting base)."""
    row = row_of(folder, family)
    if row is None or row.inherits or current_choice() != 'published':
        return None
    tasks = {d: effective(folder, d) for d in _FAMILY[family]}
    first = tasks[_FAMILY[family][0]][0]
    values = {k: v for k, v in first.items() if all(t[0].get(k) == v for t in tasks.values())}
    for unit in _UNITS:  # a unit is shared only as a whole
        if not all(k in values for k in unit):
            values = {k: v for k, v in values.items() if k not in unit}
    cites = {k: _template(folder, family, k, tasks) for k in values}
    rest = {d: ({k: v for k, v in t[0].items() if k not in values}, t[1])
            for d, t in tasks.items()}
    return Shared(folder, family, values, cites, rest)


def _template(folder: str, family: str, key: str,
              tasks: Dict[str, Tuple[Dict[str, Any], Dict[str, str]]]) -> str:
    """The source of a shared key: one file, or the row's pattern (``<task>``) where each
    task's value was read in its own file."""
    cites = [t[1][key] for t in tasks.values()]
    first = _FAMILY[family][0]
    if len(set(cites)) == 1:
        return cites[0]
    for row in (row_of(folder, family), COMMON[family]):
        if cite_of(row, first) == cites[0]:
            return row.source
    table = PER_TASK.get(folder)
    if table is not None and table.cite(first) == cites[0]:
        return f'{table.source.repo}@{table.source.commit[:7]} {table.source.path}'
    return cites[0]


def recipe_base_path(backbone_base: str, folder: str, family: str) -> str:
    """The recipe base of a method on a backbone and family, relative to ``configs/``.

    Examples:
        >>> recipe_base_path('_base_/image/vit-b16.py', 'ssf', 'vtab')
        '_base_/recipes/vit-b16_ssf_vtab.py'
    """
    stem = osp.splitext(osp.basename(backbone_base))[0]
    return f'_base_/recipes/{stem}_{folder}_{family}.py'


def _backbone(values: Dict[str, Any], recipe: Resolved, petl: Optional[str],
              notes: List[str]) -> Optional[str]:
    """The ``backbone=`` entry: ``petl`` (None: not written) and drop path, with sources."""
    pad = ' ' * 4
    drop = values.get('drop_path_rate')
    if petl is None and drop is None:
        return None
    lines = [line for note in notes for line in comment(note, pad)]
    if drop is not None:
        lines += cited(recipe, ['drop_path_rate'], pad)
    inner = f'backbone=dict(drop_path_rate={drop!r})'
    if petl is None:
        return '\n'.join(lines + [f'{pad}backbone=dict({inner})'])
    entry = packed(f'{pad}backbone=dict(petl=', petl)
    return '\n'.join(lines + [entry + (f",\n{' ' * 18}{inner})" if drop is not None else ')')])


def _model(values: Dict[str, Any], recipe: Resolved, petl: Optional[str],
           head: Dict[str, Any], notes: List[str]) -> List[str]:
    """``model = dict(...)`` of a recipe base or a leaf: the backbone entry, the head (loss,
    init, ``head`` fields) and batch augments, of the keys in ``values``."""
    pad = ' ' * 4
    parts = [p for p in [_backbone(values, recipe, petl, notes)] if p]
    keys = [k for k in ('label_smoothing', 'batch_augments', 'head_init') if k in values]
    fields = [f'{k}={v!r}' for k, v in head.items()]
    if 'label_smoothing' in values:
        fields.append(f'loss={loss_source(values, 24)}')
    if 'head_init' in values:
        fields.append(f"init_cfg={_INITS[values['head_init']]}")
    if fields:
        parts.append('\n'.join((cited(recipe, keys, pad) if keys else []) + [
            f"{pad}head=dict({(',' + chr(10) + ' ' * 14).join(fields)})"]))
    if values.get('batch_augments'):
        augments = ', '.join(BATCH_AUGMENT_SOURCES[n] for n in values['batch_augments'])
        parts.append(f'{pad}train_cfg=dict(augments=[{augments}])')
    return ['model = dict(\n' + ',\n'.join(parts) + ')'] if parts else []


def _optim(values: Dict[str, Any], recipe: Resolved) -> List[str]:
    """``optim_wrapper``: lr / wd and the decay rule (1-D parameters or biases undecayed)."""
    fields = [f'{k}={values[k]!r}' for k in ('lr', 'weight_decay') if k in values]
    rules = ['flat_decay_mult=0.0'] if values.get('decay_1d') is False else \
        ['bias_decay_mult=0.0'] if values.get('decay_bias') is False else []
    parts = [f"optimizer=dict({', '.join(fields)})"] if fields else []
    if rules:  # the PETL parameters follow the host rule too (PETLOptimWrapperConstructor)
        parts.append(f'paramwise_cfg=dict({rules[0]}, petl=dict(apply_host_rules=True))')
    if not parts:
        return []
    keys = [k for k in ('lr', 'weight_decay') if k in values] + \
        ([k for k in ('decay_1d', 'decay_bias') if k in values] if rules else [])
    return cited(recipe, keys) + [f"optim_wrapper = dict({(',' + chr(10) + ' ' * 21).join(parts)})"]


def _rest(values: Dict[str, Any], recipe: Resolved, classes: Optional[int]) -> List[str]:
    """The lines after ``model``: optimizer, epochs, schedule, test epochs, normalisation."""
    lines = _optim(values, recipe) + schedule_lines(recipe, values)
    fields = [f'num_classes={classes}'] if classes else []
    if 'normalisation' in values:
        lines += cited(recipe, ['normalisation'])
        fields.append(f"norm={values['normalisation']!r}")
    return lines + ([f"data_preprocessor = dict({', '.join(fields)})"] if fields else [])


def render_recipe_base(shared: Shared, backbone_base: str, title: str, petl: str,
                       head: Dict[str, Any]) -> str:
    """The source of a recipe base: the backbone base, the method and the shared recipe.

    Examples:
        >>> text = render_recipe_base(shared_recipe('ssf', 'vtab'), '_base_/image/vit-b16.py',
        ...                           'SSF', "dict(_delete_=True, type='SSF')", {})
        >>> [line for line in text.splitlines() if line.startswith('_base_')]
        ["_base_ = ['../image/vit-b16.py']"]
    """
    values = {k: v for k, v in shared.values.items()
              if k not in ('optimizer', 'batch_size', 'augmentation')}
    recipe = Resolved(shared.values, shared.cites, [])
    here = osp.dirname(recipe_base_path(backbone_base, shared.folder, shared.family))
    return '\n'.join([
        *comment(f'{title}: its {shared.family.upper()} recipe on every task (each config '
                 'adds its task\'s values). Recipe table: vpetl_mm/benchmark/recipe_table.py.'),
        MARK,
        f'_base_ = {[osp.relpath(backbone_base, here)]!r}', '',
        *_model(values, recipe, petl, head, []), *_rest(values, recipe, None)]) + '\n'


def _classes(dataset: str) -> int:
    return VTAB_TASKS[VTAB_DATASETS[dataset]] if dataset in VTAB_DATASETS else \
        FGVC_DATASETS[dataset][2]


def own_leaf(shared: Shared, dataset: str, petl: str) -> Tuple[str, List[str]]:
    """A leaf's ``model`` entries and its lines after ``model`` over its data base and the
    recipe base of ``shared``: the classes, the per-task method arguments and recipe values."""
    values, cites = shared.tasks[dataset]
    recipe = Resolved(values, cites, [])
    found = lookup(shared.folder, dataset)
    args = found[0] if found and found[0] else {}
    notes = [f"{', '.join(args)} for this task: {found[2]}"] if args else []
    model = _model({k: v for k, v in values.items() if k not in ('batch_size', 'augmentation')},
                   recipe, with_overrides(petl, args) if args else None,
                   {'num_classes': _classes(dataset)}, notes)
    # the data base holds the loaders: a method's batch and augmentation are the leaf's
    loader = _loader({**shared.values, **values}, {**shared.cites, **cites}, dataset)
    return model[0][len('model = dict(\n'):-1], loader + \
        _rest({k: v for k, v in values.items() if k != 'optimizer'}, recipe, _classes(dataset))


def _loader(values: Dict[str, Any], cites: Dict[str, str], dataset: str) -> List[str]:
    """``train_dataloader`` where the task's batch or augmentation differs from the data base's
    (batch 64; VTAB without augmentation, FGVC with)."""
    fgvc = dataset in FGVC_DATASETS
    diff = {k: values[k] for k, default in (('batch_size', _DATA_BATCH), ('augmentation', fgvc))
            if values.get(k, default) != default}
    if fgvc and 'augmentation' in diff:
        raise ValueError(f'{dataset}: no FGVC train pipeline without augmentation is defined')
    return loader_lines(Resolved(values, cites, []), diff)


def family_bases(backbone_base: str, folder: str, dataset: str) -> Optional[List[str]]:
    """A leaf's bases (relative to ``configs/``) where its method has a recipe base, else None.

    Examples:
        >>> family_bases('_base_/image/vit-b16.py', 'ssf', 'vtab-dtd')
        ['_base_/image/vtab-dtd.py', '_base_/recipes/vit-b16_ssf_vtab.py']
    """
    family = family_of(dataset)
    if family is None or shared_recipe(folder, family) is None:
        return None
    return [f'_base_/image/{dataset}.py', recipe_base_path(backbone_base, folder, family)]
