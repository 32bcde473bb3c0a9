"""Make mmengine checkpoints loadable with ``torch.load(weights_only=True)``.

mmengine 0.10.7 saves numpy arrays and scalars and its own ``HistoryBuffer`` objects inside
``meta`` and ``message_hub``. torch >= 2.6 loads with ``weights_only=True`` by default and refuses
them, so mmengine cannot resume its own checkpoints. Rather than turning weights-only loading off
(or allow-listing classes process-wide), we write checkpoints that contain only plain Python
containers, numbers, strings and tensors, and decode the two numpy/mmengine types after loading.
``PETLCheckpointHook`` calls :func:`encode_checkpoint` in ``before_save_checkpoint`` and
:func:`decode_checkpoint` in ``after_load_checkpoint``.
"""
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

_TAG = '__vpetl_type__'


def _encode(obj: Any) -> Any:
    if isinstance(obj, HistoryBuffer):
        log, count = obj.data
        return {_TAG: 'HistoryBuffer', 'log': torch.from_numpy(np.array(log, dtype=np.float64)),
                'count': torch.from_numpy(np.array(count, dtype=np.float64)),
                'max_length': obj.max_length}
    if isinstance(obj, np.ndarray):
        return {_TAG: 'ndarray', 'data': torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, tuple) and not hasattr(obj, '_fields'):
        return tuple(_encode(v) for v in obj)
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        kind = obj.get(_TAG)
        if kind == 'HistoryBuffer':
            buf = HistoryBuffer(max_length=obj['max_length'])
            for value, count in zip(obj['log'].tolist(), obj['count'].tolist()):
                buf.update(value, count)
            return buf
        if kind == 'ndarray':
            return obj['data'].numpy()
        for key, value in obj.items():
            obj[key] = _decode(value)
        return obj
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if isinstance(obj, tuple) and not hasattr(obj, '_fields'):
        return tuple(_decode(v) for v in obj)
    return obj


def encode_checkpoint(checkpoint: dict) -> dict:
    """Rewrite ``meta`` and ``message_hub`` in place so the file loads weights-only."""
    for key in ('meta', 'message_hub'):
        if key in checkpoint:
            checkpoint[key] = _encode(checkpoint[key])
    return checkpoint


def decode_checkpoint(checkpoint: dict) -> dict:
    """Undo :func:`encode_checkpoint` in place (a no-op for checkpoints written without it)."""
    for key in ('meta', 'message_hub'):
        if key in checkpoint:
            checkpoint[key] = _decode(checkpoint[key])
    return checkpoint
