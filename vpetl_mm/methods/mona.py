"""Mona, the multi-cognitive visual adapter (Yin et al., CVPR 2025; github.com/Leiyi-Hu/mona)."""
from functools import partial
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.anatomy import Anatomy, BlockRef
from ..models.tokens import TokenGrid
from ..registry import PETL_METHODS
from .base import BasePETLMethod

_PLACEMENTS = ('attn', 'mlp')


def _embedding(k: int, size: int, scale: float) -> torch.Tensor:
    """``(k*k, size*size)``: a flat ``k x k`` kernel times this is the kernel centred in a
    ``size x size`` one, times ``scale``."""
    matrix = torch.zeros(k, k, size, size)
    offset = (size - k) // 2
    for i in range(k):
        for j in range(k):
            matrix[i, j, i + offset, j + offset] = scale
    return matrix.reshape(k * k, size * size)


class MonaOp(nn.Module):
    """Depthwise 3x3 / 5x5 / 7x7 convolutions averaged with a skip, then a 1x1 projector with
    a skip: ``a = (dw3(p) + dw5(p) + dw7(p)) / 3 + p; out = a + projector(a)``.

    Both stages are linear, so each runs as ONE kernel: the three depthwise kernels, centred in
    7x7 and averaged, plus a centre delta (the skip) make one depthwise 7x7 convolution
    (:meth:`depthwise`), and the skip around the projector joins its weight as ``W + I``
    (:meth:`mixer`). Both are composed from the parameters at every call (a few hundred
    numbers per channel), so gradients reach the three convolutions and the projector exactly
    as in the release's five-kernel form, and its state-dict keys are kept.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.conv2, self.conv3 = (
            nn.Conv2d(channels, channels, k, padding=k // 2, groups=channels) for k in (3, 5, 7))
        self.projector = nn.Conv2d(channels, channels, kernel_size=1)
        # Constants, not state: non-persistent, so checkpoints hold the release's keys only.
        self.register_buffer('embed3', _embedding(3, 7, 1 / 3), persistent=False)
        self.register_buffer('embed5', _embedding(5, 7, 1 / 3), persistent=False)
        skip = torch.zeros(7 * 7)
        skip[7 * 7 // 2] = 1.  # the centre tap: ``+ p``
        self.register_buffer('skip', skip, persistent=False)
        self.register_buffer('eye', torch.eye(channels), persistent=False)

    def depthwise(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(weight (C, 1, 7, 7), bias (C,))`` of ``(dw3 + dw5 + dw7) / 3 + identity``."""
        # One product per smaller kernel rather than one over a concatenation: each
        # parameter's gradient then comes back contiguous (no layout copy per tensor).
        weight = torch.add(self.skip, self.conv3.weight.flatten(1), alpha=1 / 3)
        weight = torch.addmm(weight, self.conv1.weight.flatten(1), self.embed3)
        weight = torch.addmm(weight, self.conv2.weight.flatten(1), self.embed5)
        bias = torch.stack([self.conv1.bias, self.conv2.bias, self.conv3.bias]).mean(0)
        return weight.view(-1, 1, 7, 7), bias

    def mixer(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(W + I, b)``: the projector with its skip, as a linear map of channels."""
        return self.projector.weight.flatten(1) + self.eye, self.projector.bias

    def spatial(self, maps: torch.Tensor) -> torch.Tensor:
        """The averaged depthwise convolutions with the skip, on ``(B', C, H, W)`` maps."""
        weight, bias = self.depthwise()
        return F.conv2d(maps, weight, bias, padding=3, groups=maps.shape[1])

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        weight, bias = self.mixer()
        return F.conv2d(self.spatial(maps), weight[..., None, None], bias)

    def pointwise(self, tokens: torch.Tensor) -> torch.Tensor:
        """The projector with its skip on ``(..., C)`` tokens. Prefix tokens (CLS ...) have no
        grid neighbours: only this part applies to them."""
        return F.linear(tokens, *self.mixer())


class MonaModule(nn.Module):
    """One Mona: ``x + up(dropout(gelu(MonaOp(down(gamma * LN(x) + gammax * x)))))``.

    Submodule names follow the Mona release (``norm``, ``gamma``, ``gammax``, ``project1``,
    ``adapter_conv``, ``project2``), so its checkpoints map by renaming the prefix only.
    Parameters: ``133*C + 9,728`` with the default bottleneck of 64.
    """

    def __init__(self, dim: int, bottleneck: int = 64, dropout: float = 0.1,
                 gamma_init: float = 1e-6) -> None:
        super().__init__()
        self.gamma_init = gamma_init
        self.norm = nn.LayerNorm(dim)
        self.gamma = nn.Parameter(torch.empty(dim))
        self.gammax = nn.Parameter(torch.empty(dim))
        self.project1 = nn.Linear(dim, bottleneck)
        self.adapter_conv = MonaOp(bottleneck)
        self.dropout = nn.Dropout(dropout)
        self.project2 = nn.Linear(bottleneck, dim)
        self.pending: Optional[torch.Tensor] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The release gets its Linear init from the host's trunc-normal(0.02) sweep and keeps
        # PyTorch's default conv init; gamma starts at 1e-6 so the block begins near identity.
        for linear in (self.project1, self.project2):
            nn.init.trunc_normal_(linear.weight, std=.02)
            nn.init.zeros_(linear.bias)
        for conv in self.adapter_conv.children():
            conv.reset_parameters()
        self.norm.reset_parameters()
        nn.init.constant_(self.gamma, self.gamma_init)
        nn.init.ones_(self.gammax)

    def delta(self, x: torch.Tensor, grid: TokenGrid, index: int) -> torch.Tensor:
        """The branch added to ``x`` (the module's output is ``x + delta``)."""
        # Fewer kernels than the release's order, same function: the 1x1 projector with its
        # skip applies to every token after the grid is joined back (prefix tokens get only
        # that part, as before), as one matrix product on tokens.
        op = self.adapter_conv
        p = self.project1(torch.addcmul(self.norm(x) * self.gamma, x, self.gammax))
        prefix, maps = grid.split(p, index)
        p = op.pointwise(grid.join(prefix, op.spatial(maps), like=p))
        return self.project2(self.dropout(F.gelu(p)))


@PETL_METHODS.register_module()
class Mona(BasePETLMethod):
    """Two Monas per block, on the residual stream after each residual add.

    The block computes ``x = x + attn(norm1(x)); x = Mona1(x); x = x + mlp(norm2(x));
    x = Mona2(x)``. Mona1 sits between the two residual adds, which no host exposes, so it is
    wired without patching the block: a pre-hook on ``norm2`` turns its input ``x`` into
    ``x + d`` (``d`` = Mona1's branch) and the block's output gains the same ``d``, which is
    exactly ``Mona1(x) + mlp(norm2(Mona1(x)))``. Mona2 transforms the block output. The
    convolutions need the token grid: Swin's ``hw_shape``, Video Swin's frames (per-frame
    convolutions) or the ViT patch grid (CLS-like tokens get the 1x1 projector only).

    Parameters per module ``133*C + 9,728``: Swin-B 3,667,456 and Swin-L 5,267,712 (the Mona
    training log prints 5,267,712 for Swin-L). The benchmark table's 4.16M / 5.08M do not follow
    from the method's definition (the two differ by 22% vs our 44%), so we keep the definition.

    Not zero-init: like the release, both projections start trunc-normal(0.02) with gamma 1e-6.

    Args:
        bottleneck: Width of the down-projection and of the convolutions (64 in the release).
        dropout: Dropout after the GELU.
        gamma_init: Initial value of the scale on the normalised input.
        placements: ``'attn'`` (after the attention residual) and/or ``'mlp'`` (after the MLP
            residual).

    Examples:
        >>> model = dict(backbone=dict(type='vpetl_mm.PETLBackbone',
        ...                            backbone=dict(type='SwinTransformer', embed_dims=128),
        ...                            petl=dict(type='Mona')))
    """
    DEFAULTS = dict(bottleneck=64, dropout=0.1, gamma_init=1e-6, placements=_PLACEMENTS)
    SITES = ('norm2', )
    TOKENS = ('sequence', 'windowed', 'grid3d')  # TokenGrid's layouts
    ZERO_INIT = False

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        bad = [p for p in self.placements if p not in _PLACEMENTS]
        if bad or not self.placements:
            raise ValueError(f'Mona placements {list(self.placements)} are invalid; use a '
                             f'non-empty subset of {list(_PLACEMENTS)}.')

    def inject(self, anatomy: Anatomy) -> None:
        self.grid = grid = TokenGrid(anatomy, self.hook)
        for block in anatomy.blocks:
            modules = {p: self.attach(block, p, MonaModule(block.dim, self.bottleneck,
                                                           self.dropout, self.gamma_init))
                       for p in self.placements}
            self._wire(anatomy, block, grid, modules.get('attn'), modules.get('mlp'))

    # Hooks are partials of bound methods, not closures, so deep copies (EMA models) rebind
    # them to the copied modules.
    def _wire(self, anatomy: Anatomy, block: BlockRef, grid: TokenGrid,
              first: Optional[MonaModule], second: Optional[MonaModule]) -> None:
        if first is not None:
            self.hook(anatomy.site(block, 'norm2'),
                      partial(self._before_norm2, first, grid, block.index), pre=True)
        self.hook(block.module, partial(self._after_block, first, second, grid, block.index))

    @staticmethod
    def _before_norm2(first: MonaModule, grid: TokenGrid, index: int, module, args):
        first.pending = first.delta(args[0], grid, index)
        return (args[0] + first.pending, ) + tuple(args[1:])

    @staticmethod
    def _after_block(first: Optional[MonaModule], second: Optional[MonaModule], grid: TokenGrid,
                     index: int, module, args, output):
        if first is not None:
            if first.pending is None:
                raise RuntimeError('Mona: the block ran without calling norm2; is the backbone '
                                   'profile right?')
            output, first.pending = output + first.pending, None
        if second is not None:
            output = output + second.delta(output, grid, index)
        return output
