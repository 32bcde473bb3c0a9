"""DTL (Fu et al., AAAI 2024): a compact low-rank side path, gated back into the later blocks.

Before each chosen block ``l`` the side path accumulates ``r += B_l A_l x_l`` from the block's
input; after each chosen later block it adds ``swish_beta(r) = r * sigmoid(beta * r)`` to the
backbone stream. The backbone's own weights are never touched and nothing is merged.
"""
from functools import partial
from typing import Optional, Tuple

import torch
import torch.nn as nn

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod


class SidePath(nn.Module):
    """All low-rank side layers and the running residual ``r`` (shared by the block hooks).

    Args:
        dim: Token width D.
        rank: Rank r of each ``B_l A_l`` (no biases).
        slots: Number of side layers (blocks whose input feeds the path).
        beta: Gate sharpness.
    """

    def __init__(self, dim: int, rank: int, slots: int, beta: float) -> None:
        super().__init__()
        self.down = nn.ParameterList(nn.Parameter(torch.empty(rank, dim)) for _ in range(slots))
        self.up = nn.ParameterList(nn.Parameter(torch.empty(dim, rank)) for _ in range(slots))
        self.beta = beta
        self._residual: Optional[torch.Tensor] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # DTL's LoRALinear: kaiming-uniform(a=sqrt(5)) A, zero B, so r = 0 at step 0 and the
        # gate swish(0) = 0 leaves the backbone unchanged
        for down, up in zip(self.down, self.up):
            nn.init.kaiming_uniform_(down, a=5 ** 0.5)
            nn.init.zeros_(up)

    def accumulate(self, slot: int, block: nn.Module, args) -> None:
        x = args[0]
        step = x @ self.down[slot].t().to(x.dtype) @ self.up[slot].t().to(x.dtype)
        self._residual = step if slot == 0 else self._residual + step

    def gate(self, block: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        if self._residual is None:
            raise RuntimeError('DTL adds its side path after a block that no earlier side '
                               'layer fed: every block of add_after_blocks must come after '
                               'the first of lora_before_blocks.')
        r = self._residual
        return output + r * torch.sigmoid(self.beta * r)


def _block_range(spec, depth: int, name: str) -> Tuple[int, ...]:
    """``'6-11'``, ``[6, 7]`` or ``range(6, 12)`` -> sorted block indices, checked."""
    if isinstance(spec, str):
        lo, _, hi = spec.partition('-')
        indices = range(int(lo), int(hi or lo) + 1)
    else:
        indices = spec
    indices = tuple(sorted({int(i) for i in indices}))
    if not indices or indices[0] < 0 or indices[-1] >= depth:
        raise ValueError(f'DTL {name}={spec!r} must name blocks among 0..{depth - 1} '
                         f"(e.g. '0-{depth - 1}').")
    return indices


@PETL_METHODS.register_module()
class DTL(BasePETLMethod):
    """Disentangled transfer: low-rank side path from the block inputs, swish-gated back in.

    Defaults are DTL's ViT-B VTAB-1k scripts: rank 2, side layers before every block,
    added back after the second half (blocks 6-11 of 12; ``None`` = the second half of any
    depth), beta 100: ViT-B/16 12 * 2 * 768 * 2 = 36,864 parameters (published 0.04M).
    DTL+'s depthwise fusion conv is not included. DTL classifies from the mean of the patch
    tokens; the benchmark configs keep the host's output (the CLS token), like every method.
    Zero-init: the up-projections start at zero, so ``r = 0`` and ``swish(0) = 0``.

    Args:
        rank: Rank r of each side layer.
        lora_before_blocks: Blocks whose input feeds the side path (``'0-11'``, a list).
        add_after_blocks: Blocks after which the gated path is added (``None``: second half).
        beta: Sharpness of the swish gate.

    Examples:
        >>> petl = dict(type='DTL', rank=2, lora_before_blocks='0-11', add_after_blocks='6-11')
    """
    DEFAULTS = dict(rank=2, lora_before_blocks=None, add_after_blocks=None, beta=100.)

    TOKENS = ('sequence', )  # one residual of one width across blocks: plain ViTs

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        before, after = self._blocks(len(anatomy.blocks))
        if after[0] < before[0]:
            raise ValueError(f'DTL add_after_blocks {after} start before the side path '
                             f'does (lora_before_blocks {before}).')
        if self.rank < 1:
            raise ValueError(f'DTL needs rank >= 1, got {self.rank}.')

    def _blocks(self, depth: int) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
        """The blocks feeding the side path and those it is added after (defaults filled)."""
        return (_block_range(self.lora_before_blocks or f'0-{depth - 1}', depth,
                             'lora_before_blocks'),
                _block_range(self.add_after_blocks or f'{depth // 2}-{depth - 1}', depth,
                             'add_after_blocks'))

    def plan(self, anatomy: Anatomy) -> None:
        super().plan(anatomy)
        self._before, self._after = self._blocks(len(anatomy.blocks))

    def inject(self, anatomy: Anatomy) -> None:
        side = SidePath(anatomy.blocks[0].dim, self.rank, len(self._before), self.beta)
        self.attach(anatomy.blocks[0], 'side', side)
        for slot, index in enumerate(self._before):
            self.hook(anatomy.blocks[index].module, partial(side.accumulate, slot), pre=True)
        for index in self._after:
            self.hook(anatomy.blocks[index].module, side.gate)
