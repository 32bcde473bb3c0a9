"""BitFit (Ben Zaken et al., 2022): train only the bias terms of the backbone."""
from typing import Set

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod


@PETL_METHODS.register_module()
class BitFit(BasePETLMethod):
    """Train every backbone parameter whose name contains ``bias``.

    The name rule is the one of the V-PETL and Mona code. It also selects Swin's
    ``relative_position_bias_table`` and VideoMAE's ``q_bias`` / ``v_bias``, which is what the
    published counts include: ViT-B/16 102,912 (0.10M), Swin-B 0.20M, Swin-L 0.30M,
    Video Swin-B 1.09M (mostly the 3D relative position bias tables).

    Examples:
        >>> petl = dict(type='BitFit')
    """

    def trainable_base_params(self, anatomy: Anatomy) -> Set[str]:
        return {n for n, _ in anatomy.backbone.named_parameters() if 'bias' in n.rsplit('.', 1)[-1]}
