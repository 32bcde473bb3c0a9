"""timm checkpoints (and the layouts timm converts) load into mmpretrain ``TIMMBackbone`` hosts.

mmpretrain's ``TIMMBackbone`` holds the timm model as ``timm_model``, so a timm file (the
Hugging Face hub's ``model.safetensors`` of ``timm/vit_base_patch14_dinov2.lvd142m``,
``timm/vit_base_patch16_clip_224.openai``, ``timm/eva02_base_patch14_224.mim_in22k`` ...) offers
``blocks.0.attn.qkv.weight`` where the host expects ``timm_model.blocks.0.attn.qkv.weight``.
timm itself maps foreign layouts in the ``checkpoint_filter_fn`` of each model module
(timm 1.0.x, ``timm/models/vision_transformer.py``: original DINOv2 with or without registers,
OpenAI CLIP, OpenCLIP; ``timm/models/eva.py``: EVA-02 MIM and fine-tuned files), and resamples
the position embedding and the patch embedding to the model's grid. This converter runs that
same function on every state dict offered to the host that is not already host-named, so
``init_cfg=dict(type='Pretrained', checkpoint='model.safetensors')`` loads what
``timm.create_model(..., pretrained=True)`` would, whatever the route.

Examples:
    >>> backbone = dict(type='TIMMBackbone', model_name='vit_base_patch14_reg4_dinov2',
    ...                 img_size=224, init_cfg=dict(type='Pretrained',
    ...                 checkpoint='timm/vit_base_patch14_reg4_dinov2.lvd142m/model.safetensors'))
"""
import sys
from typing import Callable, Dict, Optional

import torch
import torch.nn as nn

from .weights import HostWeights

_HOST_PREFIX = 'timm_model.'


def timm_filter_fn(model: nn.Module) -> Optional[Callable]:
    """The ``checkpoint_filter_fn`` of the timm module that defines ``model``'s class (None when
    that module has none: its files are loaded as they are)."""
    return getattr(sys.modules[type(model).__module__], 'checkpoint_filter_fn', None)


def convert_timm_state(state: Dict[str, torch.Tensor], model: nn.Module) -> Dict[str, torch.Tensor]:
    """A timm-layout (or timm-convertible) state dict, converted as timm converts it for
    ``model`` and named as ``TIMMBackbone`` names it (``timm_model.`` prefix).

    Examples:
        >>> convert_timm_state(torch.load('dinov2_vitb14_pretrain.pth'), host.timm_model)
        {'timm_model.cls_token': ..., 'timm_model.blocks.0.ls1.gamma': ..., ...}
    """
    filter_fn = timm_filter_fn(model)
    if filter_fn is not None:
        state = filter_fn(dict(state), model)
    return {_HOST_PREFIX + k: v for k, v in state.items()}


class TimmKeyConverter:
    """``load_state_dict`` pre-hook on a ``TIMMBackbone``: converts timm-layout state dicts.

    A state dict that already names ``timm_model.*`` keys (the host's own, a wrapper checkpoint)
    is left as it is.

    Args:
        backbone: The ``TIMMBackbone`` host.

    Examples:
        >>> TimmKeyConverter(host)
        >>> host.load_state_dict(timm_model.state_dict(), strict=False)  # loads every tensor
    """

    def __init__(self, backbone: nn.Module) -> None:
        self.backbone = backbone
        backbone._register_load_state_dict_pre_hook(self._hook)

    def _hook(self, state_dict: dict, prefix: str, *args) -> None:
        keys = [k for k in state_dict if k.startswith(prefix)]
        if not keys or any(k.startswith(prefix + _HOST_PREFIX) for k in keys):
            return
        offered = {k[len(prefix):]: state_dict.pop(k) for k in keys}
        converted = convert_timm_state(offered, self.backbone.timm_model)
        state_dict.update({prefix + k: v for k, v in converted.items()})


class TimmWeights(HostWeights):
    """The ``weights`` of the timm profiles: timm files through timm's own conversion.

    Examples:
        >>> TimmWeights(host)  # what PETLBackbone does for every 'timm.*' profile host
    """
    converter = TimmKeyConverter
