"""LAST (Tang et al., 2024): low-rank self-attention side-tuning beside a no-grad backbone.

The frozen backbone runs under ``torch.no_grad()``: it is a feature extractor whose
intermediate outputs ``z_0`` (the embedded tokens), ``z_1 .. z_m`` (the outputs of each group
of ``g`` blocks) feed a side network of low-rank self-attention (LSA) blocks,
``u_i = F_i(u_{i-1} + z_i)`` from ``u_0 = z_0``. The representation is bias-corrected,
``u_m - sum_{i<m} z_i``, which equals ``z_m`` plus the sum of the LSA branches; that sum is
added per token to the host output, so at step 0 (zero-initialised up-projections) the output
is the frozen backbone's.
"""
from typing import List

import torch
import torch.nn as nn

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .layers import attention
from .side import SideNetworkMethod

Tensor = torch.Tensor


class LowRankSelfAttention(nn.Module):
    """``x + up(attention_r(down(norm(x))))``: self-attention in an r-dimensional space.

    Args:
        dim: Token width D.
        rank: Width r of the attention space.
        heads: Attention heads inside the r dimensions.
        eps: LayerNorm epsilon.
    """

    def __init__(self, dim: int, rank: int, heads: int = 1, eps: float = 1e-6) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.down = nn.Linear(dim, rank)
        self.qkv = nn.Linear(rank, 3 * rank)
        self.up = nn.Linear(rank, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.norm, self.down, self.qkv):
            layer.reset_parameters()
        nn.init.zeros_(self.up.weight)  # the branch starts at zero: the output is the backbone's
        nn.init.zeros_(self.up.bias)

    def branch(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv(self.down(self.norm(x))).chunk(3, dim=-1)
        return self.up(attention(q, k, v, self.heads))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.branch(x)


class LSABlock(nn.Module):
    """``F_i``: ``depth`` LSA modules in sequence; returns the output and its branches' sum."""

    def __init__(self, dim: int, rank: int, heads: int, depth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(LowRankSelfAttention(dim, rank, heads)
                                    for _ in range(depth))

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def forward(self, x: Tensor):
        total = 0.
        for layer in self.layers:
            step = layer.branch(x)
            x, total = x + step, total + step
        return x, total


@PETL_METHODS.register_module()
class LAST(SideNetworkMethod):
    """Low-rank attention side-tuning: LSA blocks read the frozen blocks' outputs.

    The backbone runs without autograd. Its ``N`` blocks form ``m = N / g`` groups; the side
    block ``F_i`` (after group ``i``, attached to its last block) is ``T`` LSA modules
    ``x + up(attn(down(LN(x))))`` (``down: D -> r``, q / k / v ``r -> r`` with biases, ``up: r
    -> D`` zero-init), applied to ``u_{i-1} + z_i``. The bias-corrected ``u_m - sum_{i<m} z_i``
    is ``z_m`` plus every LSA branch; that sum is computed directly (no cancellation of large
    terms) and added per token to the host output in its layout (CLS, patch mean, ``featmap``
    or raw tokens), after the host's final norm: zero-init, like LAST's own start.

    LAST has no public code; from its paper, choices where it is silent (docs/image.md): one
    head, pre-norm, no output projection inside the r-space (``up`` follows), no MLP (LAST
    drops the FFN), default PyTorch init of norm / down / qkv. ViT-B/16, r = 32, g = 1, T = 1:
    12 x (2 * 768 + 768 * 32 + 32 + 3 * (32 * 32 + 32) + 32 * 768 + 768) = 655,872 (published
    0.66M).

    Args:
        rank: Width r of the attention space.
        heads: Heads inside it (dividing r).
        gap: Blocks per group g (dividing the depth).
        depth: LSA modules per side block T.

    Examples:
        >>> petl = dict(type='LAST', rank=32, gap=1)
    """
    DEFAULTS = dict(rank=32, heads=1, gap=1, depth=1)
    PROFILES = ('mmpretrain.VisionTransformer', 'timm.VisionTransformer')
    TOKENS = ('sequence', )
    DETACHES_BACKBONE = True
    ZERO_INIT = True

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        blocks = len(anatomy.blocks)
        if self.rank < 1 or self.heads < 1 or self.rank % self.heads:
            raise ValueError(f'LAST needs rank >= 1 divisible by heads, got rank={self.rank}, '
                             f'heads={self.heads}.')
        if self.gap < 1 or blocks % self.gap or self.depth < 1:
            raise ValueError(f'LAST gap={self.gap} must divide the {blocks} blocks and '
                             f'depth={self.depth} be >= 1.')

    def plan(self, anatomy: Anatomy) -> None:
        super().plan(anatomy)
        # z_i is the output of block i * g - 1: F_i lives on that block
        self.group_ends = anatomy.blocks[self.gap - 1::self.gap]

    def inject(self, anatomy: Anatomy) -> None:
        dim = anatomy.blocks[0].dim
        self.side: List[LSABlock] = [
            self.attach(block, 'lsa', LSABlock(dim, self.rank, self.heads, self.depth))
            for block in self.group_ends]
        self.tap_blocks(anatomy)

    def side_forward(self) -> Tensor:
        """``u_m - sum_{i<=m} z_i``: the sum of every LSA branch, per token ``(B, L, D)``."""
        taps = self.taps
        taps.require(self.group_ends[-1].index + 1, self.name)
        u, total = taps.embed, 0.
        for side, block in zip(self.side, self.group_ends):
            u, step = side(u + taps.outputs[block.index])
            total = total + step
        return total
