"""SSF (Lian et al., NeurIPS 2022): scale and shift the features after every operation."""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod

_NORMS = (nn.LayerNorm, )  # affine over the last axis
_CONVS = (nn.Conv2d, nn.Conv3d)


class _ScaleShiftFn(torch.autograd.Function):
    """``y = x * scale + shift`` that keeps ``y``, not ``x``, for backward.

    The scale's gradient needs the input, ``x = (y - shift) / scale``. Autograd's ``mul`` would
    keep ``x``, a tensor nothing else keeps when the host layer is frozen (a frozen linear keeps
    no input), so SSF used to store one extra activation per host layer: more than full
    fine-tuning on ViT-B/16. ``y`` is what the next operation keeps anyway (GELU after fc1, the
    attention after qkv), so keeping it costs nothing there. SSF's scales start at N(1, 0.02)
    and stay far from 0, where the division would lose precision.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        y = torch.addcmul(shift, x, scale)
        ctx.save_for_backward(y, scale, shift)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        y, scale, shift = ctx.saved_tensors
        grad_x = grad * scale if ctx.needs_input_grad[0] else None
        grad_scale = (grad * (y - shift) / scale).sum_to_size(scale.shape) \
            if ctx.needs_input_grad[1] else None
        grad_shift = grad.sum_to_size(shift.shape) if ctx.needs_input_grad[2] else None
        return grad_x, grad_scale, grad_shift


class ScaleShift(nn.Module):
    """``y = scale * x + shift`` per output channel of one host layer (a forward hook).

    The channel axis is the last one for ``Linear`` and norm outputs, axis 1 for convolutions
    (the patch embedding). :meth:`merge` folds the affine map into the host layer's own weight
    and bias: ``W' = diag(scale) W``, ``b' = scale * b + shift``.
    """

    def __init__(self, channels: int, channel_axis: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))
        self.shift = nn.Parameter(torch.zeros(channels))
        self.channel_axis = channel_axis
        self.merged = False
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # SSF's init: scale ~ N(1, 0.02), shift ~ N(0, 0.02): close to, not exactly, identity
        nn.init.normal_(self.scale, mean=1., std=0.02)
        nn.init.normal_(self.shift, std=0.02)

    def _shaped(self, p: torch.Tensor, ndim: int) -> torch.Tensor:
        return p if self.channel_axis == -1 else p.view(-1, *([1] * (ndim - 2)))

    def hook(self, module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return output
        return _ScaleShiftFn.apply(output, self._shaped(self.scale, output.ndim),
                                   self._shaped(self.shift, output.ndim))

    def norm_hook(self, module: nn.LayerNorm, args, output: torch.Tensor) -> torch.Tensor:
        """After a LayerNorm: the norm again with the scale and shift folded into its affine.

        ``(xhat * w + b) * scale + shift`` is a LayerNorm with weight ``w * scale`` and bias
        ``b * scale + shift``. Computed that way it keeps only the norm's input for backward,
        which a frozen norm keeps anyway; the host's own output (and its graph) is dropped.
        Scaling the output instead would keep one more activation per norm, 2 x 768 numbers per
        token and ViT-B/16 block. The norm runs twice, a small cost next to the linears.
        """
        if self.merged:
            return output
        return F.layer_norm(args[0], module.normalized_shape, module.weight * self.scale,
                            torch.addcmul(self.shift, module.bias, self.scale), module.eps)

    @torch.no_grad()
    def merge(self, base: nn.Module) -> None:
        base.weight.mul_(self.scale.view(-1, *([1] * (base.weight.ndim - 1))))
        base.bias.mul_(self.scale).add_(self.shift)

    @torch.no_grad()
    def unmerge(self, base: nn.Module) -> None:
        base.weight.div_(self.scale.view(-1, *([1] * (base.weight.ndim - 1))))
        base.bias.sub_(self.shift).div_(self.scale)


def _channels(module: nn.Module) -> Tuple[int, int]:
    """(channels, channel axis) of a layer's output."""
    if isinstance(module, nn.Linear):
        return module.out_features, -1
    if isinstance(module, _CONVS):
        return module.out_channels, 1
    return module.weight.numel(), -1  # a LayerNorm


@PETL_METHODS.register_module()
class SSF(BasePETLMethod):
    """Scale-and-shift after every operation of the backbone, mergeable.

    Every ``nn.Linear`` and convolution with a bias and every affine ``LayerNorm`` of the
    backbone gets a per-channel ``scale * y + shift`` on its output, as in
    SSF's timm code: on ViT the patch embedding, norm1, qkv, proj, norm2, fc1, fc2 and the final
    norm, i.e. ViT-B/16 2 * (768 + 12 * 8448 + 768) = 205,824 parameters (published 0.21M). On
    Swin the patch-merging norms are included and its bias-free reduction is not (as SSF's Swin).
    Layers without a bias are skipped because the shift could not be merged into them.
    Not zero-init: the scales start at N(1, 0.02), as SSF.

    Examples:
        >>> petl = dict(type='SSF')
    """
    ZERO_INIT = False
    MERGEABLE = True
    PROFILES = ('mmpretrain.VisionTransformer', 'timm.VisionTransformer',
                'mmpretrain.SwinTransformer', 'mmdet.SwinTransformer', 'mmseg.SwinTransformer',
                'mmpretrain.ViTEVA02', 'mmseg.VisionTransformer')

    @staticmethod
    def targets(backbone: nn.Module) -> List[Tuple[str, nn.Module]]:
        """The host layers SSF follows: (path relative to the backbone, layer)."""
        found = []
        for path, module in backbone.named_modules():
            if 'petl_' in path:  # modules other PETL methods injected
                continue
            affine = isinstance(module, _NORMS) and getattr(module, 'weight', None) is not None
            layer = isinstance(module, (nn.Linear, *_CONVS))
            if (affine or layer) and getattr(module, 'bias', None) is not None:
                found.append((path, module))
        return found

    def plan(self, anatomy: Anatomy) -> None:
        super().plan(anatomy)
        self.layers = self.targets(anatomy.backbone)

    def inject(self, anatomy: Anatomy) -> None:
        for path, module in self.layers:
            layer = self.attach_near(anatomy, path, ScaleShift(*_channels(module)))
            self.hook_fold(module, layer,
                           layer.norm_hook if isinstance(module, _NORMS) else layer.hook)
