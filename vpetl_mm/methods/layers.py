"""Small layers shared by several methods (timm ``layers/`` style)."""
import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

_ACTS = dict(gelu=nn.GELU, relu=nn.ReLU, identity=nn.Identity, silu=nn.SiLU)


def make_act(name: str) -> nn.Module:
    if name not in _ACTS:
        raise ValueError(f'Unknown activation {name!r}; choose one of {sorted(_ACTS)}.')
    return _ACTS[name]()


class Bottleneck(nn.Module):
    """``scale * up(dropout(act(down(ln(x)))))``, with an optional identity added.

    Zero-initialised up-projection (weight and bias), so a fresh bottleneck adds nothing: the
    LoRA-style init of AdaptFormer, and the near-identity init Houlsby adapters intend.

    Args:
        dim: Token width C.
        bottleneck: Hidden width m.
        act: Activation name (``'gelu'``, ``'relu'``, ...).
        dropout: Dropout after the activation.
        scale: Fixed multiplier of the branch.
        layer_norm: Put a trainable LayerNorm on the input (AdaptFormer's ``"in"`` option).
        residual: Return ``x + branch`` (sequential adapter) instead of ``branch`` (parallel).
    """

    def __init__(self, dim: int, bottleneck: int, act: str = 'gelu', dropout: float = 0.,
                 scale: float = 1., layer_norm: bool = False, residual: bool = True) -> None:
        super().__init__()
        self.ln: Optional[nn.Module] = nn.LayerNorm(dim) if layer_norm else None
        self.down = nn.Linear(dim, bottleneck)
        self.act = make_act(act)
        self.dropout = nn.Dropout(dropout)
        self.up = nn.Linear(bottleneck, dim)
        self.scale = scale
        self.residual = residual
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        if self.ln is not None:
            self.ln.reset_parameters()

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln(x) if self.ln is not None else x
        return self.up(self.dropout(self.act(self.down(h)))) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x) if self.residual else self.branch(x)

    # forward hooks on a host layer (bound methods: deep copies rebind them)
    def sequential_hook(self, module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        """The layer's output goes through the adapter (Houlsby's sequential placement)."""
        return self(output)

    def parallel_hook(self, module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        """The branch reads the layer's input and is added to its output (parallel placement)."""
        return output + self.branch(args[0])


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head softmax attention of ``q`` ``(B, N, C)`` over ``k`` / ``v`` ``(B, M, C)``.

    The heads split the channels in order (``C / heads`` each), as a fused qkv's output does;
    the result is ``(B, N, C)`` with the heads concatenated again. The side networks' blocks
    (LST, LAST, HST) compute their attention with it.

    Examples:
        >>> x = torch.randn(2, 5, 8)
        >>> attention(x, x, x, heads=2).shape
        torch.Size([2, 5, 8])
    """
    B, N, C = q.shape

    def split(t: torch.Tensor) -> torch.Tensor:  # (B, n, C) -> (B, heads, n, C / heads)
        return t.view(B, t.shape[1], heads, -1).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(q), split(k), split(v))
    return out.transpose(1, 2).reshape(B, N, C)
