"""Work-arounds for known breakages of the pinned OpenMMLab stack, applied in our own code.

Nothing here edits site-packages; see ``environment.md`` for the breakages themselves.
"""
from .checkpoint import decode_checkpoint, encode_checkpoint
from .compile import float_drop_probs, install_drop_path_float
from .losses import install_traceable_one_hot
from .mmaction import install_mmaction_drn_shim
from .safe_load import (CheckpointError, install_safe_checkpoint_loader, load_checkpoint_file,
                        write_safetensors)

__all__ = ['CheckpointError', 'decode_checkpoint', 'encode_checkpoint', 'float_drop_probs',
           'install_drop_path_float', 'install_mmaction_drn_shim', 'install_safe_checkpoint_loader',
           'install_traceable_one_hot', 'load_checkpoint_file', 'write_safetensors']
