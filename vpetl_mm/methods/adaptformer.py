"""AdaptFormer (Chen et al., NeurIPS 2022): a scaled bottleneck parallel to the MLP."""
from typing import Optional

import torch
import torch.nn as nn

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .adapter import InitOption
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
class AdaptFormer(InitOption):
    """Parallel adapter: ``x + MLP(LN2(x)) + s * up(act(down(LN_a(x))))`` in every block.

    Parameters per block: ``2*C*m + m + C`` (+ ``2C`` with ``layer_norm=True``).

    Defaults by task family (published counts, head excluded):

    * image (V-PETL): m = 8, ReLU, dropout 0.1, s = 1 and a trainable LayerNorm on the adapter
      input (V-PETL's ``adapter_layernorm_option="in"``, its default:
      synbol/Parameter-Efficient-Transfer-Learning-Benchmark@c188fad,
      ``ImageClassification/models/vision_transformer_adaptformer.py``): ViT-B/16 175,200.
      The published 0.16M is the count without the LayerNorm (156,768, ``layer_norm=False``);
      the code that produced the accuracies trains the LayerNorm too (docs/image.md).
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

    Init (``init``): ``'zero'`` (default, AdaptFormer's own LoRA-style init: zero
    up-projection, identity at step 0) or ``'trunc_normal'``: both projections trunc-normal(0.02),
    zero biases, which is what V-PETL's timm ``init_weights`` and the Mona repo's Swin init leave
    on them (:func:`~vpetl_mm.methods.adapter.trunc_normal_linears`); the image benchmark
    configs use it. Such an instance's ``ZERO_INIT`` is False.

    Args:
        bottleneck: Hidden width m.
        scale: Fixed scale s of the branch.
        act: Activation name.
        dropout: Dropout after the activation.
        layer_norm: Add a trainable LayerNorm on the adapter input.
        input: ``'residual'`` or ``'mlp'`` (see above).
        init: ``'zero'`` or ``'trunc_normal'`` (see above).

    Examples:
        >>> petl = dict(type='AdaptFormer', bottleneck=64, scale=0.1)
    """
    DEFAULTS = dict(bottleneck=8, scale=1., act='relu', dropout=0.1, layer_norm=False,
                    input='residual', init='zero')
    FAMILY_DEFAULTS = dict(
        image=dict(layer_norm=True),
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
        self.apply_init()  # built zero-up: the reference's init where asked
