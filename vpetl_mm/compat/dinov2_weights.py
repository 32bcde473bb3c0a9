"""Original DINOv2 checkpoints (facebookresearch/dinov2) load into mmpretrain ``VisionTransformer``.

mmpretrain publishes DINOv2 converted to its own names
(``vit-base-p14_dinov2-pre_3rdparty_20230426-ba246503.pth``, open-mmlab/mmpretrain@1cad446,
``configs/dinov2/metafile.yml``), which the host loads natively. The files Meta publishes
(``dinov2_vitb14_pretrain.pth``, the same metafile's "Converted From") use the DINOv2 code's
names; :class:`DINOv2KeyConverter` renames them on any load, so either file works as the host's
``Pretrained`` checkpoint. The layer scales (``ls1.gamma``, ``ls2.gamma``) become the host's
``attn.gamma1.weight`` / ``ffn.gamma2.weight`` (the host needs ``layer_scale_init_value > 0``).

Files this converter refuses, each with one line naming the host that takes it: register-token
checkpoints (``*_reg4_pretrain.pth``: the mmpretrain ViT has no register tokens; timm's
``vit_*_reg4_dinov2`` has) and ViT-g/14 (its SwiGLU FFN ``mlp.w12`` / ``mlp.w3``).

Examples:
    >>> backbone = dict(type='VisionTransformer', arch='b', img_size=518, patch_size=14,
    ...                 layer_scale_init_value=1e-5, init_cfg=dict(
    ...                     type='Pretrained', checkpoint='dinov2_vitb14_pretrain.pth'))
"""
import re
from typing import Dict, Tuple

import torch
import torch.nn as nn

from .keys import rename_keys, replace_prefixed
from .vit_npz import GoogleViTNpzLoader

# DINOv2 code name (regex) -> mmpretrain VisionTransformer name; block index kept
_RENAMES: Tuple[Tuple[str, str], ...] = (
    (r'^blocks\.(\d+)\.norm1\.', r'layers.\1.ln1.'),
    (r'^blocks\.(\d+)\.norm2\.', r'layers.\1.ln2.'),
    (r'^blocks\.(\d+)\.attn\.', r'layers.\1.attn.'),
    (r'^blocks\.(\d+)\.ls1\.gamma$', r'layers.\1.attn.gamma1.weight'),
    (r'^blocks\.(\d+)\.ls2\.gamma$', r'layers.\1.ffn.gamma2.weight'),
    (r'^blocks\.(\d+)\.mlp\.fc1\.', r'layers.\1.ffn.layers.0.0.'),
    (r'^blocks\.(\d+)\.mlp\.fc2\.', r'layers.\1.ffn.layers.1.'),
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^norm\.', 'ln1.'),
)
_REFUSED = {
    'register_tokens': 'register-token DINOv2 files need a host with registers: use '
                       "TIMMBackbone(model_name='vit_base_patch14_reg4_dinov2') (profile "
                       "'timm.VisionTransformer'), which loads them through timm's converter.",
    'mlp.w12': 'DINOv2 ViT-g/14 files (SwiGLU FFN mlp.w12 / mlp.w3) are not mapped to the '
               "mmpretrain ViT: use TIMMBackbone(model_name='vit_giant_patch14_dinov2').",
}


def is_dinov2_layout(keys) -> bool:
    """Whether state-dict ``keys`` are in the DINOv2 code's layout (its ``mask_token`` and
    ``blocks.N.ls1.gamma`` names)."""
    keys = set(keys)
    return 'mask_token' in keys or any(re.match(r'blocks\.\d+\.ls1\.gamma$', k) for k in keys)


def convert_dinov2(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """DINOv2-code names -> mmpretrain ``VisionTransformer`` names (``mask_token`` is kept: the
    host has none, so the load report lists it as ignored).

    Raises:
        ValueError: a register-token or ViT-g file (see the module docstring).

    Examples:
        >>> convert_dinov2({'blocks.0.ls1.gamma': g})
        {'layers.0.attn.gamma1.weight': g}
    """
    for marker, message in _REFUSED.items():
        if any(marker in k for k in state):
            raise ValueError(f'This checkpoint holds {marker!r}: {message}')
    return rename_keys(state, _RENAMES)


class DINOv2KeyConverter:
    """``load_state_dict`` pre-hook on an mmpretrain ``VisionTransformer``: renames DINOv2-code
    state dicts (any other layout passes unchanged).

    Args:
        backbone: The host.

    Examples:
        >>> DINOv2KeyConverter(host)
        >>> host.load_state_dict(torch.load('dinov2_vitb14_pretrain.pth'), strict=False)
    """

    def __init__(self, backbone: nn.Module) -> None:
        # The host's own pre-hook (_prepare_pos_embed) ran before this one was registered and
        # reads 'pos_embed', a name both layouts share, so the grid resize still happens.
        backbone._register_load_state_dict_pre_hook(self._hook)

    @staticmethod
    def _hook(state_dict: dict, prefix: str, *args) -> None:
        if is_dinov2_layout(k[len(prefix):] for k in state_dict if k.startswith(prefix)):
            replace_prefixed(state_dict, prefix, convert_dinov2)


class MMPretrainViTWeights(GoogleViTNpzLoader):
    """The ``weights`` of the 'mmpretrain.VisionTransformer' profile: Google ``.npz`` files
    (:class:`~vpetl_mm.compat.vit_npz.GoogleViTNpzLoader`) and original DINOv2 files
    (:class:`DINOv2KeyConverter`); mmpretrain's own files (DINOv2, CLIP, DeiT ...) load as the
    host loads them.

    Examples:
        >>> MMPretrainViTWeights(host)  # what PETLBackbone does for this profile's hosts
    """
    converter = DINOv2KeyConverter
