"""The recipe of :func:`vpetl_mm.apis.recipe.config_recipe` as readable text (what
``tools/analysis/recipe.py`` prints without ``--json``).

Examples:
    >>> _fmt_groups([dict(role='head', tensors=2, params=10, lr=0.1, weight_decay=0.,
    ...                   names_sample=['head.w', 'head.b'])])[-1]
    '  1 groups, 10 trainable parameters'
"""
from typing import Any, Dict, List


def _fmt_groups(groups: List[Dict[str, Any]]) -> List[str]:
    lines = [f"  {'role':<14} {'tensors':>7} {'params':>12} {'lr':>10} {'wd':>10}  names"]
    for g in groups:
        lines.append(f"  {g['role']:<14} {g['tensors']:>7} {g['params']:>12,} {g['lr']!s:>10} "
                     f"{g['weight_decay']!s:>10}  {', '.join(g['names_sample'])}"
                     + (', ...' if g['tensors'] > len(g['names_sample']) else ''))
    total = sum(g['params'] for g in groups)
    return lines + [f"  {len(groups)} groups, {total:,} trainable parameters"]


def format_recipe(recipe: Dict[str, Any]) -> str:
    """The recipe as readable text (what ``tools/analysis/recipe.py`` prints).

    Examples:
        >>> from vpetl_mm.apis.recipe import config_recipe
        >>> print(format_recipe(config_recipe('configs/lora/vit-b_vtab-cifar100.py')))
        ... # doctest: +ELLIPSIS
        config: configs/lora/vit-b_vtab-cifar100.py
        ...
    """
    opt = recipe['optimizer'] or {}
    sched = [', '.join(f'{k}={v}' for k, v in e.items()) for e in recipe['schedule']]
    epochs = (f"{recipe['max_epochs']} epochs" if recipe['max_epochs'] is not None
              else f"{recipe['max_iters']} iterations" if recipe['max_iters'] is not None
              else '-')
    lines = [
        f"config: {recipe['config']}",
        f"method: {recipe['method']['published'] or '-'} (petl={recipe['method']['petl']})",
        f"optimizer: {opt.get('type', '-')} lr={opt.get('lr')} "
        f"weight_decay={opt.get('weight_decay')} "
        + ' '.join(f'{k}={v}' for k, v in opt.items() if k not in ('type', 'lr', 'weight_decay'))
        + f" [{recipe['wrapper']}, {recipe['constructor']}]",
        f"paramwise_cfg: {recipe['paramwise_cfg']}",
    ] + [f"model wrapper: {w.get('type')}(" + ', '.join(
        f'{k}={v!r}' for k, v in w.items() if k != 'type') + ') around the task model'
        for w in recipe['model_wrappers']]
    if recipe['groups'] is not None:
        lines += ['parameter groups (after the constructor):'] + _fmt_groups(recipe['groups'])
    lines += [
        f"batch size: {recipe['batch_size']} per GPU (auto_scale_lr base "
        f"{recipe['base_batch_size']}), accumulative_counts {recipe['accumulative_counts']}",
        f"loop: {recipe['loop']}, {epochs}, val_interval {recipe['val_interval']}",
        'schedule: ' + (' | '.join(sched) or '-'),
        f"warm-up: {recipe['warmup'] or 'none'}",
        f"label smoothing: {recipe['label_smoothing']}",
        'augmentation: ' + ('; '.join(recipe['augmentation']) or 'none'),
        'drop path: ' + (', '.join(f'{k}={v}' for k, v in recipe['drop_path'].items()) or '-'),
        f"normalisation: {recipe['normalisation']}",
        'head init: ' + ('; '.join(f'{k} {v}' for k, v in recipe['head_init'].items()) or '-'),
        f"protocol: {recipe['protocol'] or 'none set'} (legacy test evaluations: "
        f"{recipe['legacy_eval'] or 'every val_interval'})",
        f"source: {recipe['source']}",
        'deviations from the recorded source: ' + ('; '.join(
            f"{d['key']} runs {d['runs']!r}, recorded {d['recorded']!r}"
            for d in recipe.get('deviations') or []) or 'none'),
    ]
    return '\n'.join(lines)
