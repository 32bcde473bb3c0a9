"""Where a resolved recipe (:func:`vpetl_mm.apis.recipe.resolve`) departs from its source.

The recorded sources (:mod:`vpetl_mm.benchmark.sources`: the recipe table, the per-task
method arguments) hold values under the recipe table's keys
(:data:`vpetl_mm.benchmark.recipe_table.RECIPE_FIELDS`) and method argument names;
:func:`runs` reads the same key off the resolved config and :func:`deviations` lists every key
where the two differ.

Examples:
    >>> from vpetl_mm.apis.recipe import config_recipe
    >>> recipe = config_recipe('configs/lora/vit-b_vtab-cifar100.py', build=False,
    ...                        cfg_options={'optim_wrapper.optimizer.lr': 0.1})
    >>> [(d['key'], d['recorded'], d['runs']) for d in recipe['deviations']]
    [('lr', 0.005, 0.1)]
"""
import math
from typing import Any, Dict, List

_SCHEDULE = ('t_initial', 'warmup_t', 'warmup_lr_init', 'lr_min')


def _host_rules_reach_petl(recipe: Dict[str, Any]) -> bool:
    """Whether the paramwise rules apply to what the method trains (apply_host_rules, or a
    method that trains the whole backbone)."""
    paramwise = recipe['paramwise_cfg'] or {}
    petl = recipe['method']['petl']
    return bool((paramwise.get('petl') or {}).get('apply_host_rules')) or (
        isinstance(petl, dict) and petl.get('type') == 'Full')


def _decays(recipe: Dict[str, Any], key: str) -> bool:
    """Whether 1-D parameters (``decay_1d``) or biases (``decay_bias``) get weight decay."""
    paramwise = recipe['paramwise_cfg'] or {}
    rules = ['flat_decay_mult'] + (['bias_decay_mult'] if key == 'decay_bias' else [])
    off = any(paramwise.get(rule) == 0 for rule in rules)
    return not (off and _host_rules_reach_petl(recipe))


def _scheduled(recipe: Dict[str, Any], key: str) -> Any:
    """A timm-cosine field of the (first) schedule entry that sets it."""
    for entry in recipe['schedule']:
        if key in entry:
            return entry[key]
    return None


def runs(recipe: Dict[str, Any], key: str) -> Any:
    """The value the resolved recipe runs for a recorded-source key.

    Examples:
        >>> from vpetl_mm.apis.recipe import config_recipe
        >>> recipe = config_recipe('configs/ssf/vit-b_vtab-dtd.py', build=False)
        >>> runs(recipe, 'decay_1d'), runs(recipe, 'batch_augments'), runs(recipe, 't_initial')
        (False, ('CutMix',), 100)
    """
    optimizer = recipe['optimizer'] or {}
    if key in ('lr', 'weight_decay'):
        return optimizer.get(key)
    if key == 'optimizer':
        return str(optimizer.get('type', '')).split('.')[-1] or None
    if key in ('decay_1d', 'decay_bias'):
        return _decays(recipe, key)
    if key in _SCHEDULE:
        return _scheduled(recipe, key)
    if key == 'augmentation':  # a random train-pipeline transform
        return any(not step.startswith('batch: ') for step in recipe['augmentation'])
    if key == 'batch_augments':
        return tuple(step[len('batch: '):].split('(')[0] for step in recipe['augmentation']
                     if step.startswith('batch: '))
    if key == 'drop_path_rate':
        rates = sorted(set(recipe['drop_path'].values()))
        return rates[0] if len(rates) == 1 else rates
    if key == 'normalisation':
        return (recipe['normalisation'] or {}).get('norm')
    if key == 'head_init':
        return recipe['head_init_kind']
    if key in recipe:  # batch_size, max_epochs, label_smoothing
        return recipe[key]
    for wrapper in recipe.get('model_wrappers') or []:  # a model wrapper's argument (PACE's)
        if key in wrapper:
            return wrapper[key]
    petl = recipe['method']['petl']  # a method argument of a per-task table
    return petl.get(key) if isinstance(petl, dict) else None


def _same(runs_value: Any, recorded: Any) -> bool:
    if isinstance(recorded, (list, tuple)) and isinstance(runs_value, (list, tuple)):
        return list(runs_value) == list(recorded)
    return runs_value == recorded or (
        isinstance(runs_value, (int, float)) and isinstance(recorded, (int, float))
        and not isinstance(runs_value, bool) and math.isclose(runs_value, recorded,
                                                              rel_tol=1e-9))


def deviations(recipe: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Where the resolved recipe differs from its recorded source: each key's value from the
    most specific source that records it, against what the config runs (the module's
    example)."""
    found, seen = [], set()
    for source in recipe['sources']:
        for key, recorded in source['values'].items():
            if key in seen:
                continue
            seen.add(key)
            value = runs(recipe, key)
            if not _same(value, recorded):
                found.append(dict(key=key, recorded=recorded, runs=value,
                                  source=source['source']))
    return found
