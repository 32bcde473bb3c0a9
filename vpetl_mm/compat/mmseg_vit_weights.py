"""DINOv2 and CLIP files load into mmseg's ``VisionTransformer`` (the UperNet-ViT host).

mmseg's ViT (mmseg 1.2.2 ``mmseg/models/backbones/vit.py``) names its attention after
``torch.nn.MultiheadAttention`` (``layers.N.attn.attn.in_proj_weight`` for the fused q/k/v,
``attn.attn.out_proj`` for the output), its pre-norm ``ln_pre`` and has no layer scale. The
files people put in it are in other layouts:

* mmpretrain's ``VisionTransformer`` names (its DINOv2 and CLIP conversions,
  ``vit-base-p14_dinov2-pre_3rdparty_20230426-ba246503.pth``,
  ``clip-vit-base-p16_openai-pre_3rdparty_in1k_20221220-c7d9c899.pth``; keys under
  ``backbone.``): ``attn.qkv`` / ``attn.proj`` / ``pre_norm`` are renamed, and the layer scales
  ``attn.gamma1`` / ``ffn.gamma2`` are folded into the layer before them
  (``g * (W x + b) = (g W) x + g b``, exact), so a DINOv2 file gives DINOv2's features on a
  host without layer scale;
* Meta's DINOv2 files (``dinov2_vitb14_pretrain.pth``): renamed to mmpretrain's names by
  :func:`~vpetl_mm.compat.dinov2_weights.convert_dinov2` (which refuses register and ViT-g
  files in one line), then as above.

mmseg's own ViT files (and wrapper checkpoints) are already host-named and pass unchanged. The
host needs ``patch_bias=True`` for DINOv2 (its patch embedding has a bias; CLIP's has none),
``pre_norm=True`` for CLIP, and ``norm_cfg=dict(type='LN', eps=1e-6)`` for DINOv2.

Examples:
    >>> backbone = dict(type='VisionTransformer', img_size=(512, 512), patch_size=14,
    ...                 patch_bias=True, norm_cfg=dict(type='LN', eps=1e-6), final_norm=True,
    ...                 init_cfg=dict(type='Pretrained', checkpoint='dinov2_vitb14_pretrain.pth'))
"""
import math
import re
from typing import Dict, Tuple

import torch
import torch.nn as nn

from .dinov2_weights import convert_dinov2, is_dinov2_layout
from .keys import rename_keys, replace_prefixed
from .weights import HostWeights

# mmpretrain VisionTransformer name (regex) -> mmseg VisionTransformer name
_RENAMES: Tuple[Tuple[str, str], ...] = (
    (r'^layers\.(\d+)\.attn\.qkv\.(weight|bias)$', r'layers.\1.attn.attn.in_proj_\2'),
    (r'^layers\.(\d+)\.attn\.proj\.', r'layers.\1.attn.attn.out_proj.'),
    (r'^pre_norm\.', 'ln_pre.'),
)
# layer scale -> the layer it scales (both mmpretrain names)
_LAYER_SCALE = ((re.compile(r'^(layers\.\d+\.)attn\.gamma1\.weight$'), 'attn.proj.'),
                (re.compile(r'^(layers\.\d+\.)ffn\.gamma2\.weight$'), 'ffn.layers.1.'))


def is_mmpretrain_vit_layout(keys) -> bool:
    """Whether ``keys`` name an mmpretrain ``VisionTransformer`` (its fused ``attn.qkv``).

    Examples:
        >>> is_mmpretrain_vit_layout(['layers.0.attn.qkv.weight'])
        True
    """
    return any(re.match(r'layers\.\d+\.attn\.qkv\.weight$', k) for k in keys)


def fold_layer_scale(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Fold mmpretrain's layer scales into ``attn.proj`` / ``ffn.layers.1`` (rows scaled).

    Examples:
        >>> fold_layer_scale({'layers.0.attn.gamma1.weight': g, 'layers.0.attn.proj.weight': w,
        ...                   'layers.0.attn.proj.bias': b})
        {'layers.0.attn.proj.weight': w * g[:, None], 'layers.0.attn.proj.bias': b * g}
    """
    out = dict(state)
    for key in state:
        for pattern, layer in _LAYER_SCALE:
            match = pattern.match(key)
            if match:
                gamma = out.pop(key)
                for name in ('weight', 'bias'):
                    target = match.group(1) + layer + name
                    if target in out:
                        shape = (-1, ) + (1, ) * (out[target].dim() - 1)
                        out[target] = out[target] * gamma.to(out[target].dtype).view(shape)
    return out


def convert_to_mmseg_vit(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """mmpretrain-ViT or Meta-DINOv2 names -> mmseg ``VisionTransformer`` names (layer scale
    folded; keys it does not know, e.g. ``mask_token`` or a head, pass and are reported).

    Examples:
        >>> convert_to_mmseg_vit({'layers.0.attn.qkv.weight': w})
        {'layers.0.attn.attn.in_proj_weight': w}
    """
    if is_dinov2_layout(state):
        state = convert_dinov2(state)
    return rename_keys(fold_layer_scale(state), _RENAMES)


class MMSegViTKeyConverter:
    """``load_state_dict`` pre-hook on an mmseg ``VisionTransformer``: converts mmpretrain-ViT
    and Meta-DINOv2 state dicts (``backbone.``-prefixed mmpretrain files too); host-named ones
    pass unchanged.

    Args:
        backbone: The host.

    Examples:
        >>> MMSegViTKeyConverter(host)
        >>> host.load_state_dict(torch.load('dinov2_vitb14_pretrain.pth'), strict=False)
    """

    def __init__(self, backbone: nn.Module) -> None:
        self.backbone = backbone
        backbone._register_load_state_dict_pre_hook(self._hook)

    def _hook(self, state_dict: dict, prefix: str, *args) -> None:
        names = [k[len(prefix):] for k in state_dict if k.startswith(prefix)]
        published = not is_mmpretrain_vit_layout(names) and any(
            n.startswith('backbone.layers.') for n in names)
        if published:  # an mmpretrain file as published (mmseg's Pretrained init keeps all keys)
            names = [n[len('backbone.'):] if n.startswith('backbone.') else n for n in names]
        if is_dinov2_layout(names) or is_mmpretrain_vit_layout(names):
            replace_prefixed(state_dict, prefix, lambda state: self._convert(state, published))

    def _convert(self, state: dict, published: bool) -> dict:
        if published:
            state = {(k[len('backbone.'):] if k.startswith('backbone.') else k): v
                     for k, v in state.items()}
        converted = convert_to_mmseg_vit(state)
        if 'pos_embed' in converted:
            converted['pos_embed'] = self._resized(converted['pos_embed'])
        return converted

    def _resized(self, pos: torch.Tensor) -> torch.Tensor:
        """``pos_embed`` resized to the host's grid as mmseg's Pretrained init resizes it (which
        misses ``backbone.``-prefixed files: it looks for ``'pos_embed'``)."""
        host = self.backbone.pos_embed
        if pos.shape == host.shape:
            return pos
        side, host_side = int(math.sqrt(pos.shape[1] - 1)), int(math.sqrt(host.shape[1] - 1))
        return self.backbone.resize_pos_embed(pos, (host_side, host_side), (side, side),
                                              self.backbone.interpolate_mode)


class MMSegViTWeights(HostWeights):
    """The ``weights`` of the ``'mmseg.VisionTransformer'`` profile: the converter only (mmseg's
    own Pretrained init loads the file, weights-only through vpetl_mm's checkpoint loader, and
    resizes ``pos_embed``; the converter maps what it loads).

    Examples:
        >>> MMSegViTWeights(host)  # what PETLBackbone does for mmseg ViT hosts
    """
    converter = MMSegViTKeyConverter
