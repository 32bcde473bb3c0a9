"""Hydra (Kim et al., 2024): parallel and sequential low-rank branches around proj and fc2."""
from typing import Tuple

import torch
import torch.nn as nn

from ..registry import PETL_METHODS
from .linear_fold import LinearFoldMethod

_SITES = ('proj', 'fc2')


def _low_rank(features_in: int, rank: int, features_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(features_in, rank), nn.Linear(rank, features_out))


class HydraBranches(nn.Module):
    """``y + s * (P(x) + S(y))`` for a host layer ``y = W0 x + b0`` (a forward hook).

    ``P`` (parallel, in -> r -> out) reads the layer's input, ``S`` (sequential, out -> r ->
    out) its output; each is down (xavier, bias 0) -> dropout -> up (zeros), so the layer is
    unchanged at step 0. Linear throughout, so it folds into the layer:
    ``W = W0 + s (U_p D_p + U_s D_s W0)``, ``b = b0 + s (P(0) + U_s D_s b0 + S(0))``.
    """

    def __init__(self, base: nn.Linear, rank: int, scale: float, dropout: float) -> None:
        super().__init__()
        self.parallel = _low_rank(base.in_features, rank, base.out_features)
        self.sequential = _low_rank(base.out_features, rank, base.out_features)
        self.dropout = nn.Dropout(dropout)
        self.scale = scale
        self.merged = False
        self._saved: Tuple[torch.Tensor, ...] = ()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for branch in (self.parallel, self.sequential):
            nn.init.xavier_uniform_(branch[0].weight)
            nn.init.zeros_(branch[0].bias)
            nn.init.zeros_(branch[1].weight)
            nn.init.zeros_(branch[1].bias)

    def _branch(self, branch: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        return branch[1](self.dropout(branch[0](x)))

    def hook(self, module: nn.Linear, args, output: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return output
        return output + self.scale * (self._branch(self.parallel, args[0])
                                      + self._branch(self.sequential, output))

    @staticmethod
    def _affine(branch: nn.Sequential) -> Tuple[torch.Tensor, torch.Tensor]:
        """The branch as one affine map (dropout is the identity at inference)."""
        down, up = branch
        return up.weight @ down.weight, up.weight @ down.bias + up.bias

    @torch.no_grad()
    def merge(self, base: nn.Linear) -> None:
        self._saved = (base.weight.clone(), base.bias.clone())
        w_p, b_p = self._affine(self.parallel)
        w_s, b_s = self._affine(self.sequential)
        w0, b0 = self._saved
        base.weight.copy_(w0 + self.scale * (w_p + w_s @ w0))
        base.bias.copy_(b0 + self.scale * (b_p + w_s @ b0 + b_s))

    @torch.no_grad()
    def unmerge(self, base: nn.Linear) -> None:
        base.weight.copy_(self._saved[0])  # exact, whatever the branches became
        base.bias.copy_(self._saved[1])
        self._saved = ()


@PETL_METHODS.register_module()
class Hydra(LinearFoldMethod):
    """Parallel + sequential low-rank adapters on the attention projection and fc2, mergeable.

    As Hydra's ``hydra_both`` on VTAB-1k: rank 2, branches on ``proj`` and ``fc2``. Parameters
    per layer ``(in + 3 out) r + 2 r + 2 out``: ViT-B/16 12 * (7,684 + 12,292) = 239,712 at
    rank 2 (published 0.28M: no rank gives it, 239,712 is what Hydra's code builds). Zero-init.
    Hydra tunes ``scale`` and ``dropout`` per task (e.g. DTD 0.1 / 0.2); the defaults here are
    its layer's (1.0 / 0.0). Hydra's own merge code folds the attention branches with fc2's
    weight (a slip); here each folds into its own layer, checked against the unmerged output.

    Args:
        rank: Rank r of every branch (2).
        scale: Output scale s of both branches.
        dropout: Dropout after each down-projection.
        targets: Linear sites: ``'proj'`` and / or ``'fc2'``.

    Examples:
        >>> petl = dict(type='Hydra', rank=2, scale=0.1, dropout=0.2)
    """
    DEFAULTS = dict(rank=2, scale=1., dropout=0., targets=_SITES)
    SITE_CHOICES = _SITES
    PROFILE_DEFAULTS = {'mmpretrain.ConvNeXt': dict(targets=('fc2', ))}  # no attention

    def make_layer(self, host: nn.Linear, site: str) -> HydraBranches:
        return HydraBranches(host, self.rank, self.scale, self.dropout)
