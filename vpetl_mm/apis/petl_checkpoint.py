"""Load a trained PETL checkpoint (full or adapter-only) into its built model, strictly checked.

Used by ``tools/export.py`` (:mod:`vpetl_mm.apis.export`): mm loading is non-strict, so here
every key must match and every error says what does not.
"""
from typing import Any, Dict, Optional, Set

import torch

from ..compat import CheckpointError, decode_checkpoint, load_checkpoint_file
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
    """Read a checkpoint weights-only (``.pth`` or ``.safetensors``); one-line errors.

    Any checkpoint OpenMMLab writes loads (stock mmengine ones with numpy state and
    ``HistoryBuffer``: :mod:`vpetl_mm.compat.safe_load`), and vpetl_mm's meta encoding is undone.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: not a checkpoint, truncated, or not a dict.

    Examples:
        >>> read_checkpoint('work/epoch_100.pth')['meta']['petl']['adapter_only']
        True
    """
    checkpoint = load_checkpoint_file(path)
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'{path}: holds a {type(checkpoint).__name__}, not a checkpoint '
                              'dict; pass the .pth file a run wrote.')
    return decode_checkpoint(checkpoint)


def _checkpoint_state(checkpoint: dict, path: str) -> Dict[str, torch.Tensor]:
    """The checkpoint's tensors, the ``module.`` prefix of DataParallel files removed."""
    state = checkpoint.get('state_dict', checkpoint)
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f'{path}: not a model checkpoint: no state_dict of tensors (keys: '
                              f'{preview(set(map(str, checkpoint)))}); pass the .pth file a '
                              'run wrote.')
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
        raise CheckpointError(
            f'{path}: belongs to another model: {len(shapes)} tensor(s) have another shape, '
            f'e.g. {shapes[:3]}; pass the checkpoint trained with this config (same method '
            'options, host and number of classes).')


def _petl_names(model: torch.nn.Module, wrapper) -> Set[str]:
    """The model's state-dict names of the PETL tensors (the injected modules' state)."""
    if wrapper is None:
        return set()
    prefix = module_prefix(model, wrapper)
    return {prefix + k for k in wrapper.load_reporter.petl_keys}


def check_checkpoint_fits(model: torch.nn.Module, state: Dict[str, torch.Tensor],
                          path: str) -> None:
    """Raise a one-line :class:`CheckpointError` if ``state`` is another model's.

    Another model: a tensor of another shape, or PETL tensors of the model missing (a host-only
    checkpoint, or one of another method). Frozen host tensors may be missing (adapter-only).

    Examples:
        >>> check_checkpoint_fits(model, read_checkpoint(path)['state_dict'], path)
    """
    _check_shapes(model, state, path)
    missing = _petl_names(model, find_petl_backbone(model)) - set(state)
    if missing:
        raise CheckpointError(
            f'{path}: belongs to another model: these PETL tensors are missing: '
            f'{preview(missing)} ({len(missing)}); it was not trained with this config (a '
            'host-only or another method\'s checkpoint): pass the checkpoint this config wrote.')


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
        petl = bad & _petl_names(model, wrapper)
        what = (f'these PETL tensors are missing: {preview(petl)}; ' if petl else '')
        raise CheckpointError(
            f'{path}: does not match the model built from the config: {what}loaded '
            f'{len(state) - len(unexpected)} of {len(state)} tensors; missing {len(bad)} '
            f'({preview(bad)}); unexpected {len(unexpected)} ({preview(unexpected)}). '
            'Pass the checkpoint of this exact config (same method and options).')
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
