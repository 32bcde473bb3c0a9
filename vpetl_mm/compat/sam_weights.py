"""Meta's SAM checkpoints load into mmpretrain ``ViTSAM`` (the image encoder).

mmpretrain publishes SAM's encoders converted to its own names
(``vit-base-p16_sam-pre_3rdparty_sa1b-1024px_20230411-2320f9cc.pth``, open-mmlab/mmpretrain
``configs/sam/metafile.yml``; keys under ``backbone.``), which the host loads natively, resizing
``pos_embed`` and the relative-position tables to its grid. Meta's own files
(``sam_vit_b_01ec64.pth``, facebookresearch/segment-anything ``segment_anything/modeling/
image_encoder.py``) hold the whole model: the encoder under ``image_encoder.`` with
``blocks.N.norm1`` / ``mlp.lin1`` / ``neck.*`` names, plus ``prompt_encoder.*`` and
``mask_decoder.*``. :class:`SAMKeyConverter` renames the encoder to the host's names and drops
the prompt encoder and mask decoder (no part of a backbone).

Examples:
    >>> backbone = dict(type='ViTSAM', arch='base', img_size=1024, init_cfg=dict(
    ...     type='Pretrained', checkpoint='sam_vit_b_01ec64.pth'))
"""
import re
from typing import Dict, Tuple

import torch
import torch.nn as nn

from .keys import rename_keys, replace_prefixed
from .weights import HostWeights

_ENCODER = 'image_encoder.'
_DECODERS = ('prompt_encoder.', 'mask_decoder.')
# segment-anything ImageEncoderViT name (regex) -> mmpretrain ViTSAM name
_RENAMES: Tuple[Tuple[str, str], ...] = (
    (r'^blocks\.(\d+)\.norm1\.', r'layers.\1.ln1.'),
    (r'^blocks\.(\d+)\.norm2\.', r'layers.\1.ln2.'),
    (r'^blocks\.(\d+)\.attn\.', r'layers.\1.attn.'),
    (r'^blocks\.(\d+)\.mlp\.lin1\.', r'layers.\1.ffn.layers.0.0.'),
    (r'^blocks\.(\d+)\.mlp\.lin2\.', r'layers.\1.ffn.layers.1.'),
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^neck\.', 'channel_reduction.'),
)


def is_sam_layout(keys) -> bool:
    """Whether ``keys`` are segment-anything's (the whole model, or its image encoder).

    Examples:
        >>> is_sam_layout(['image_encoder.pos_embed'])
        True
    """
    return any(k.startswith(_ENCODER) or re.match(r'blocks\.\d+\.mlp\.lin1\.', k) for k in keys)


def convert_sam(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """segment-anything names -> mmpretrain ``ViTSAM`` names (prompt encoder and mask decoder
    dropped).

    Examples:
        >>> convert_sam({'image_encoder.blocks.0.mlp.lin1.weight': w})
        {'layers.0.ffn.layers.0.0.weight': w}
    """
    encoder = {(k[len(_ENCODER):] if k.startswith(_ENCODER) else k): v
               for k, v in state.items() if not k.startswith(_DECODERS)}
    return rename_keys(encoder, _RENAMES)


class SAMKeyConverter:
    """``load_state_dict`` pre-hook on an mmpretrain ``ViTSAM``: renames segment-anything state
    dicts (any other layout passes unchanged). Registered after the host's own pre-hooks (they
    resize ``pos_embed`` and the relative-position tables by name), so it re-runs them on the
    converted names.

    Args:
        backbone: The host.

    Examples:
        >>> SAMKeyConverter(host)
        >>> host.load_state_dict(torch.load('sam_vit_b_01ec64.pth'), strict=False)
    """

    def __init__(self, backbone: nn.Module) -> None:
        self.backbone = backbone
        backbone._register_load_state_dict_pre_hook(self._hook)

    def _hook(self, state_dict: dict, prefix: str, *args) -> None:
        if not is_sam_layout(k[len(prefix):] for k in state_dict if k.startswith(prefix)):
            return
        replace_prefixed(state_dict, prefix, convert_sam)
        # the host's resizing hooks ran before this one, on the foreign names
        if self.backbone.use_abs_pos:
            self.backbone._prepare_pos_embed(state_dict, prefix, *args)
        if any(getattr(layer.attn, 'use_rel_pos', False) for layer in self.backbone.layers):
            self.backbone._prepare_relative_position(state_dict, prefix, *args)


class SAMWeights(HostWeights):
    """The ``weights`` of the ``'mmpretrain.ViTSAM'`` profile: Meta's SAM files
    (:class:`SAMKeyConverter`); mmpretrain's converted files load as the host loads them.

    Examples:
        >>> SAMWeights(host)  # what PETLBackbone does for ViTSAM hosts
    """
    converter = SAMKeyConverter
