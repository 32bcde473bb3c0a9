"""Load a trained PETL checkpoint (full or adapter-only) into its built model, strictly checked.

Used by ``tools/export.py`` (:mod:`vpetl_mm.apis.export`): mm loading is non-strict, so here
every key must match and every error says what does not.
"""
import os.path as osp
import pickle
from typing import Any, Dict, Optional

import torch

from ..compat import decode_checkpoint
from ..compat.keys import preview
from ..utils import find_petl_backbone


def module_prefix(model: torch.nn.Module, target: torch.nn.Module) -> str:
    """The state-dict prefix of ``target`` inside ``model`` (``'backbone.'``; ``''`` for itself).

    Examples:
        >>> module_prefix(model, model.backbone)
        'backbone.'
    """
    for name, module in model.named_modules():
        if module is target:
            return f'{name}.' if name else ''
    raise ValueError('module not found in the model')


def read_checkpoint(path: str) -> dict:
    """``torch.load(weights_only=True)`` + vpetl_mm's meta decoding; clear errors.

    Examples:
        >>> read_checkpoint('work/epoch_100.pth')['meta']['petl']['adapter_only']
        True
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint {path!r} does not exist. Pass the .pth file a run '
                                'wrote (e.g. work_dirs/<config>/epoch_100.pth).')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f'{path!r} does not load with torch.load(weights_only=True): it holds non-tensor '
            f'objects ({str(err).splitlines()[0]}). vpetl_mm never turns this safety off; '
            'checkpoints written by tools/train.py (PETLCheckpointHook) load weights-only. '
            "Re-save this one as {'state_dict': model.state_dict()}.") from err
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{path!r} holds a {type(checkpoint).__name__}, not a checkpoint dict.')
    return decode_checkpoint(checkpoint)


def _checkpoint_state(checkpoint: dict, path: str) -> Dict[str, torch.Tensor]:
    """The checkpoint's tensors, the ``module.`` prefix of DataParallel files removed."""
    state = checkpoint.get('state_dict', checkpoint)
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f'{path!r} has no state_dict of tensors (keys: '
                         f'{preview(set(map(str, checkpoint)))}).')
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


def _restore_frozen(model: torch.nn.Module, wrapper, path: str) -> None:
    """Run the model's init (the host's Pretrained init_cfg) for an adapter-only checkpoint."""
    model.init_weights()
    if not wrapper.load_reporter.loads_seen:
        raise ValueError(
            f'{path!r} is adapter-only (the frozen backbone weights were left out), but the '
            "config's host backbone has no Pretrained init_cfg to restore them: set "
            "model...backbone.init_cfg=dict(type='Pretrained', checkpoint=<pretrained "
            'file>) as in training, or export a full checkpoint.')


def _check_shapes(model: torch.nn.Module, state: Dict[str, torch.Tensor], path: str) -> None:
    expected = model.state_dict()
    shapes = [f'{k}: checkpoint {tuple(v.shape)}, model {tuple(expected[k].shape)}'
              for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    if shapes:
        raise ValueError(f'{path!r} does not fit this config: {len(shapes)} tensor(s) have '
                         f'another shape, e.g. {shapes[:3]}. Was it trained with another '
                         'config (method options, number of classes)?')


def _load_strict(model: torch.nn.Module, wrapper, state: Dict[str, torch.Tensor], path: str,
                 adapter_only: bool) -> int:
    """Load ``state``; every key must match but the frozen ones of an adapter-only file.

    Returns:
        How many frozen tensors the checkpoint left to the init.
    """
    inner = module_prefix(model, wrapper)  # state_dict() names drop the wrapper's own level
    inner_level = f'{inner}backbone.'

    def outer(key: str) -> str:
        return inner + key[len(inner_level):] if key.startswith(inner_level) else key

    result = model.load_state_dict(state, strict=False)
    missing = {outer(k) for k in result.missing_keys}
    unexpected = {outer(k) for k in result.unexpected_keys}
    frozen = {inner + n for n in wrapper.frozen_param_names()} if adapter_only else set()
    bad = missing - frozen
    if bad or unexpected:
        raise ValueError(
            f'{path!r} does not match the model built from the config: loaded '
            f'{len(state) - len(unexpected)} of {len(state)} tensors; missing {len(bad)} '
            f'({preview(bad)}); unexpected {len(unexpected)} ({preview(unexpected)}). '
            'Export needs the checkpoint of this exact config (same method and options).')
    return len(missing & frozen)


def load_petl_checkpoint(model: torch.nn.Module, path: str,
                         checkpoint: Optional[dict] = None) -> Dict[str, Any]:
    """Load a full or adapter-only checkpoint into a built PETL model, strictly checked.

    As ``tools/test.py`` (``PETLCheckpointHook``): an adapter-only checkpoint lacks the frozen
    backbone weights, so the model's ``init_weights()`` (the host's pretrained ``init_cfg``)
    runs first. mm loading is non-strict; here every key must match: a checkpoint that misses
    anything but the frozen weights of an adapter-only file, or holds keys the model does not
    have, or a tensor of another shape, raises ``ValueError`` with the report.

    Args:
        model: The model built from the checkpoint's config.
        path: The checkpoint file.
        checkpoint: Its content if :func:`read_checkpoint` read it already.

    Returns:
        The load report: ``adapter_only``, ``loaded``, ``restored_from_init`` (key counts) and
        the checkpoint's decoded ``meta``.

    Examples:
        >>> model = build_model(Config.fromfile('configs/lora/vit-b_vtab-cifar100.py'))
        >>> load_petl_checkpoint(model, 'work/epoch_100.pth')['adapter_only']
        True
    """
    if checkpoint is None:
        checkpoint = read_checkpoint(path)
    state = _checkpoint_state(checkpoint, path)
    wrapper = find_petl_backbone(model)
    meta = checkpoint.get('meta') or {}
    adapter_only = bool((meta.get('petl') or {}).get('adapter_only'))
    if adapter_only:
        _restore_frozen(model, wrapper, path)
    _check_shapes(model, state, path)
    restored = _load_strict(model, wrapper, state, path, adapter_only)
    pending = wrapper.uncalibrated()
    if pending:
        raise ValueError(f'{pending} selections are not in {path!r}: the checkpoint was not '
                         'trained with PETLCalibrationHook.')
    return dict(adapter_only=adapter_only, loaded=len(state), restored_from_init=restored,
                meta=meta)
