"""One entry point for the pretrained-weight converters of every host backbone.

``PETLBackbone`` calls :func:`install_weight_converters` on the host it builds, before the load
reporter, so that every load report describes converted (host-named) keys.
"""
from typing import Optional

import torch.nn as nn

from .swin_weights import install_weight_converters as install_swin_weight_converters
from .video_weights import VIDEO_PROFILES, install_video_weight_converters
from .vit_npz import VIT_PROFILE, install_vit_npz_loader


def install_weight_converters(backbone: nn.Module, profile) -> Optional[object]:
    """Install the converter the host needs: mmdet/mmseg Swin, mmaction2 video, the Google
    ``.npz`` loader of mmpretrain ViT, or none.

    Args:
        backbone: The built host backbone.
        profile: Its :class:`~vpetl_mm.models.profiles.BackboneProfile`.

    Returns:
        The installed converter, or None for hosts that need none.
    """
    if profile.name in VIDEO_PROFILES:
        return install_video_weight_converters(backbone, profile)
    if profile.name == VIT_PROFILE:
        return install_vit_npz_loader(backbone, profile)
    return install_swin_weight_converters(backbone, profile)
