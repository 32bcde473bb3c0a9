"""AdaptFormer (Chen et al., NeurIPS 2022): a scaled bottleneck parallel to the MLP."""
from typing import Optional

import torch
import torch.nn as nn

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod
from .layers import Bottleneck


class AdaptFormerAdapter(Bottleneck):
    """Reads the residual stream entering ``norm2``; adds its branch to the block output.

    The block computes ``x' = x + MLP(norm2(x))``; with the adapter it returns
    ``x + MLP(norm2(x)) + s * up(act(down(x)))``: the branch bypasses the MLP's drop-path,
    as in the AdaptFormer code.
    """
    pending: Optional[torch.Tensor] = None

    def capture(self, module: nn.Module, args) -> None:
        self.pending = self.branch(args[0])

    def add(self, module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        if self.pending is None:
            raise RuntimeError('AdaptFormer: the block ran without calling norm2, so the '
                               'adapter input was never seen. Is the backbone profile right?')
        out, self.pending = output + self.pending, None
        return out


@PETL_METHODS.register_module()
class AdaptFormer(BasePETLMethod):
    """Parallel adapter: ``x + MLP(LN2(x)) + s * up(act(down(LN_a(x))))`` in every block.

    Parameters per block: ``2*C*m + m + C`` (+ ``2C`` with ``layer_norm=True``).

    Defaults by task family (published counts, head excluded):

    * image: m = 8, ReLU, dropout 0.1, s = 1, no LayerNorm: ViT-B/16 156,768 (published
      0.16M). The V-PETL code adds a trainable LayerNorm (``layer_norm=True``), which makes
      175,200; the published figure matches the count without it.
    * video: m = 64, ReLU, s = 0.1, no dropout: ViT-B ``12*(2*768*64+64+768)`` = 1,189,632
      (1.19M); Video Swin-B 1.55M (published 1.56M).
    * dense (Mona repo): m = 64, GELU, dropout 0.1, s = 0.1, one per block: 1,553,664 on
      Swin-B and 2,329,728 on Swin-L, which is what the Mona training log prints for Swin-L.
      The benchmark table's 3.11M / 4.66M are the Adapter's two-per-block figures; they
      contradict this definition and the log, so we do not reproduce them.

    Input: ``'residual'`` (default) reads the residual stream entering ``norm2`` and adds the
    branch after the MLP's drop-path, as the AdaptFormer ViT code; ``'mlp'`` reads the MLP
    input (already normalised) and adds the branch to the MLP output, as the V-PETL Video Swin
    code (its default on ``mmaction.SwinTransformer3D``). Both have the same parameters.

    Args:
        bottleneck: Hidden width m.
        scale: Fixed scale s of the branch.
        act: Activation name.
        dropout: Dropout after the activation.
        layer_norm: Add a trainable LayerNorm on the adapter input.
        input: ``'residual'`` or ``'mlp'`` (see above).

    Examples:
        >>> petl = dict(type='AdaptFormer', bottleneck=64, scale=0.1)
    """
    DEFAULTS = dict(bottleneck=8, scale=1., act='relu', dropout=0.1, layer_norm=False,
                    input='residual')
    FAMILY_DEFAULTS = dict(
        video=dict(bottleneck=64, scale=0.1, dropout=0.),
        dense=dict(bottleneck=64, scale=0.1, act='gelu', dropout=0.1))
    PROFILE_DEFAULTS = {'mmaction.SwinTransformer3D': dict(input='mlp'),
                        'mmpretrain.ConvNeXt': dict(input='mlp')}  # channels-last MLP
    SITES = ('norm2', 'mlp')

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        if self.input not in ('residual', 'mlp'):
            raise ValueError(f"{self.name} input={self.input!r}: use 'residual' (the stream "
                             "entering norm2) or 'mlp' (the MLP input).")

    def inject(self, anatomy: Anatomy) -> None:
        for block in anatomy.blocks:
            adapter = AdaptFormerAdapter(block.dim, self.bottleneck, self.act, self.dropout,
                                       self.scale, self.layer_norm, residual=False)
            self.attach(block, 'mlp', adapter)
            if self.input == 'mlp':
                # the MLP's own input feeds the branch, added to the MLP output
                self.hook(anatomy.site(block, 'mlp'), adapter.parallel_hook)
            else:
                self.hook(anatomy.site(block, 'norm2'), adapter.capture, pre=True)
                self.hook(block.module, adapter.add)
