"""LoRA (Hu et al., 2022): low-rank updates of frozen linear layers, mergeable."""
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .adapter import InitOption

_QKV = ('q', 'k', 'v')
_LINEAR_SITES = ('qkv', 'proj', 'fc1', 'fc2')


class LoRALinear(nn.Module):
    """The update ``scale * B_i A_i x`` of one host ``nn.Linear``, on chosen output slices.

    With ``parts=3`` the host output is q|k|v (a fused qkv) and ``slices`` picks which of them
    get an update, each with its own ``A_i`` (r x in) and ``B_i`` (out/3 x r). With ``parts=1``
    the whole output gets one update. The host layer keeps its parameters and their names; the
    update is added by a forward hook, or folded into the host weight by :meth:`merge`.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float,
                 parts: int = 1, slices: Sequence[int] = (0,)) -> None:
        super().__init__()
        if base.out_features % parts:
            raise ValueError(f'out_features={base.out_features} is not divisible into {parts}.')
        self.parts, self.slices = parts, tuple(slices)
        self.part_size = base.out_features // parts
        self.scale = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(len(self.slices) * rank, base.in_features))
        self.lora_B = nn.Parameter(torch.empty(len(self.slices), self.part_size, rank))
        self.dropout = nn.Dropout(dropout)
        self.rank = rank
        self.merged = False
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # As in the LoRA paper and peft: A ~ kaiming-uniform, B = 0, so the update starts at 0.
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    def up(self) -> torch.Tensor:
        """All ``B_i`` as one ``(out, n * r)`` matrix: ``B_i`` in the rows of its output slice
        and the columns of its ``A_i``, zeros elsewhere, so ``up @ A`` is the weight update."""
        n, r = len(self.slices), self.rank
        if self.parts == 1:
            return self.lora_B[0]
        # Built per call (out * n * r numbers, cheap) so that autograd reaches lora_B.
        up = self.lora_B.new_zeros(self.parts, self.part_size, n, r)
        up[list(self.slices), :, list(range(n)), :] = self.lora_B
        return up.view(self.parts * self.part_size, n * r)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x) if self.dropout.p > 0 else x
        return F.linear(F.linear(x, self.lora_A), self.up()) * self.scale

    def delta_weight(self) -> torch.Tensor:
        return self.up() @ self.lora_A * self.scale

    def hook(self, module: nn.Linear, args, output: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return output
        x = self.dropout(args[0]) if self.dropout.p > 0 else args[0]
        h = F.linear(x, self.lora_A)
        # One fused kernel, output + scale * h @ up^T: no full-width temporary for the update
        # and no separate add over the (tokens x out) output (the host output is not saved for
        # backward, so adding to it costs autograd nothing).
        return torch.addmm(output.reshape(-1, output.shape[-1]), h.reshape(-1, h.shape[-1]),
                           self.up().t(), alpha=self.scale).view(output.shape)

    @torch.no_grad()
    def merge(self, base: nn.Linear, sign: float = 1.) -> None:
        base.weight.add_(self.delta_weight().to(base.weight.dtype), alpha=sign)

    def unmerge(self, base: nn.Linear) -> None:
        self.merge(base, -1.)


@PETL_METHODS.register_module()
class LoRA(InitOption):
    """Low-rank adaptation of the attention and/or MLP linear layers.

    ``targets`` names abstract sites: ``'qkv.q'``, ``'qkv.k'``, ``'qkv.v'`` (one update per
    projection inside a fused qkv), ``'qkv'`` (one update of the fused layer), ``'proj'``,
    ``'fc1'``, ``'fc2'``. Parameters: ``r * (in + out)`` per update.

    Defaults by task family (published counts, head excluded):

    * image: q and v, rank 8, alpha 8 (scale 1, as V-PETL): ViT-B/16 ``12*4*768*8 = 294,912``
      (0.29M).
    * dense: q and v, rank 64, alpha 1 (loralib's default, scale 1/64, as the Mona repo):
      ``256 * sum(C over blocks)`` = 3,080,192 on Swin-B (published 3.03M, +1.7%).
    * video: q and v, rank 16, alpha 16: 770,048 on Video Swin-B (published 0.75M).

    Init (``init``): ``'zero'`` (default, LoRA's and loralib's: kaiming-uniform A, zero B, so
    the update starts at zero) or ``'trunc_normal'``: A and B trunc-normal(0.02), what V-PETL's
    timm ``init_weights`` leaves on its ``linear_a_*`` / ``linear_b_*`` layers
    (synbol/Parameter-Efficient-Transfer-Learning-Benchmark@c188fad,
    ``ImageClassification/models/vision_transformer_lora.py``); the image benchmark configs use
    it. Such an instance's ``ZERO_INIT`` is False. (The Mona repo's dense LoRA, loralib's
    ``MergedLinear``, keeps A / B out of its Swin init: zero B, our default.)

    Args:
        rank: Rank r of each update.
        alpha: Scale numerator: the update is multiplied by ``alpha / rank``.
        dropout: Dropout on the update's input.
        targets: Abstract sites to adapt (see above).
        init: ``'zero'`` or ``'trunc_normal'`` (see above).

    Examples:
        >>> petl = dict(type='LoRA', rank=8, alpha=8, targets=['qkv.q', 'qkv.v'])
        >>> petl = dict(type='LoRA', init='trunc_normal')  # V-PETL's effective init
    """
    DEFAULTS = dict(rank=8, alpha=8., dropout=0., targets=('qkv.q', 'qkv.v'), init='zero')
    FAMILY_DEFAULTS = dict(dense=dict(rank=64, alpha=1.), video=dict(rank=16, alpha=16.))
    PROFILE_DEFAULTS = {'mmpretrain.ConvNeXt': dict(targets=('fc1', 'fc2'))}  # no attention
    MERGEABLE = True

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        sites = self._slices(self.targets)
        anatomy.require_sites(sites, method=self.name)
        if self.rank < 1:
            raise ValueError(f'LoRA rank must be >= 1, got {self.rank}.')
        self.require_linears(anatomy, sites, bias=False)

    def plan(self, anatomy: Anatomy) -> None:
        super().plan(anatomy)
        self.slices = self._slices(self.targets)

    @staticmethod
    def _slices(targets: Sequence[str]) -> Dict[str, Optional[List[int]]]:
        """site -> slice indices (None: the whole layer)."""
        plan: Dict[str, Optional[List[int]]] = {}
        for target in ([targets] if isinstance(targets, str) else targets):
            site, _, part = target.partition('.')
            if site not in _LINEAR_SITES or (part and (site != 'qkv' or part not in _QKV)):
                raise ValueError(f'Unknown LoRA target {target!r}. Use any of {_LINEAR_SITES} '
                                 "or 'qkv.q' / 'qkv.k' / 'qkv.v'.")
            if site in plan and (plan[site] is None or not part):
                raise ValueError(f'Conflicting LoRA targets for {site!r}: the whole layer and '
                                 'a slice of it (or the same target twice).')
            if part:
                plan.setdefault(site, []).append(_QKV.index(part))
            else:
                plan[site] = None
        return plan

    def inject(self, anatomy: Anatomy) -> None:
        self.hook_linears(anatomy, self.slices, self._layer)
        self.apply_init()  # built zero-B: the reference's init where asked

    @torch.no_grad()
    def reference_init(self) -> None:
        """V-PETL's: A and B trunc-normal(0.02) (they are ``nn.Linear`` weights there)."""
        for injection in self.injected:
            for param in (injection.module.lora_A, injection.module.lora_B):
                nn.init.trunc_normal_(param, std=.02)

    def _layer(self, base: nn.Linear, site: str) -> LoRALinear:
        slices = self.slices[site]
        if slices is None:  # the whole layer
            return LoRALinear(base, self.rank, self.alpha, self.dropout)
        return LoRALinear(base, self.rank, self.alpha, self.dropout, 3, sorted(slices))
