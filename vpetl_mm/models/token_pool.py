"""A neck that pools token sequences ``(B, N, C)`` (or maps) into ``(B, C)`` for mmpretrain heads."""
from typing import Sequence, Tuple

import torch
import torch.nn as nn

from ..registry import MODELS


@MODELS.register_module()
class TokenPool(nn.Module):
    """Class-token or mean pooling of sequence outputs, e.g. of a timm ViT in ``TIMMBackbone``.

    mmpretrain's ``TIMMBackbone`` resets timm's classifier with ``global_pool=''``, so a timm
    ViT returns all its tokens; mmpretrain's ``GlobalAveragePooling`` pools image maps, not
    sequences. This neck restores timm's own pooling in front of e.g. ``LinearClsHead``. With
    ``mode='avg'`` it also averages ``(B, C, H, W)`` maps, and it takes the list outputs of
    mmdet / mmseg backbones (mmpretrain's ``GlobalAveragePooling`` takes tuples only), so a dense
    host such as mmdet's Swin can sit under an image classifier.

    Args:
        mode: ``'cls'`` (the first token, timm's ``global_pool='token'``) or ``'avg'`` (the mean
            of the tokens after the ``num_prefix_tokens`` prefix ones, timm's ``'avg'``).
        num_prefix_tokens: Class / register tokens in front of the patch tokens.

    Examples:
        >>> neck = dict(type='vpetl_mm.TokenPool', mode='cls')
    """

    def __init__(self, mode: str = 'cls', num_prefix_tokens: int = 1) -> None:
        super().__init__()
        if mode not in ('cls', 'avg'):
            raise ValueError(f"TokenPool mode must be 'cls' or 'avg', got {mode!r}.")
        self.mode, self.num_prefix_tokens = mode, num_prefix_tokens

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        outs = []
        for x in (inputs if isinstance(inputs, (list, tuple)) else (inputs, )):
            if x.dim() == 4 and self.mode == 'avg':
                outs.append(x.mean(dim=(2, 3)))
            elif x.dim() == 3:
                outs.append(x[:, 0] if self.mode == 'cls' else
                            x[:, self.num_prefix_tokens:].mean(dim=1))
            else:
                raise ValueError(f"TokenPool(mode={self.mode!r}) takes (B, N, C) token sequences"
                                 f"{' or (B, C, H, W) maps' if self.mode == 'avg' else ''}, got "
                                 f"shape {tuple(x.shape)}; (B, C, H, W) maps need mode='avg'.")
        return tuple(outs)
