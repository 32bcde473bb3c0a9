"""RepAdapter (Luo et al., 2023): linear adapters in front of qkv and fc1, merged away."""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import PETL_METHODS
from .linear_fold import LinearFoldMethod

_SITES = ('qkv', 'fc1')


class RepAdapterLayer(nn.Module):
    """``x + scale * B(dropout(A x))`` on the input of one host ``nn.Linear`` (a pre-hook).

    ``A``: dim -> hidden with bias (xavier); ``B``: hidden -> dim with bias, *grouped* (hidden
    and dim split into ``groups`` blocks, a block-diagonal matrix, as RepAdapter's grouped
    Conv1d), zero-initialised, so the layer starts as the identity. Being linear, it folds into
    the host layer it feeds: ``W' = W (I + s B A)``, ``b' = b + s W (B b_A + b_B)``.
    """

    def __init__(self, dim: int, hidden: int, groups: int, scale: float,
                 dropout: float) -> None:
        super().__init__()
        if hidden % groups or dim % groups:
            raise ValueError(f'RepAdapter: hidden={hidden} and the width {dim} must be '
                             f'divisible by groups={groups}.')
        self.A = nn.Linear(dim, hidden)
        self.B_weight = nn.Parameter(torch.zeros(groups, dim // groups, hidden // groups))
        self.B_bias = nn.Parameter(torch.zeros(dim))
        self.groups, self.scale = groups, scale
        self.dropout = nn.Dropout(dropout)
        self.merged = False
        self._saved: Tuple[torch.Tensor, torch.Tensor] = ()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.A.weight)
        nn.init.zeros_(self.A.bias)
        nn.init.zeros_(self.B_weight)
        nn.init.zeros_(self.B_bias)

    def dense_B(self) -> torch.Tensor:
        """The (dim, hidden) block-diagonal matrix of the grouped up-projection."""
        return torch.block_diag(*self.B_weight)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.A(x)).unflatten(-1, (self.groups, -1))
        up = torch.einsum('...gi,goi->...go', h, self.B_weight).flatten(-2)
        return self.scale * (up + self.B_bias)

    def hook(self, module: nn.Linear, args):
        if self.merged:
            return None
        return (args[0] + self.delta(args[0]), ) + tuple(args[1:])

    @torch.no_grad()
    def merge(self, base: nn.Linear) -> None:
        self._saved = (base.weight.clone(), base.bias.clone())
        B = self.dense_B()
        weight = base.weight + self.scale * base.weight @ B @ self.A.weight
        bias = base.bias + self.scale * F.linear(B @ self.A.bias + self.B_bias, base.weight)
        base.weight.copy_(weight)
        base.bias.copy_(bias)

    @torch.no_grad()
    def unmerge(self, base: nn.Linear) -> None:
        # the saved host weights, not an inverse of (I + s B A): exact whatever the update
        base.weight.copy_(self._saved[0])
        base.bias.copy_(self._saved[1])
        self._saved = ()


@PETL_METHODS.register_module()
class RepAdapter(LinearFoldMethod):
    """Re-parameterisable linear adapters before the attention and (``repblock``) the MLP.

    Placed after norm1 (on the input of qkv) and after norm2 (on the input of fc1), as
    RepAdapter's ``repblock``; ``targets=('qkv', )`` is its ``repattn``. Per adapter
    ``D * hidden + hidden + D * hidden / groups + D`` parameters: ViT-B/16 with hidden 8,
    groups 2: 9,992, so 239,808 for repblock (published 0.22M, 9% lower: it matches neither
    placement, 119,904 for repattn; the original code has both biases, as here). Zero-init;
    merges into qkv / fc1, so inference runs the stock backbone.

    Args:
        hidden: Bottleneck width (RepAdapter's ``dim``, 8).
        groups: Groups of the up-projection (2).
        scale: The adapter output scale ``s`` (tuned per task in the paper; 1 by default).
        dropout: Dropout between the projections (0.1).
        targets: Linear sites whose input is adapted: ``'qkv'`` and/or ``'fc1'``.

    Examples:
        >>> petl = dict(type='RepAdapter', hidden=8, groups=2, scale=1.0)
    """
    DEFAULTS = dict(hidden=8, groups=2, scale=1., dropout=0.1, targets=_SITES)
    # VideoMAE's qkv has no bias (q / v biases are separate): the merge needs one
    PROFILES = ('mmpretrain.VisionTransformer', 'timm.VisionTransformer',
                'mmpretrain.SwinTransformer', 'mmdet.SwinTransformer', 'mmseg.SwinTransformer',
                'mmaction.SwinTransformer3D')

    SITE_CHOICES = _SITES
    PRE_HOOK = True  # the adapter rewrites the host layer's input

    def make_layer(self, host: nn.Linear, site: str) -> RepAdapterLayer:
        return RepAdapterLayer(host.in_features, self.hidden, self.groups, self.scale,
                               self.dropout)
