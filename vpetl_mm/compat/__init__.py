"""Work-arounds for known breakages of the pinned OpenMMLab stack, applied in our own code.

Nothing here edits site-packages; see ``environment.md`` for the breakages themselves.
"""
from .checkpoint import decode_checkpoint, encode_checkpoint
from .mmaction import install_mmaction_drn_shim

__all__ = ['decode_checkpoint', 'encode_checkpoint', 'install_mmaction_drn_shim']
