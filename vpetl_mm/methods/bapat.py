"""BAPAT (Yu et al., "Towards a Unified View on Visual PETL", 2022): PATT + a bottleneck adapter.

PATT, the *parallel attention* adapter, adds offsets to the keys and values of every
attention layer, computed from the attention input by a small tanh MLP:
``k <- k + s * [W_up tanh(W_down x)]_k``, ``v <- v + s * [...]_v``. BAPAT combines it with the
AdaptFormer FFN adapter. Both are written against abstract sites: PATT is a forward hook on the
fused ``qkv`` linear layer adding ``[0 | s k' | s v']`` to its output, which is exactly the V-PETL
code's arithmetic (its q/k/v split reads the same output layout) without touching any attention
code, so it runs on every profile with a fused qkv.
"""
from typing import Sequence

import torch
import torch.nn as nn

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .adaptformer import AdaptFormer

_PARTS = dict(q=0, k=1, v=2)


class ParallelAttention(nn.Module):
    """``s * up(tanh(down(x)))`` split into offsets of the chosen q/k/v parts of a fused qkv.

    Args:
        dim: Token width C.
        mid: Hidden width of the tanh MLP.
        parts: Indices (0 = q, 1 = k, 2 = v) of the parts that get an offset, ascending.
        scale: Fixed multiplier s (``att_prefix_scale`` in the V-PETL code).
        bias: Whether the two linear layers have biases (the V-PETL code: ``qkv_bias``).
    """

    def __init__(self, dim: int, mid: int, parts: Sequence[int], scale: float,
                 bias: bool) -> None:
        super().__init__()
        self.parts = tuple(parts)
        self.scale = scale
        self.down = nn.Linear(dim, mid, bias=bias)
        self.act = nn.Tanh()
        self.up = nn.Linear(mid, len(self.parts) * dim, bias=bias)

    def reset_parameters(self) -> None:
        # The V-PETL code keeps nn.Linear's default init (not zero): PATT is not zero-init.
        self.down.reset_parameters()
        self.up.reset_parameters()

    def hook(self, module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        offsets = (self.up(self.act(self.down(args[0]))) * self.scale).chunk(len(self.parts), -1)
        chunks = list(output.chunk(3, dim=-1))
        for part, offset in zip(self.parts, offsets):
            chunks[part] = chunks[part] + offset
        return torch.cat(chunks, dim=-1)


@PETL_METHODS.register_module()
class BAPAT(AdaptFormer):
    """AdaptFormer's parallel FFN adapter plus PATT on the attention keys and values.

    Parameters per block: the AdaptFormer adapter (``2*C*m + m + C``) plus PATT
    (``C*mid + 2*C*mid``, + ``mid + 2C`` with biases), biases following the host's qkv.

    Defaults (video, V-PETL BAPAT README: ``--att_mid_dim 128 --att_prefix_scale 0.8
    --att_prefix_mode patt_kv``, adapter 64, scale 0.1):

    * Video Swin-B: ``sum over blocks (129C + 64) + (386C + 128)`` = 6,201,088
      (published 6.18M, +0.3%). The adapter reads the MLP input, as the released code.
    * VideoMAE ViT-B: the ViT code was never released. Its qkv has no bias (VideoMAE keeps
      separate q/v biases), so PATT has none, and ``att_mid=32`` gives
      ``1,189,632 + 12 * 3 * 768 * 32`` = 2,074,368 (published 2.06M, +0.7%).

    Not zero-init: PATT keeps nn.Linear's default init, as the released code.

    Args:
        att_mid: Hidden width of PATT's tanh MLP.
        att_scale: Fixed multiplier of the offsets.
        att_mode: Which parts get offsets: ``'kv'`` (PATT), ``'qv'``, ``'qk'`` or ``'qkv'``.
        att_bias: Biases in PATT: ``'auto'`` follows the host qkv layer, or True / False.
        **adapter: AdaptFormer's options (``bottleneck``, ``scale``, ``input`` ...).

    Examples:
        >>> petl = dict(type='BAPAT', att_mid=128, att_scale=0.8, bottleneck=64)
    """
    DEFAULTS = dict(AdaptFormer.DEFAULTS, att_mid=128, att_scale=0.8, att_mode='kv',
                    att_bias='auto')
    PROFILE_DEFAULTS = dict(AdaptFormer.PROFILE_DEFAULTS,
                            **{'mmaction.VisionTransformer': dict(att_mid=32)})
    ZERO_INIT = False
    SITES = AdaptFormer.SITES + ('qkv', )

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        if not self.att_mode or set(self.att_mode) - set(_PARTS) or \
                len(set(self.att_mode)) != len(self.att_mode):
            raise ValueError(f"BAPAT att_mode={self.att_mode!r}: use 'kv' (PATT), 'qv', 'qk' "
                             "or 'qkv'.")
        if self.att_bias not in ('auto', True, False):
            raise ValueError(f"BAPAT att_bias={self.att_bias!r}: use 'auto', True or False.")

    def inject(self, anatomy: Anatomy) -> None:
        super().inject(anatomy)
        parts = sorted(_PARTS[p] for p in self.att_mode)
        for block in anatomy.blocks:
            qkv = anatomy.site(block, 'qkv')
            if not isinstance(qkv, nn.Linear) or qkv.out_features != 3 * block.dim:
                raise ValueError(f'BAPAT needs a fused nn.Linear(C, 3C) at '
                                 f'{anatomy.site_path(block, "qkv")}, found {qkv}.')
            bias = qkv.bias is not None if self.att_bias == 'auto' else self.att_bias
            patt = ParallelAttention(block.dim, self.att_mid, parts, self.att_scale, bias)
            self.attach(block, 'qkv', patt)
            self.hook(qkv, patt.hook)
