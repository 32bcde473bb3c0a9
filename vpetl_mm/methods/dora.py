"""DoRA (Liu et al., ICML 2024): weight-decomposed low-rank adaptation, mergeable.

Sources: NVlabs/DoRA@7e2f10abbe8efe212c8fca1d983ae1d04ef13a18
(``commonsense_reasoning/peft/src/peft/tuners/dora.py``) and peft 0.21.2
(``peft/tuners/lora/dora.py``, ``DoraLinearLayer``), which we follow for the forward form.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import PETL_METHODS
from .lora import LoRA, LoRALinear


class DoRALinear(LoRALinear):
    """LoRA's update ``s B A`` plus a learned magnitude per adapted output row.

    The adapted rows of ``W' = m * (W + s B A) / ||W + s B A||`` (the norm of each output
    row, over the inputs: peft's ``weight_norm``) replace the host's; the other rows of a fused
    qkv stay as they are. ``m`` starts at ``||W||`` of the host rows (so, with ``B = 0``, the
    output is unchanged). As in the paper (Sec. 4.3) and peft, the norm is detached in the
    forward pass, which saves the backward through it.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float,
                 parts: int = 1, slices: Sequence[int] = (0, )) -> None:
        super().__init__(base, rank, alpha, dropout, parts, slices)
        rows = torch.cat([torch.arange(i * self.part_size, (i + 1) * self.part_size)
                          for i in self.slices])
        self.register_buffer('rows', rows, persistent=False)
        self.magnitude = nn.Parameter(torch.empty(len(rows)))
        self._saved: Optional[torch.Tensor] = None
        self.init_magnitude(base)

    @torch.no_grad()
    def init_magnitude(self, base: nn.Linear) -> None:
        """``m = ||W + s B A||`` per adapted row: the decomposition of the current weight."""
        self.magnitude.copy_(self.row_norm(base.weight)[self.rows])

    def row_norm(self, weight: torch.Tensor) -> torch.Tensor:
        return (weight + self.delta_weight().to(weight.dtype)).norm(dim=1)

    def factor(self, weight: torch.Tensor) -> torch.Tensor:
        """``m / ||W + s B A||`` on the adapted rows, 1 on the others (shape ``(out, )``)."""
        norm = self.row_norm(weight).detach()[self.rows]
        scale = self.magnitude.to(norm.dtype) / norm
        return norm.new_ones(weight.shape[0]).index_copy(0, self.rows, scale)

    def hook(self, module: nn.Linear, args, output: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return output
        x = args[0]
        factor = self.factor(module.weight).to(output.dtype)
        if self.dropout.p > 0 and self.training:  # W x on the dropped input too (peft)
            x = self.dropout(x)
            base = F.linear(x, module.weight)
        else:
            base = output if module.bias is None else output - module.bias
        update = F.linear(F.linear(x, self.lora_A), self.up()) * self.scale
        # b + f (W x + s B A x), written as peft's (f - 1) W x + f s B A x added to the output
        return output + (factor - 1) * base + factor * update

    @torch.no_grad()
    def merge(self, base: nn.Linear, sign: float = 1.) -> None:
        self._saved = base.weight.clone()  # unmerge restores it exactly (no division)
        factor = self.factor(base.weight).to(base.weight.dtype)
        weight = base.weight + self.delta_weight().to(base.weight.dtype)
        base.weight.copy_(factor[:, None] * weight)

    @torch.no_grad()
    def unmerge(self, base: nn.Linear) -> None:
        base.weight.copy_(self._saved)
        self._saved = None


@PETL_METHODS.register_module()
class DoRA(LoRA):
    """DoRA: weight-decomposed LoRA (a magnitude vector and a LoRA direction); mergeable.

    Every adapted host row becomes ``m * (W + s B A) / ||W + s B A||`` (:class:`DoRALinear`),
    with LoRA's targets, ranks and per-family defaults (``LoRA``'s docstring). Parameters per
    update: ``r * (in + out)`` plus ``out`` magnitudes. Zero-init (``B = 0``, ``m = ||W||``);
    :meth:`init_weights` re-reads ``m`` from the loaded host weights.

    Counts (head excluded): ViT-B/16 image defaults (q and v, rank 8)
    ``12 * (4*768*8 + 2*768) = 313,344``. DoRA published no ViT-B VTAB-1k count (its image
    results are VL-BART), so there is no figure to reproduce.

    Sources: NVlabs/DoRA@7e2f10a (``commonsense_reasoning/peft/src/peft/tuners/dora.py``);
    peft 0.21.2 ``tuners/lora/dora.py`` (the forward form, the detached norm).

    Args:
        rank: Rank r of each update.
        alpha: Scale numerator: the update is multiplied by ``alpha / rank``.
        dropout: Dropout on the update's input.
        targets: Abstract sites to adapt (as LoRA's).

    Examples:
        >>> petl = dict(type='DoRA', rank=8, targets=['qkv.q', 'qkv.v'])
    """

    def init_weights(self) -> None:
        super().init_weights()  # LoRA's reset (B = 0), then m from the loaded weights
        for layer, host in self._folds:
            layer.init_magnitude(host)

    def _layer(self, base: nn.Linear, site: str) -> DoRALinear:
        slices = self.slices[site]
        if slices is None:
            return DoRALinear(base, self.rank, self.alpha, self.dropout)
        return DoRALinear(base, self.rank, self.alpha, self.dropout, 3, sorted(slices))
