"""Adapter-only checkpoints that resume, and checkpoints that load with ``weights_only=True``."""
from mmengine.hooks import Hook
from mmengine.logging import print_log

from ..compat import decode_checkpoint, encode_checkpoint
from ..registry import HOOKS
from ..utils import find_petl_backbone, unwrap

_PREFIX = 'backbone.'


@HOOKS.register_module()
class PETLCheckpointHook(Hook):
    """Slim checkpoints to what a PETL run trained, and keep them weights-only loadable.

    On save (``before_save_checkpoint``): with ``adapter_only=True`` the frozen backbone
    parameters are dropped from ``state_dict`` (trainable tensors, buffers, neck and head stay,
    as do the optimizer, schedulers and message hub that ``--resume`` needs); ``meta`` and
    ``message_hub`` are encoded so that ``torch.load(weights_only=True)`` accepts the file.

    On load (``after_load_checkpoint``, for ``--resume`` and ``load_from``): the encoding is
    undone; for an adapter-only checkpoint the frozen weights must come from the backbone's
    pretrained ``init_cfg``, so if the model was not initialised yet (``tools/test.py``) its
    ``init_weights()`` runs first.

    Args:
        adapter_only: Drop frozen backbone parameters from saved checkpoints.

    Examples:
        >>> custom_hooks = [dict(type='vpetl_mm.PETLCheckpointHook', adapter_only=True)]
    """
    priority = 'VERY_HIGH'  # decode before any other hook reads message_hub or meta

    def __init__(self, adapter_only: bool = True) -> None:
        self.adapter_only = adapter_only

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
        encode_checkpoint(checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        decode_checkpoint(checkpoint)
        petl = checkpoint.get('meta', {}).get('petl', {})
        model = unwrap(runner.model)
        if petl.get('adapter_only') and not getattr(model, 'is_init', True):
            print_log('Adapter-only checkpoint: initialising the model first so the frozen '
                      'backbone gets its pretrained weights (backbone init_cfg).', logger='current')
            model.init_weights()

    @staticmethod
    def _prefix_of(runner, wrapper) -> str:
        for name, module in unwrap(runner.model).named_modules():
            if module is wrapper:
                return f'{name}.' if name else ''
        return _PREFIX
