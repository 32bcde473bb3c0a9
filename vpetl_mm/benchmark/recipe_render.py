"""The recipe table as config text: the image data and setting bases and each leaf's recipe.

A data base (``configs/_base_/image/<dataset>.py``) holds the task's data root; a setting base
(``configs/_base_/image/vit-b16_<dataset>.py``, over it) the family's common row (V-PETL Bench's
protocol: lr / wd, label smoothing, augmentation, head init); a leaf
(``configs/<folder>/vit-b_<dataset>.py``) writes every key where its method's resolved recipe
(:func:`~.recipe_resolve.resolve`) differs from it, each block with a comment naming its source,
plus the method's per-task arguments (:mod:`.pertask`). Methods whose rows stand alone have
method-level recipe bases instead (:mod:`.recipe_base`, which renders with the helpers here).
:mod:`.matrices` calls these.

Examples:
    >>> model, lines = image_leaf_recipe('ssf', 'vtab-cifar100', "dict(_delete_=True, type='SSF')")
    >>> lines[-1]
    "data_preprocessor = dict(norm='inception')"
"""
from typing import Any, Dict, List, Optional, Tuple

from ..datasets import FGVC_DATASETS, VTAB_DATASETS
from .configgen import comment
from .pertask import lookup, petl_kwargs, with_overrides
from .recipe_resolve import Resolved, resolve

_NAMES = dict(lr='lr', weight_decay='weight decay', batch_size='batch size',
              drop_path_rate='drop path', decay_1d='no decay on 1-D parameters',
              decay_bias='no decay on biases', max_epochs='epochs', t_initial='cosine length',
              warmup_t='warm-up', warmup_lr_init='warm-up start', lr_min='final lr',
              label_smoothing='label smoothing', augmentation='augmentation',
              batch_augments='batch augments', normalisation='normalisation',
              head_init='head init', legacy_eval='test evaluations of --protocol legacy')
# timm train.py's defaults, the values SSF's, HST's and GPS's scripts leave in place
BATCH_AUGMENT_SOURCES = dict(Mixup="dict(type='Mixup', alpha=0.8)",
                       CutMix="dict(type='CutMix', alpha=1.0)")
HEAD_INIT_SOURCES = dict(zero="dict(type='Constant', layer='Linear', val=0)", default='None',
                   trunc_normal="dict(_delete_=True, type='TruncNormal', layer='Linear', std=0.02)")
_SCHEDULE = ('t_initial', 'warmup_t', 'warmup_lr_init', 'lr_min')


def loss_source(values: Dict[str, Any], column: int) -> str:
    """The head's loss for a recipe's label smoothing and batch augments (soft targets), its
    second line indented to ``column``."""
    smoothing = values.get('label_smoothing', 0.)
    if smoothing:
        return (f"dict(_delete_=True, type='LabelSmoothLoss', label_smooth_val={smoothing!r},"
                f"\n{' ' * column}mode='original')")
    soft = f",\n{' ' * column}use_soft=True" if values.get('batch_augments') else ''
    return f"dict(_delete_=True, type='CrossEntropyLoss', loss_weight=1.0{soft})"


def pipeline_source(augmented: bool) -> str:
    return '{{_base_.vtab_train_pipeline%s}}' % ('_aug' if augmented else '')


def legacy_source(values: Dict[str, Any]) -> str:
    """``legacy_eval``; mmengine takes ``dynamic_intervals`` as (milestone, interval) tuples."""
    values = {k: [tuple(x) for x in v] if k == 'dynamic_intervals' else v
              for k, v in values.items()}
    return 'legacy_eval = dict(' + ', '.join(f'{k}={v!r}' for k, v in values.items()) + ')'


def image_data(dataset: str) -> List[str]:
    """A data base's lines (``_base_/image/<dataset>.py``, over the family's dataset base): the
    task's data root, for every backbone and method.

    Examples:
        >>> image_data('vtab-dtd')[1]
        "dataset = dict(data_root='data/vtab-1k/dtd', task='dtd')"
    """
    if dataset in VTAB_DATASETS:
        shared = dict(data_root=f'data/vtab-1k/{VTAB_DATASETS[dataset]}',
                      task=VTAB_DATASETS[dataset])
    else:
        name, folder = FGVC_DATASETS[dataset][:2]
        shared = dict(data_root=f'data/fgvc/{folder}', name=name)
    fields = ', '.join(f'{k}={v!r}' for k, v in shared.items())
    return ['# the fields every split shares', f'dataset = dict({fields})',
            'train_dataloader = dict(dataset=dataset)', 'val_dataloader = dict(dataset=dataset)',
            'test_dataloader = dict(dataset=dataset)']


def image_setting(dataset: str, num_classes: int) -> Tuple[str, List[str]]:
    """A setting base's head fields and lines (over its data base): the family's common row.

    Examples:
        >>> head, lines = image_setting('vtab-kitti', 4)
        >>> 'label_smooth_val=0.1' in head, lines[-1]
        (True, 'legacy_eval = dict(val_interval=10)')
    """
    common = resolve('*', dataset).values
    augmented = dataset in VTAB_DATASETS and common['augmentation']
    # nn.Linear's own init (V-PETL's reset_classifier), not mmpretrain's zero head
    head = f",\n{' ' * 23}init_cfg={HEAD_INIT_SOURCES[common['head_init']]}"
    if common['label_smoothing']:
        head += f",\n{' ' * 23}loss={loss_source(common, 33)}"
    train = [f'train_dataloader = dict(dataset=dict(pipeline={pipeline_source(True)}))'] \
        if augmented else []
    return head, [f'data_preprocessor = dict(num_classes={num_classes})', *train,
                  f"optim_wrapper = dict(optimizer=dict(lr={common['lr']!r}, "
                  f"weight_decay={common['weight_decay']!r}))",
                  "# the epochs the reference evaluates on test (vpetl_mm/apis/protocol.py, "
                  "--protocol legacy)", legacy_source(common['legacy_eval'])]


def changed(recipe: Resolved, dataset: str) -> Dict[str, Any]:
    """The keys where a leaf's recipe differs from its setting base.

    Examples:
        >>> changed(resolve('lora', 'vtab-cifar100'), 'vtab-cifar100')
        {'lr': 0.005, 'weight_decay': 0.005}
    """
    base = resolve('*', dataset).values
    return {k: v for k, v in recipe.values.items()
            if v != base.get(k, () if k == 'batch_augments' else None)}


def cited(recipe: Resolved, keys: List[str], indent: str = '') -> List[str]:
    """One comment line group naming the keys and the sources they come from."""
    sources = list(dict.fromkeys(recipe.cites[k] for k in keys))
    names = ', '.join(_NAMES.get(k, k) for k in keys)
    return comment(f"{names}: {'; '.join(sources)}", indent)


def _model(recipe: Resolved, diff: Dict[str, Any], petl: str, method: Optional[tuple],
           head_args: Dict[str, Any]) -> Optional[str]:
    """The leaf's ``model`` entries: backbone (method arguments, drop path), head, train_cfg;
    None where the petl dict is all (the leaf then writes it alone). The backbone entry is
    always written with the others: a leaf's ``model`` without it would run the base's method."""
    pad = ' ' * 4
    names = list(method[0]) if method else []
    lines = comment(f"{', '.join(names)} for this task: {method[2]}", pad) if names else []
    if 'drop_path_rate' in diff:
        lines += cited(recipe, ['drop_path_rate'], pad)
    entry = packed(f'{pad}backbone=dict(petl=', with_overrides(petl, method[0]) if method else petl)
    if 'drop_path_rate' in diff:
        entry += f",\n{' ' * 18}backbone=dict(drop_path_rate={diff['drop_path_rate']!r})"
    parts = ['\n'.join(lines + [entry + ')'])]
    own = bool(method or 'drop_path_rate' in diff)  # the backbone entry says more than petl
    head = [k for k in ('label_smoothing', 'batch_augments', 'head_init') if k in diff]
    if head or head_args:
        fields = []
        if 'label_smoothing' in diff or 'batch_augments' in diff:
            fields.append(f'loss={loss_source(recipe.values, 24)}')
        if 'head_init' in diff:
            fields.append(f"init_cfg={HEAD_INIT_SOURCES[diff['head_init']]}")
        fields += [f'{k}={v!r}' for k, v in head_args.items()]  # one head dict, not two
        parts.append('\n'.join((cited(recipe, head, pad) if head else []) + [
            f"{pad}head=dict({(',' + chr(10) + ' ' * 14).join(fields)})"]))
    if diff.get('batch_augments'):
        augments = ', '.join(BATCH_AUGMENT_SOURCES[name] for name in diff['batch_augments'])
        parts.append(f'{pad}train_cfg=dict(augments=[{augments}])')
    return ',\n'.join(parts) if own or len(parts) > 1 else None


def packed(head: str, petl: str, width: int = 100) -> str:
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


def loader_lines(recipe: Resolved, diff: Dict[str, Any]) -> List[str]:
    """``train_dataloader`` with the batch size and augmentation of ``diff`` (if any)."""
    keys = [k for k in ('batch_size', 'augmentation') if k in diff]
    fields = [f"batch_size={diff['batch_size']!r}"] if 'batch_size' in diff else []
    if 'augmentation' in diff:
        fields.append(f"dataset=dict(pipeline={pipeline_source(diff['augmentation'])})")
    return cited(recipe, keys) + [f"train_dataloader = dict({', '.join(fields)})"] \
        if keys else []


def schedule_lines(recipe: Resolved, values: Dict[str, Any]) -> List[str]:
    """The epochs, the cosine schedule and the test epochs of ``values`` (where set)."""
    lines = []
    if 'max_epochs' in values:
        lines += cited(recipe, ['max_epochs']) + \
            [f"train_cfg = dict(max_epochs={values['max_epochs']!r})"]
    schedule = [k for k in _SCHEDULE if k in values]
    if schedule:
        lines += cited(recipe, schedule) + ['param_scheduler = dict(' + ', '.join(
            f'{k}={values[k]!r}' for k in schedule) + ')']
    if 'legacy_eval' in values:
        lines += cited(recipe, ['legacy_eval']) + [legacy_source(values['legacy_eval'])]
    return lines


def _optim(recipe: Resolved, diff: Dict[str, Any]) -> List[str]:
    keys = [k for k in ('lr', 'weight_decay', 'decay_1d', 'decay_bias') if k in diff]
    if not keys:
        return []
    values = recipe.values
    text = (f"optim_wrapper = dict(optimizer=dict(lr={values['lr']!r}, "
            f"weight_decay={values['weight_decay']!r})")
    rules = ['flat_decay_mult=0.0'] if values.get('decay_1d') is False else []
    rules += ['bias_decay_mult=0.0'] if values.get('decay_bias') is False and not rules else []
    if rules:  # the PETL parameters follow the host rule too (PETLOptimWrapperConstructor)
        text += (f",\n{' ' * 21}paramwise_cfg=dict({', '.join(rules)}, "
                 'petl=dict(apply_host_rules=True))')
    return cited(recipe, keys) + [text + ')']


def image_leaf_recipe(folder: str, dataset: str, petl: str,
                      head_args: Optional[Dict[str, Any]] = None,
                      ) -> Tuple[Optional[str], List[str]]:
    """A leaf's ``model`` entries (None: only the petl dict) and its lines after ``model``.

    Examples:
        >>> image_leaf_recipe('lora', 'fgvc-cub', "dict(_delete_=True, type='LoRA')")[1][-1]
        'train_dataloader = dict(batch_size=128)'
    """
    recipe = resolve(folder, dataset)
    diff = changed(recipe, dataset)
    method = lookup(folder, dataset)
    method = method if method and method[0] else None
    lines = loader_lines(recipe, diff) + _optim(recipe, diff) + schedule_lines(recipe, diff)
    if 'normalisation' in diff:
        lines += cited(recipe, ['normalisation']) + \
            [f"data_preprocessor = dict(norm={diff['normalisation']!r})"]
    return _model(recipe, diff, petl, method, head_args or {}), lines
