"""The recipe a config really runs, resolved after inheritance and the optimizer constructor.

:func:`config_recipe` reads a config (``--cfg-options`` merged) and returns its training recipe
as plain data: the optimizer and, with ``build=True``, its parameter groups as the config's
``optim_wrapper`` constructor makes them on the built model (shapes only, on CPU, no weights, no
data: :mod:`.shapes`); the batch size, the loop (epochs / iterations), the ``param_scheduler``
entries and the warm-up, label smoothing, the augmenting transforms of the train pipeline, drop
path, the input normalisation, the head init, the protocol and the recorded source of the
recipe (:mod:`vpetl_mm.benchmark.sources`, :mod:`.recipe_sources`). A model wrapper (PACE:
``model=dict(type='vpetl_mm.PACE', model=<the task model>, ...)``) is seen through: the
method, head, losses and groups are the wrapped model's, the wrapper's own arguments are
listed as ``model_wrappers``. ``deviations`` lists where the config departs from the values
its source records. A ``_base_`` fragment that is no runnable config is refused with one line
(:class:`~.recipe_sources.NotRunnableConfig`). ``tools/analysis/recipe.py`` prints it
(:func:`~.recipe_format.format_recipe`) or dumps it as JSON.

Examples:
    >>> recipe = config_recipe('configs/lora/vit-b_vtab-cifar100.py')
    >>> recipe['batch_size'], recipe['max_epochs'], recipe['label_smoothing']
    (64, 100, 0.1)
    >>> [(g['role'], g['params'], g['lr']) for g in recipe['groups']]
    [('petl', 294912, 0.005), ('head', 76900, 0.005)]
"""
import copy
import importlib
import inspect
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, Registry, init_default_scope

from ..benchmark.sources import NO_SOURCE
from ..benchmark.variants import published_names
from ..models.data_preprocessor import NORMALIZATIONS
from ..optim.constructor import PETLOptimWrapperConstructor
from ..utils import unwrap
from .recipe_deviations import deviations
from .recipe_format import format_recipe
from .recipe_sources import NotRunnableConfig, config_sources, missing_parts, refusal
from .shapes import build_model_shapes, load_config

__all__ = ['config_recipe', 'format_recipe', 'resolve', 'optimizer_groups', 'task_model']

# transforms that change training images at random (besides every ``Random*`` transform)
AUGMENTING = frozenset([
    'RandAugment', 'AutoAugment', 'TrivialAugment', 'Mixup', 'CutMix', 'MixUp', 'Mosaic',
    'PhotoMetricDistortion', 'Flip', 'MultiScaleCrop', 'ColorJitter', 'Albu', 'Albumentations',
    'Expand', 'MinIoURandomCrop', 'YOLOXHSVRandomAug', 'CopyPaste'])
# OptimWrapper keys only the AMP / other wrappers take: dropped for the CPU group build
_WRAPPER_ONLY = ('loss_scale', 'dtype', 'use_fsdp')
_SAMPLE = 3  # parameter names shown per group
_SMOOTHING = ('label_smooth_val', 'label_smoothing', 'label_smooth_eps')


def _plain(value: Any) -> Any:
    """Config values as JSON-able data (ConfigDicts to dicts, tuples to lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def task_model(cfg: Config) -> Tuple[dict, List[dict]]:
    """The task model of a config inside its model wrappers (a wrapper holds it under
    ``model`` and has no ``backbone``: PACE) and the wrappers' own arguments, outermost first.

    Examples:
        >>> task_model(Config(dict(model=dict(type='vpetl_mm.PACE', sigma=1.2,
        ...                                   model=dict(type='ImageClassifier')))))
        ({'type': 'ImageClassifier'}, [{'type': 'vpetl_mm.PACE', 'sigma': 1.2}])
    """
    model, wrappers = cfg.get('model') or {}, []
    while isinstance(model.get('model'), dict) and 'backbone' not in model:
        wrappers.append({str(k): _plain(v) for k, v in model.items() if k != 'model'})
        model = model['model']
    return _plain(model), wrappers


def _walk(node: Any, path: str = '') -> List[Tuple[str, Any]]:
    """Every (dotted key path, value) under a config node, depth first."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f'{path}.{key}' if path else str(key)
            found.append((sub, value))
            found += _walk(value, sub)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            found += _walk(value, f'{path}[{i}]')
    return found


def _type_of(node: Any) -> str:
    if isinstance(node, dict):
        return str(node.get('type', '?'))
    if isinstance(node, (list, tuple)):
        return '[' + ', '.join(_type_of(n) for n in node) + ']'
    return str(node)


def _short(transform: dict) -> str:
    """``Type(key=value, ...)`` of a transform; nested transforms by type only."""
    args = [f'{k}={_type_of(v)}' if k in ('transforms', 'policies') and isinstance(v, list)
            else f'{k}={_plain(v)!r}' for k, v in transform.items() if k != 'type']
    return f"{transform.get('type', '?')}({', '.join(args)})"


def is_augmenting(transform: dict) -> bool:
    """Whether a pipeline transform changes training images at random.

    Examples:
        >>> is_augmenting(dict(type='RandomFlip', prob=0.5)), is_augmenting(dict(type='Resize'))
        (True, False)
    """
    name = str(transform.get('type', '')).split('.')[-1]
    return name in AUGMENTING or name.startswith('Random')


def train_pipeline(cfg: Config) -> Optional[list]:
    """The training pipeline, through dataset wrappers (``dataset`` / ``datasets``)."""
    dataset = (cfg.get('train_dataloader') or {}).get('dataset')
    while isinstance(dataset, dict):
        if isinstance(dataset.get('pipeline'), (list, tuple)):
            return list(dataset['pipeline'])
        inner = dataset.get('dataset', dataset.get('datasets'))
        dataset = inner[0] if isinstance(inner, (list, tuple)) and inner else inner
    return None


def augmentation(cfg: Config) -> List[str]:
    """The augmenting transforms of the train pipeline and the batch augments (Mixup ...)."""
    steps = [_short(t) for t in train_pipeline(cfg) or [] if isinstance(t, dict)
             and is_augmenting(t)]
    model = task_model(cfg)[0]
    for node in (model.get('train_cfg'), model.get('data_preprocessor'),
                 cfg.get('data_preprocessor')):
        for key in ('augments', 'batch_augments'):
            batch = (node or {}).get(key)
            batch = batch.get('augments', batch) if isinstance(batch, dict) else batch
            batch = [batch] if isinstance(batch, dict) else batch  # one augment, not a list
            steps += [f'batch: {_short(a)}' for a in batch or [] if isinstance(a, dict)]
    return steps


def losses(cfg: Config) -> Dict[str, dict]:
    """Model key path -> loss config (every ``loss*`` entry with a ``type``)."""
    return OrderedDict((path, _plain(value)) for path, value in _walk(task_model(cfg)[0])
                       if path.rsplit('.', 1)[-1].startswith('loss') and isinstance(value, dict)
                       and 'type' in value)


def label_smoothing(cfg: Config) -> Optional[float]:
    """The largest label smoothing set anywhere in the model (a loss's ``label_smooth_val`` /
    ``label_smoothing``, an mmaction head's ``label_smooth_eps``); 0.0 when none is set (the
    heads' and losses' defaults smooth nothing); None for a config without a model."""
    model = task_model(cfg)[0]
    if not model:
        return None
    values = [float(v) for path, v in _walk(model) if path.rsplit('.', 1)[-1] in _SMOOTHING
              and isinstance(v, (int, float))]
    return max(values, default=0.)


def schedule(cfg: Config) -> Tuple[List[dict], Optional[str]]:
    """The ``param_scheduler`` entries (as configured) and a one-line warm-up summary."""
    entries = cfg.get('param_scheduler') or []
    entries = [_plain(e) for e in ([entries] if isinstance(entries, dict) else entries)]
    warmup = None
    for i, entry in enumerate(entries):
        name = str(entry.get('type', '')).split('.')[-1]
        unit = 'epochs' if entry.get('by_epoch', True) else 'iters'
        if entry.get('warmup_t'):  # timm-style: the warm-up is a field of the main schedule
            warmup = (f"{entry['warmup_t']} {unit} linear from "
                      f"{entry.get('warmup_lr_init', 0)} ({name})")
        elif i == 0 and len(entries) > 1 and (name in ('LinearLR', 'ConstantLR')
                                              or 'warm' in name.lower()):
            factor = entry.get('start_factor', entry.get('factor'))
            warmup = (f"{name} {entry.get('begin', 0)}-{entry.get('end', '?')} {unit}"
                      + (f', start factor {factor}' if factor is not None else ''))
    return entries, warmup


def loop(cfg: Config) -> Dict[str, Any]:
    """``max_epochs`` / ``max_iters`` of the training loop and its type."""
    train_cfg = _plain(cfg.get('train_cfg') or {})
    by_epoch = train_cfg.get('by_epoch', 'max_epochs' in train_cfg
                             or 'Epoch' in str(train_cfg.get('type', '')))
    return dict(loop=train_cfg.get('type') or ('EpochBasedTrainLoop' if by_epoch
                                               else 'IterBasedTrainLoop'),
                max_epochs=train_cfg.get('max_epochs'), max_iters=train_cfg.get('max_iters'),
                val_interval=train_cfg.get('val_interval'))


def normalisation(cfg: Config) -> Optional[dict]:
    """The data preprocessor's normalisation: named norm resolved to mean / std."""
    pre = dict(cfg.get('data_preprocessor') or {})
    pre.update(task_model(cfg)[0].get('data_preprocessor') or {})
    if not pre:
        return None
    out = {k: _plain(pre[k]) for k in ('type', 'norm', 'mean', 'std', 'to_rgb', 'bgr_to_rgb')
           if k in pre}
    if pre.get('norm') in NORMALIZATIONS:
        out.setdefault('values', _plain(NORMALIZATIONS[pre['norm']]))
    return out


def _registry(scope: str) -> Registry:
    """The toolbox's model registry (it imports its modules on lookup; the root one does not,
    and nothing is built here to import them)."""
    try:
        return importlib.import_module(f'{scope}.registry').MODELS
    except ImportError:  # mmengine, or a toolbox that is not installed
        return MODELS


def _default_init_cfg(head: dict, scope: str) -> Tuple[bool, Any]:
    """(found, value) of a registered head class's default ``init_cfg`` or ``init_std`` (the
    first signature along its MRO that names one: ``UPerHead(**kwargs)`` passes them on)."""
    cls = _registry(scope).get(head.get('type', ''))
    for klass in cls.__mro__ if cls is not None else ():
        params = inspect.signature(klass.__init__).parameters
        for name in ('init_std', 'init_cfg'):
            if name in params:
                default = params[name].default
                return True, (name, head.get(name, default) if name == 'init_std' else default)
    return False, None


def _describe_init(head: dict, scope: str) -> str:
    if 'init_cfg' in head:
        init = head['init_cfg']
        return f'init_cfg={_plain(init)!r}' if init is not None else \
            "init_cfg=None (the layers' own init: nn.Linear's)"
    found, value = _default_init_cfg(head, scope)
    if not found:
        return "the head class's default init"
    name, default = value
    return f'init_weights(), init_std={default}' if name == 'init_std' else \
        f'default init_cfg={_plain(default)!r}'


def head_init_kind(head: dict, scope: str) -> Optional[str]:
    """The recipe table's name of a head's init (``'zero'``, ``'default'``: nn.Linear's own,
    ``'trunc_normal'``) or its ``init_cfg`` type; None when the class names no ``init_cfg``.

    Examples:
        >>> head_init_kind(dict(type='VisionTransformerClsHead', init_cfg=None), 'mmpretrain')
        'default'
    """
    if 'init_cfg' in head:
        init = head['init_cfg']
    elif not head.get('type'):
        return None
    else:
        found, value = _default_init_cfg(head, scope)
        if not found or value[0] != 'init_cfg':
            return None
        init = value[1]
    if init is None:
        return 'default'
    init = _plain(init)
    init = init[0] if isinstance(init, list) and len(init) == 1 else init
    kind = str(init.get('type', '?')) if isinstance(init, dict) else str(init)
    if kind == 'Constant' and init.get('val') == 0:
        return 'zero'
    return 'trunc_normal' if kind == 'TruncNormal' else kind


def head_init(cfg: Config) -> Dict[str, str]:
    """Each top-level head of the model: its type and ``init_cfg`` (or its class default)."""
    model = task_model(cfg)[0]
    scope = cfg.get('default_scope', 'mmengine')
    init_default_scope(scope)  # to find the head classes
    return OrderedDict((key, f"{head.get('type', '?')}: {_describe_init(head, scope)}")
                       for key, head in model.items() if 'head' in key and isinstance(head, dict))


def drop_path(cfg: Config) -> Dict[str, float]:
    """Model key path -> drop path rate."""
    return OrderedDict((path, value) for path, value in _walk(task_model(cfg)[0])
                       if path.rsplit('.', 1)[-1] in ('drop_path_rate', 'drop_path')
                       and isinstance(value, (int, float)))


def optimizer(cfg: Config) -> Dict[str, Any]:
    """The optimizer config, wrapper type, constructor and paramwise options."""
    wrapper = _plain(cfg.get('optim_wrapper') or {})
    return dict(optimizer=wrapper.get('optimizer'), wrapper=wrapper.get('type', 'OptimWrapper'),
                constructor=wrapper.get('constructor', 'DefaultOptimWrapperConstructor'),
                paramwise_cfg=wrapper.get('paramwise_cfg'), clip_grad=wrapper.get('clip_grad'),
                accumulative_counts=wrapper.get('accumulative_counts', 1))


def method(cfg: Config, folder: str) -> Dict[str, Any]:
    """The PETL method of the backbone (its ``petl`` config) and the folder's published name."""
    petl = (task_model(cfg)[0].get('backbone') or {}).get('petl')
    return dict(folder=folder, petl=_plain(petl), published=published_names().get(folder))


def resolve(cfg: Config) -> Dict[str, Any]:
    """Everything of the recipe that needs no model build (works on any config fragment)."""
    path = cfg.filename or ''
    folder = osp.basename(osp.dirname(path))
    entries, warmup = schedule(cfg)
    train = cfg.get('train_dataloader') or {}
    model, wrappers = task_model(cfg)
    sources = config_sources(path) if path else []
    return dict(
        config=path, method=method(cfg, folder), **optimizer(cfg),
        batch_size=train.get('batch_size'),
        base_batch_size=(cfg.get('auto_scale_lr') or {}).get('base_batch_size'),
        **loop(cfg), schedule=entries, warmup=warmup, label_smoothing=label_smoothing(cfg),
        losses=losses(cfg), augmentation=augmentation(cfg), drop_path=drop_path(cfg),
        normalisation=normalisation(cfg), head_init=head_init(cfg),
        head_init_kind=head_init_kind(model.get('head') or {},
                                      cfg.get('default_scope', 'mmengine')),
        model_wrappers=wrappers,
        protocol=cfg.get('protocol'), legacy_eval=_plain(cfg.get('legacy_eval')),
        source='; '.join(f"{', '.join(s.keys)}: {s.text}" for s in sources) or NO_SOURCE,
        sources=[s.as_dict() for s in sources])


def optimizer_groups(cfg: Config, model: nn.Module) -> List[Dict[str, Any]]:
    """The optimizer's parameter groups as the config's constructor builds them on ``model``,
    merged by (role, lr, weight decay); role ``petl`` is what the PETL method trains in the
    backbone (the constructor's own rule), otherwise the top-level module of the task model
    (``head`` ...; names inside a model wrapper are the wrapped model's)."""
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg['type'] = 'OptimWrapper'  # AMP wrappers need CUDA; the groups do not depend on it
    for key in _WRAPPER_ONLY:
        optim_cfg.pop(key, None)
    wrapper = build_optim_wrapper(model, optim_cfg)
    model = unwrap(model)
    prefix = 'model.' * len(task_model(cfg)[1])  # PACE holds the task model as `model`
    names = {id(p): n[len(prefix):] if n.startswith(prefix) else n
             for n, p in model.named_parameters()}
    petl = PETLOptimWrapperConstructor._petl_param_ids(model)
    merged: Dict[tuple, Dict[str, Any]] = OrderedDict()
    for group in wrapper.optimizer.param_groups:
        for param in group['params']:
            name = names.get(id(param), '?')
            role = 'petl' if id(param) in petl else name.split('.', 1)[0]
            key = (role, group.get('lr'), group.get('weight_decay'))
            entry = merged.setdefault(key, dict(role=role, params=0, tensors=0, lr=key[1],
                                                weight_decay=key[2], names_sample=[]))
            entry['params'] += param.numel()
            entry['tensors'] += 1
            if len(entry['names_sample']) < _SAMPLE:
                entry['names_sample'].append(name)
    return list(merged.values())


def config_recipe(config: Union[str, Config], cfg_options: Optional[dict] = None,
                  build: bool = True) -> Dict[str, Any]:
    """The recipe of a config (a path or a ``Config``); ``build=False`` skips the model and
    optimizer build (``groups`` is then None). A ``_base_`` fragment that is no runnable
    config raises :class:`~.recipe_sources.NotRunnableConfig` (one line).

    Examples:
        >>> config_recipe('configs/lora/videoswin-b_ssv2.py', build=False)['max_epochs']
        90
    """
    cfg = load_config(config, cfg_options)
    missing = missing_parts(cfg)
    if missing:
        raise NotRunnableConfig(refusal(cfg.filename or 'the config', missing))
    recipe = resolve(cfg)
    recipe['deviations'] = deviations(recipe)
    recipe['groups'] = optimizer_groups(cfg, build_model_shapes(cfg)) if build else None
    return recipe
