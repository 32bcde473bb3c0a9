"""Adapter+ (Steitz & Roth, CVPR 2024, "Adapters Strike Back"): post-adapters, channel scaling.

Source: visinf/adapter_plus@191c4ab26fc97ea09ae390383ff79327822853ff:
``adapter_plus/vit_adapter.py`` (``Adapter``, ``Block.forward_post``) and
``conf/adapter/base_adapter.yaml`` + ``conf/adapter/adapter_plus.yaml`` (the defaults).
"""
import torch
import torch.nn as nn
from mmcv.cnn.bricks.drop import DropPath

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod
from .layers import Bottleneck


class AdapterPlusLayer(Bottleneck):
    """``x + s * drop_path(up(act(down(x))))`` with a learned scale ``s`` per channel.

    Houlsby's init as Adapter+ uses it: both projections truncated-normal with std 0.01
    (truncated at two std), zero biases, ``s = 1``. So a fresh adapter is close to, not
    exactly, the identity. Stochastic depth (``drop_path``) acts on the branch only.
    """

    def __init__(self, dim: int, bottleneck: int, act: str = 'gelu', dropout: float = 0.,
                 drop_path: float = 0.1, init_std: float = 0.01) -> None:
        self.init_std = init_std  # a float: nn.Module allows it before Module.__init__
        super().__init__(dim, bottleneck, act, dropout)
        self.scaling = nn.Parameter(torch.ones(dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def reset_parameters(self) -> None:
        std = self.init_std
        for layer in (self.down, self.up):
            nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(layer.bias)
        if hasattr(self, 'scaling'):  # Bottleneck.__init__ calls this before it exists
            nn.init.ones_(self.scaling)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop_path(self.up(self.dropout(self.act(self.down(x))))) * self.scaling

    def block_hook(self, module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        """The block's output (after the MLP's residual add) goes through the adapter."""
        if output.shape[-1] != self.scaling.numel():
            raise ValueError(f'AdapterPlus needs block outputs with channels last (width '
                             f'{self.scaling.numel()}), got shape {tuple(output.shape)}; '
                             'use Adapter (after fc2) on this backbone.')
        return self(output)


@PETL_METHODS.register_module()
class AdapterPlus(BasePETLMethod):
    """Adapter+: a post-adapter on every block's output with channel-wise scaling.

    Placement ``post`` (Adapter+'s ``Block.forward_post``): ``x = x + attn(...)``,
    ``x = x + mlp(...)``, then ``x = x + s * A(x)``, i.e. after the FFN's residual add. The
    adapter (``adapter_plus.yaml`` over ``base_adapter.yaml``): bottleneck m = 8 with biases,
    GELU, no LayerNorm, channel scaling ``s`` (init 1), Houlsby init (std 0.01), dropout 0,
    drop path 0.1 on the branch. Parameters per block: ``2*C*m + m + 2*C``.

    Counts (head excluded): ViT-B/16, m = 8: ``12 * (2*768*8 + 8 + 2*768) = 165,984``
    (0.17M; ``conf/experiment/vtab/adapter_plus_dim8.yaml``). The published best (77.6, the
    mean of the VTAB-1k group means) selects m in 1..32 per task
    (``adapter_plus_dim1-32.yaml``): set ``bottleneck`` per task for that. The repository
    states no parameter count, and the paper's table was not available to check against, so
    ``tests/test_param_counts.py`` pins this formula's count without a published figure.

    Not zero-init (Houlsby's small random init, as published): ``ZERO_INIT = False``. It reads
    each block's output with the channels last, so it runs on the token layouts ``sequence``,
    ``windowed`` and ``grid3d`` (``TOKENS``), not on CNN blocks.

    Args:
        bottleneck: Hidden width m.
        act: Activation name.
        dropout: Dropout after the activation.
        drop_path: Stochastic depth on the adapter branch.
        init_std: Std of the truncated-normal init of both projections.

    Examples:
        >>> petl = dict(type='AdapterPlus', bottleneck=8)
    """
    DEFAULTS = dict(bottleneck=8, act='gelu', dropout=0., drop_path=0.1, init_std=0.01)
    ZERO_INIT = False
    # the layouts whose block outputs are channels-last (a CNN's blocks are not)
    TOKENS = ('sequence', 'windowed', 'grid3d')

    def inject(self, anatomy: Anatomy) -> None:
        for block in anatomy.blocks:
            adapter = self.attach(block, 'block', AdapterPlusLayer(
                block.dim, self.bottleneck, self.act, self.dropout, self.drop_path,
                self.init_std))
            self.hook(block.module, adapter.block_hook)
