"""U-Tuning (Jiang et al., 2023): frozen operations, each with a parallel "U-tuner".

The paper ("Rethinking Efficient Tuning Methods from a Unified Perspective") writes a tuned
operation as ``x' = OP(x) + U(x)``: the frozen operation untouched, a small tuner beside it.
Its instance for ViTs, implemented here, puts

* beside the attention (MHA): a *parallel prefix*: the host's own (frozen) queries attend to
  ``L`` learned key / value pairs only, ``U_attn(x) = W_o softmax(q P_k^T / sqrt(d)) P_v`` per
  head, with ``q = x W_q + b_q`` the query slice of the host's qkv projection and ``W_o`` its
  output projection (no bias). Unlike prefix tuning it does not compete with the tokens'
  own keys inside one softmax, so the frozen attention is exactly kept;
* beside the FFN: a parallel adapter ``U_ffn(x) = s * up(relu(down(x)))`` on the FFN input.

Both tuners start at zero (``P_v = 0``, zero up-projection), so the backbone output is
unchanged at step 0. The prefix attention is per token (its keys belong to no window), so the
same tuner runs on sequence, windowed (Swin) and 3-D (Video Swin) layouts.

Choices where the paper is silent (see docs/image.md): ``P_k ~ N(0, 0.02)``; the published
0.36M (ViT-B/16, V-PETL FGVC table) is met by length 11 and the benchmark's adapter
bottleneck 8: ``12 * (2*L*C + 2*C*m + m + C)`` = 359,520.
"""
import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod
from .layers import Bottleneck


class ParallelPrefix(nn.Module):
    """Attention of the host's queries over ``L`` learned key / value pairs.

    Args:
        dim: Token width C.
        heads: Attention heads of the host layer.
        length: Number of key / value pairs L.
    """

    def __init__(self, dim: int, heads: int, length: int) -> None:
        super().__init__()
        self.heads = heads
        self.keys = nn.Parameter(torch.empty(length, dim))
        self.values = nn.Parameter(torch.empty(length, dim))
        self.qkv: Optional[nn.Linear] = None  # host layers, set by bind() (not children)
        self.proj: Optional[nn.Linear] = None
        self.attn: Optional[nn.Module] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.keys, std=0.02)
        nn.init.zeros_(self.values)  # zero output at init

    def bind(self, qkv: nn.Linear, proj: nn.Linear, attn: nn.Module) -> None:
        # plain attributes, so the host layers are not registered twice (state dict, .cuda())
        self.__dict__.update(qkv=qkv, proj=proj, attn=attn)

    def q_bias(self) -> Optional[torch.Tensor]:
        C = self.keys.shape[1]
        if self.qkv.bias is not None:
            return self.qkv.bias[:C]
        # VideoMAE / BEiT keep the q bias apart from qkv (which then has none)
        return getattr(self.attn, 'q_bias', None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C = self.keys.shape[1]
        q = F.linear(x, self.qkv.weight[:C], self.q_bias())
        shape = q.shape[:-1]
        q = q.reshape(-1, self.heads, C // self.heads).transpose(0, 1)  # (heads, tokens, d)
        k = self.keys.to(q.dtype).view(-1, self.heads, C // self.heads).transpose(0, 1)
        v = self.values.to(q.dtype).view(-1, self.heads, C // self.heads).transpose(0, 1)
        attn = (q @ k.transpose(-2, -1) / math.sqrt(C // self.heads)).softmax(dim=-1)
        out = (attn @ v).transpose(0, 1).reshape(*shape, C)
        return F.linear(out, self.proj.weight)

    def add(self, module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        """Forward hook on the attention: ``MHA(x) + U_attn(x)``."""
        return output + self(args[0])


@PETL_METHODS.register_module()
class UTuning(BasePETLMethod):
    """A parallel prefix beside every attention and a parallel adapter beside every FFN.

    Parameters per block: ``2*L*C`` (prefix keys and values) ``+ 2*C*m + m + C`` (adapter);
    ViT-B/16 at the defaults: 359,520 (published 0.36M).

    Args:
        length: Key / value pairs L of each parallel prefix (0: no attention tuner).
        bottleneck: Hidden width m of each parallel adapter (0: no FFN tuner).
        scale: Fixed scale s of the adapter branch.
        dropout: Dropout after the adapter's activation.

    Examples:
        >>> petl = dict(type='UTuning', length=11, bottleneck=8)
    """
    DEFAULTS = dict(length=11, bottleneck=8, scale=1., dropout=0.)
    SITES = ('attn', 'qkv', 'proj', 'mlp')

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        if self.length < 0 or self.bottleneck < 0 or self.length + self.bottleneck == 0:
            raise ValueError(f'{self.name} needs length >= 0 and bottleneck >= 0, not both 0; '
                             f'got length={self.length}, bottleneck={self.bottleneck}.')
        if self.length:
            for block in anatomy.blocks:
                self.attention_heads(anatomy, block)

    def inject(self, anatomy: Anatomy) -> None:
        for block in anatomy.blocks:
            if self.length:
                attn = anatomy.site(block, 'attn')
                prefix = ParallelPrefix(block.dim, self.attention_heads(anatomy, block),
                                        self.length)
                prefix.bind(anatomy.site(block, 'qkv'), anatomy.site(block, 'proj'), attn)
                self.hook(attn, self.attach(block, 'attn', prefix).add)
            if self.bottleneck:
                adapter = Bottleneck(block.dim, self.bottleneck, 'relu', self.dropout,
                                     self.scale, residual=False)
                self.hook(anatomy.site(block, 'mlp'),
                          self.attach(block, 'mlp', adapter).parallel_hook)
