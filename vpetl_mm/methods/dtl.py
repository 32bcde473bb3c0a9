"""DTL (Fu et al., AAAI 2024): a compact low-rank side path, gated back into the later blocks.

Before each chosen block ``l`` the side path accumulates ``r += B_l A_l x_l`` from the block's
input; after each chosen later block it adds ``swish_beta(r) = r * sigmoid(beta * r)`` to the
backbone stream. The backbone's own weights are never touched and nothing is merged.

DTL's head reads ``norm(mean(patch tokens))``: the mean of the last block's patch tokens, then
the pretrained final norm (heekhero/DTL@bf6c51e, ``models/vision_transformer.py``, the end of
``forward``). ``pool='mean'`` reproduces it on the mmpretrain ViT (the benchmark configs use it);
the default ``pool='host'`` keeps the host's own output (the CLS token), so the method alone is
an identity at step 0 and runs on every sequence backbone.
"""
from functools import partial
from typing import Any, Optional, Tuple

import torch
import torch.nn as nn

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod
from .side import host_out_type


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
    DTL+'s depthwise fusion conv is not included. Zero-init (``pool='host'``): the
    up-projections start at zero, so ``r = 0`` and ``swish(0) = 0``.

    Pooling: DTL classifies from ``final_norm(mean(patch tokens of the last block))``
    (heekhero/DTL@bf6c51e, ``models/vision_transformer.py``); ``pool='mean'`` replaces the
    host's pooled ``(B, D)`` output by exactly that, with the host's own frozen final norm
    (mmpretrain ViT with ``final_norm=True``, ``out_type`` ``'cls_token'`` or
    ``'avg_featmap'``). The benchmark configs use it; an instance with ``pool='mean'`` is not
    an identity at step 0 (its ``ZERO_INIT`` is False). ``pool='host'`` (default) keeps the
    host's output.

    Args:
        rank: Rank r of each side layer.
        lora_before_blocks: Blocks whose input feeds the side path (``'0-11'``, a list).
        add_after_blocks: Blocks after which the gated path is added (``None``: second half).
        beta: Sharpness of the swish gate.
        pool: ``'host'`` (the host's own output) or ``'mean'`` (DTL's head input, see above).

    Examples:
        >>> petl = dict(type='DTL', rank=2, lora_before_blocks='0-11', add_after_blocks='6-11')
        >>> petl = dict(type='DTL', pool='mean')  # DTL's own head input (benchmark configs)
    """
    DEFAULTS = dict(rank=2, lora_before_blocks=None, add_after_blocks=None, beta=100.,
                    pool='host')

    TOKENS = ('sequence', )  # one residual of one width across blocks: plain ViTs

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # replacing the host's pooled output changes it at step 0: say so per instance
        self.ZERO_INIT = self.pool == 'host'
        self._tokens: Optional[torch.Tensor] = None

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        before, after = self._blocks(len(anatomy.blocks))
        if after[0] < before[0]:
            raise ValueError(f'DTL add_after_blocks {after} start before the side path '
                             f'does (lora_before_blocks {before}).')
        if self.rank < 1:
            raise ValueError(f'DTL needs rank >= 1, got {self.rank}.')
        if self.pool not in ('host', 'mean'):
            raise ValueError(f"DTL pool={self.pool!r}: use 'host' (the host's output) or "
                             "'mean' (DTL's norm of the mean patch token).")
        if self.pool == 'mean':
            _final_norm(anatomy)  # raises where the host has none to reuse

    def _blocks(self, depth: int) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
        """The blocks feeding the side path and those it is added after (defaults filled)."""
        return (_block_range(self.lora_before_blocks or f'0-{depth - 1}', depth,
                             'lora_before_blocks'),
                _block_range(self.add_after_blocks or f'{depth // 2}-{depth - 1}', depth,
                             'add_after_blocks'))

    def plan(self, anatomy: Anatomy) -> None:
        super().plan(anatomy)
        self._before, self._after = self._blocks(len(anatomy.blocks))
        if self.pool == 'mean':
            self._norm, self._prefix = _final_norm(anatomy), anatomy.num_prefix_tokens()

    def inject(self, anatomy: Anatomy) -> None:
        side = SidePath(anatomy.blocks[0].dim, self.rank, len(self._before), self.beta)
        self.attach(anatomy.blocks[0], 'side', side)
        for slot, index in enumerate(self._before):
            self.hook(anatomy.blocks[index].module, partial(side.accumulate, slot), pre=True)
        for index in self._after:
            self.hook(anatomy.blocks[index].module, side.gate)
        if self.pool == 'mean':
            self.hook(anatomy.blocks[-1].module, self._read_tokens)

    # bound methods, so deep copies (EMA models) rebind them to the copy
    def _read_tokens(self, module: nn.Module, args, output: torch.Tensor) -> None:
        self._tokens = output

    def transform_output(self, output: Any) -> Any:
        """``pool='mean'``: the host's pooled output becomes ``norm(mean(patch tokens))``."""
        if self.pool == 'host':
            return output
        tokens, self._tokens = self._tokens, None
        if tokens is None:
            raise RuntimeError('DTL pool=\'mean\' saw no output of the last block: the host '
                               'forward did not run every block.')
        pooled = self._norm(tokens[:, self._prefix:].mean(dim=1))
        feats = list(output) if isinstance(output, (tuple, list)) else [output]
        feats[-1] = pooled.to(feats[-1].dtype)
        return type(output)(feats) if isinstance(output, (tuple, list)) else feats[0]


def _final_norm(anatomy: Anatomy) -> nn.Module:
    """The host's final norm, for DTL's ``pool='mean'`` (mmpretrain ViT: ``ln1``)."""
    root = anatomy._get(anatomy.backbone, anatomy.profile.root)
    if host_out_type(anatomy) not in ('cls_token', 'avg_featmap') or not getattr(
            root, 'final_norm', False):
        raise ValueError("DTL pool='mean' replaces a pooled (B, C) output with the host's final "
                         'norm of the mean patch token: it needs an mmpretrain ViT with '
                         "final_norm=True and out_type 'cls_token' or 'avg_featmap'; use "
                         "pool='host' on other backbones.")
    return root.ln1
