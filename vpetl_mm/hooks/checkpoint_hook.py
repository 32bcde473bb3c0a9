"""Adapter-only checkpoints that resume, and checkpoints that load with ``weights_only=True``."""
import logging
import os.path as osp
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log

from ..apis.petl_checkpoint import check_checkpoint_fits
from ..compat import decode_checkpoint, encode_checkpoint, write_safetensors
from ..registry import HOOKS
from ..utils import find_petl_backbone, unwrap

_PREFIX = 'backbone.'
_FORMATS = ('pth', 'safetensors')


@HOOKS.register_module()
class PETLCheckpointHook(Hook):
    """Slim checkpoints to what a PETL run trained, and keep them weights-only loadable.

    On save (``before_save_checkpoint``): with ``adapter_only=True`` the frozen backbone
    parameters are dropped from ``state_dict`` (trainable tensors, buffers, neck and head stay,
    as do the optimizer, schedulers and message hub that ``--resume`` needs); ``meta`` and
    ``message_hub`` are encoded so that ``torch.load(weights_only=True)`` accepts the file. With
    ``format='safetensors'`` the model tensors are also written, without pickle, next to each
    ``.pth`` as ``<name>.safetensors`` with ``meta`` as its (JSON) metadata; the ``.pth`` stays
    because mmengine resumes from it (optimizer, schedulers, message hub).

    On load (``after_load_checkpoint``, for ``--resume`` and ``load_from``): the encoding is
    undone; for an adapter-only checkpoint the frozen weights must come from the backbone's
    pretrained ``init_cfg``, so if the model was not initialised yet (``tools/test.py``) its
    ``init_weights()`` runs first. With ``strict_load=True`` (``tools/test.py``) a checkpoint
    of another model (PETL tensors missing, tensors of another shape) raises a one-line
    :class:`~vpetl_mm.compat.CheckpointError` instead of mm's non-strict warning.

    Args:
        adapter_only: Drop frozen backbone parameters from saved checkpoints.
        format: ``'pth'``, or ``'safetensors'`` to also write ``<name>.safetensors``.
        strict_load: Refuse a loaded checkpoint that does not fit the model.

    Examples:
        >>> custom_hooks = [dict(type='vpetl_mm.PETLCheckpointHook', adapter_only=True,
        ...                      format='safetensors')]
    """
    priority = 'VERY_HIGH'  # decode before any other hook reads message_hub or meta

    def __init__(self, adapter_only: bool = True, format: str = 'pth',
                 strict_load: bool = False) -> None:
        if format not in _FORMATS:
            raise ValueError(f'PETLCheckpointHook format={format!r}: use one of {_FORMATS} '
                             "('safetensors' writes <name>.safetensors next to each .pth).")
        self.adapter_only = adapter_only
        self.format = format
        self.strict_load = strict_load

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        wrapper = find_petl_backbone(runner.model)
        if self.adapter_only and wrapper is not None:
            frozen = wrapper.frozen_param_names()
            prefix = self._prefix_of(runner, wrapper)
            state = checkpoint['state_dict']
            dropped = [k for k in state if k.startswith(prefix) and k[len(prefix):] in frozen]
            for key in dropped:
                del state[key]
            checkpoint.setdefault('meta', {})['petl'] = dict(
                adapter_only=True, dropped_frozen=len(dropped),
                methods=[repr(m) for m in wrapper.methods], profile=wrapper.profile.name)
        if self.format == 'safetensors' and is_main_process():
            self._write_safetensors(runner, checkpoint)
        encode_checkpoint(checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        decode_checkpoint(checkpoint)
        petl = checkpoint.get('meta', {}).get('petl', {})
        model = unwrap(runner.model)
        if petl.get('adapter_only') and not getattr(model, 'is_init', True):
            print_log('Adapter-only checkpoint: initialising the model first so the frozen '
                      'backbone gets its pretrained weights (backbone init_cfg).', logger='current')
            model.init_weights()
        if self.strict_load:
            state = checkpoint.get('state_dict', checkpoint)
            state = {k[len('module.'):] if k.startswith('module.') else k: v
                     for k, v in state.items()}
            check_checkpoint_fits(model, state, str(getattr(runner, '_load_from', None)
                                                    or 'the checkpoint'))

    def _write_safetensors(self, runner, checkpoint: dict) -> Optional[str]:
        """``<out_dir>/<name>.safetensors``: the name CheckpointHook gives this ``.pth``."""
        stock = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        if stock is None:
            print_log("PETLCheckpointHook(format='safetensors'): the run has no CheckpointHook "
                      '(default_hooks.checkpoint), so no checkpoint and no .safetensors is '
                      'written.', logger='current', level=logging.WARNING)
            return None
        meta = checkpoint.get('meta', {})
        step = meta.get('epoch') if stock.by_epoch else meta.get('iter')
        name = osp.splitext(stock.filename_tmpl.format(step))[0] + '.safetensors'
        out_dir = getattr(stock, 'out_dir', None) or runner.work_dir
        return write_safetensors(dict(state_dict=checkpoint['state_dict'], meta=meta),
                                 osp.join(out_dir, name))

    @staticmethod
    def _prefix_of(runner, wrapper) -> str:
        for name, module in unwrap(runner.model).named_modules():
            if module is wrapper:
                return f'{name}.' if name else ''
        return _PREFIX
