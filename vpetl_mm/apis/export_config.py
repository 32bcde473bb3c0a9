"""The stock config of an export: the training config without vpetl_mm (``tools/export.py``).

The ``PETLBackbone`` is replaced by the host backbone it wraps (no Pretrained init: the
exported checkpoint holds every weight), vpetl_mm's imports, hooks and optimizer constructor
are dropped, its named-normalisation preprocessor becomes the stock one, and a Runner loop
that still needs vpetl_mm (e.g. the VTAB1k / FGVC datasets) is dropped whole and named.
"""
import copy
from typing import Any, List, Sequence, Tuple

from mmengine.config import Config

from ..models.data_preprocessor import NORMALIZATIONS

PETL_TYPES = ('vpetl_mm.PETLBackbone', 'PETLBackbone')
_SCOPE = 'vpetl_mm'
# Top-level config keys per Runner loop: a loop whose part needs vpetl_mm is dropped whole
# (mmengine wants a loop's dataloader, cfg and evaluator / optimizer all set or all unset).
_LOOPS = dict(train=('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler',
                     'auto_scale_lr'),
              val=('val_dataloader', 'val_cfg', 'val_evaluator'),
              test=('test_dataloader', 'test_cfg', 'test_evaluator'))
_VPETL_ONLY_KEYS = ('protocol', 'petl_default_hooks')  # read by vpetl_mm's tools only

def _is_petl(node: Any) -> bool:
    kind = node.get('type') if isinstance(node, dict) else None
    return kind in PETL_TYPES or getattr(kind, '__name__', None) == 'PETLBackbone'


def find_petl_path(node: Any, path: Tuple = ()) -> List[Tuple]:
    """Key paths (tuples of dict keys / list indices) of every ``PETLBackbone`` in ``node``."""
    if _is_petl(node):
        return [path]
    items = node.items() if isinstance(node, dict) else (
        enumerate(node) if isinstance(node, (list, tuple)) else ())
    return [p for key, value in items for p in find_petl_path(value, path + (key, ))]


def _get(node: Any, path: Sequence) -> Any:
    for key in path:
        node = node[key]
    return node


def _set(node: Any, path: Sequence, value: Any) -> None:
    _get(node, path[:-1])[path[-1]] = value


def _vpetl_refs(node: Any, path: Tuple = ()) -> List[Tuple]:
    """Key paths of every string naming vpetl_mm (``'vpetl_mm.X'`` types, constructors ...)."""
    if isinstance(node, str):
        return [path] if node == _SCOPE or node.startswith(_SCOPE + '.') else []
    if isinstance(node, type):
        return [path] if node.__module__.split('.')[0] == _SCOPE else []
    items = node.items() if isinstance(node, dict) else (
        enumerate(node) if isinstance(node, (list, tuple)) else ())
    return [p for key, value in items for p in _vpetl_refs(value, path + (key, ))]


def _has_pretrained(init_cfg: Any) -> bool:
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(isinstance(c, dict) and c.get('type') == 'Pretrained' and c.get('checkpoint')
               for c in cfgs)


def _stock_preprocessor(cfg: dict, notes: List[str], where: str) -> dict:
    """``vpetl_mm.NamedNormClsDataPreprocessor`` -> mmpretrain's ``ClsDataPreprocessor``."""
    cfg = dict(cfg)
    norm = cfg.pop('norm', 'imagenet')
    cfg['type'] = 'ClsDataPreprocessor'
    values = NORMALIZATIONS[norm]
    if values is not None:
        cfg['mean'], cfg['std'] = list(values[0]), list(values[1])
    notes.append(f'{where}: NamedNormClsDataPreprocessor(norm={norm!r}) -> ClsDataPreprocessor '
                 'with the same mean / std.')
    return cfg


def _swap_backbone(out: dict, petl_path: Sequence, notes: List[str]) -> None:
    """Replace the ``PETLBackbone`` by its host backbone, without a Pretrained init."""
    model = out['model']
    inner = copy.deepcopy(_get(model, petl_path)['backbone'])
    if inner.get('init_cfg') is not None:
        notes.append(f'backbone init_cfg {inner["init_cfg"]} removed: the checkpoint holds all '
                     'weights.')
        inner['init_cfg'] = None
    if inner.get('pretrained'):  # hosts that take pretrained= (mmaction2 Swin3D)
        notes.append(f'backbone pretrained={inner["pretrained"]!r} removed.')
        inner['pretrained'] = None
    _set(model, petl_path, inner)
    if model.get('pretrained'):  # mmseg EncoderDecoder(pretrained=...) feeds the backbone
        model['pretrained'] = None


def _drop_vpetl_runtime(out: dict, notes: List[str]) -> None:
    """Drop vpetl_mm's imports, tool-only keys, preprocessor, optimizer constructor, hooks."""
    imports = out.get('custom_imports')
    if imports:
        kept = [m for m in imports.get('imports', [])
                if m != _SCOPE and not m.startswith(_SCOPE + '.')]
        if kept:
            out['custom_imports'] = dict(imports, imports=kept)
        else:
            del out['custom_imports']
    for key in _VPETL_ONLY_KEYS:
        out.pop(key, None)
    for holder, key in ((out, 'data_preprocessor'), (out['model'], 'data_preprocessor')):
        pre = holder.get(key)
        if isinstance(pre, dict) and str(pre.get('type', '')).endswith(
                'NamedNormClsDataPreprocessor'):
            holder[key] = _stock_preprocessor(pre, notes, key)
    optim = out.get('optim_wrapper')
    if isinstance(optim, dict) and str(optim.get('constructor', '')).startswith(_SCOPE):
        del optim['constructor']
        notes.append('optim_wrapper: vpetl_mm.PETLOptimWrapperConstructor removed (the stock '
                     'model has no PETL parameters).')
    hooks = out.get('custom_hooks')
    if hooks:
        kept = [h for h in hooks if not _vpetl_refs(h)]
        if len(kept) < len(hooks):
            notes.append(f'custom_hooks: {len(hooks) - len(kept)} vpetl_mm hook(s) removed.')
        out['custom_hooks'] = kept


def _drop_vpetl_loops(out: dict, notes: List[str]) -> None:
    """Drop each Runner loop, and each other top-level key, that still needs vpetl_mm."""
    for loop, keys in _LOOPS.items():
        if any(_vpetl_refs(out.get(k)) for k in keys):
            dropped = [k for k in keys if k in out]
            for key in dropped:
                del out[key]
            notes.append(f'{loop} loop dropped ({", ".join(dropped)}): it needs vpetl_mm '
                         '(e.g. its datasets); set your own to run it with the stock toolbox.')
    for key in [k for k in out if _vpetl_refs(out[k])]:  # e.g. pipeline variables
        del out[key]
        notes.append(f'{key} dropped: it needs vpetl_mm.')


def stock_config(cfg: Config, petl_path: Sequence) -> Tuple[Config, List[str]]:
    """The config of the stock model: the ``PETLBackbone`` replaced by its host backbone.

    The host backbone's pretrained ``init_cfg`` is dropped (the exported checkpoint holds every
    weight), ``vpetl_mm`` leaves ``custom_imports``, the named-normalisation preprocessor becomes
    mmpretrain's, vpetl_mm's optimizer constructor and hooks are removed, and a Runner loop
    (train / val / test) that still needs vpetl_mm (e.g. its VTAB-1k dataset) is dropped whole.

    Returns:
        The stock config and notes on every change beyond the backbone swap.

    Raises:
        ValueError: If the model part still needs vpetl_mm after these changes.

    Examples:
        >>> cfg = Config.fromfile('configs/lora/vit-b_vtab-cifar100.py')
        >>> stock, notes = stock_config(cfg, find_petl_path(cfg.model)[0])
        >>> stock.model.backbone.type
        'VisionTransformer'
    """
    out = copy.deepcopy(cfg.to_dict())
    notes: List[str] = []
    _swap_backbone(out, petl_path, notes)
    _drop_vpetl_runtime(out, notes)
    left = _vpetl_refs(out['model'])
    if left:
        raise ValueError(f'The model still needs vpetl_mm at model.{".".join(map(str, left[0]))}'
                         f' ({_get(out["model"], left[0])!r}) after the backbone swap; it cannot '
                         'be exported as a stock model. Use --no-merge.')
    _drop_vpetl_loops(out, notes)
    return Config(out), notes
