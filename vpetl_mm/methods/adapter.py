"""Adapter (Houlsby et al., 2019): sequential bottleneck adapters on the sublayer outputs."""
from typing import Iterable

import torch.nn as nn

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod
from .layers import Bottleneck

# placement -> the abstract site whose output the adapter transforms (before the residual add)
_PLACEMENT_SITE = dict(attn='proj', mlp='fc2')


#: ``init`` options of the adapter-style methods (Adapter, AdaptFormer, LoRA)
INITS = ('zero', 'trunc_normal')


def check_init(init: str, method: str) -> None:
    """``ValueError`` naming the options if ``init`` is not one of :data:`INITS`."""
    if init not in INITS:
        raise ValueError(f"{method} init={init!r}: use 'zero' (the method's own init, identity "
                         "at step 0) or 'trunc_normal' (the reference benchmark's effective init).")


def trunc_normal_linears(modules: Iterable[nn.Module]) -> None:
    """Every ``nn.Linear`` in ``modules``: weight ~ trunc-normal(std 0.02), bias 0.

    The init that the reference code's generic pass leaves on the new layers: V-PETL's timm
    ``VisionTransformer.__init__`` ends with ``init_weights`` -> ``init_weights_vit_timm`` on
    every ``nn.Linear`` (synbol/Parameter-Efficient-Transfer-Learning-Benchmark@c188fad,
    ``ImageClassification/models/vision_transformer_{adapter,adaptformer}.py``), and the Mona
    repo's Swin ``_init_weights`` does the same to its Adapter / AdaptFormer baselines
    (Leiyi-Hu/mona@f25a37f, ``Swin-Transformer-Object-Detection/mmdet/models/backbones/
    swin_transformer_{adapter,adaptformer}.py``: ``init_weights`` applies it, then loads the
    checkpoint with ``strict=False``).
    LayerNorms keep (1, 0).

    Examples:
        >>> trunc_normal_linears([nn.Linear(4, 2)])
    """
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=.02)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)


class InitOption(BasePETLMethod):
    """Base of the methods with the ``init`` option (Adapter, AdaptFormer, LoRA).

    ``init='zero'`` (the methods' own: the update starts at zero) or ``'trunc_normal'`` (the
    reference runs' effective init, :meth:`reference_init`). A subclass calls
    :meth:`apply_init` at the end of ``inject`` (modules are built with their own init) and
    declares ``init`` in its ``DEFAULTS``; an instance with ``'trunc_normal'`` is no identity
    at step 0, so its ``ZERO_INIT`` is False (the contract reads it).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # the class's own fact still holds (BAPAT's PATT is never zero-init)
        self.ZERO_INIT = type(self).ZERO_INIT and self.init == 'zero'

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        check_init(self.init, self.name)

    def reference_init(self) -> None:
        """Re-initialise the injected modules as the reference does (default: every
        ``nn.Linear`` trunc-normal, :func:`trunc_normal_linears`)."""
        trunc_normal_linears(i.module for i in self.injected)

    def apply_init(self) -> None:
        if self.init == 'trunc_normal':
            self.reference_init()

    def init_weights(self) -> None:
        super().init_weights()
        self.apply_init()


def placement_sites(placements, method: str):
    """Sites of sequential-adapter placements; ``ValueError`` naming the fix if invalid."""
    bad = [p for p in placements if p not in _PLACEMENT_SITE]
    if bad or not placements:
        raise ValueError(f'{method} placements {list(placements)} are invalid; use a '
                         f'non-empty subset of {sorted(_PLACEMENT_SITE)}.')
    return [_PLACEMENT_SITE[p] for p in placements]


@PETL_METHODS.register_module()
class Adapter(InitOption):
    """Sequential bottleneck adapter ``h + up(act(down(h)))`` on attention and/or MLP outputs.

    ``h`` is the output of the attention projection (placement ``'attn'``) or of the MLP
    (``'mlp'``), before the residual add. Adapters act per token, so on Swin they may run on
    windowed tokens. Parameters per adapter: ``2*C*m + m + C``.

    Defaults by task family (published counts, head excluded):

    * image (V-PETL): after the MLP only, m = 8, GELU, no dropout: ViT-B/16
      ``12*(2*768*8 + 8 + 768) = 156,768`` (0.16M).
    * dense (Mona repo): after attention and after the MLP, m = 64, GELU, dropout 0.1:
      ``2*(129*C + 64)`` per block = 3,107,328 on Swin-B (3.11M), 4,659,456 on Swin-L (4.66M).

    Init (``init``): ``'zero'`` (default): zero up-projection, the adapter starts as the
    identity (the V-PETL code's own ``_reset_parameters`` intent, all-zero). ``'trunc_normal'``:
    what the reference runs really start from, since V-PETL's timm ``init_weights`` and the
    Mona repo's Swin init overwrite both projections with trunc-normal(0.02), zero biases
    (:func:`trunc_normal_linears`); the image and dense benchmark configs use it. Not an
    identity at step 0 (such an instance's ``ZERO_INIT`` is False).

    Args:
        bottleneck: Hidden width m.
        placements: Any of ``'attn'``, ``'mlp'``.
        act: Activation name.
        dropout: Dropout after the activation.
        init: ``'zero'`` or ``'trunc_normal'`` (see above).

    Examples:
        >>> petl = dict(type='Adapter', bottleneck=64, placements=['attn', 'mlp'])
        >>> petl = dict(type='Adapter', init='trunc_normal')  # V-PETL's effective init
    """
    DEFAULTS = dict(bottleneck=8, placements=('mlp', ), act='gelu', dropout=0., init='zero')
    FAMILY_DEFAULTS = dict(dense=dict(bottleneck=64, placements=('attn', 'mlp'), dropout=0.1))

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        anatomy.require_sites(placement_sites(self.placements, self.name), method=self.name)

    def inject(self, anatomy: Anatomy) -> None:
        for block in anatomy.blocks:
            for placement in self.placements:
                adapter = self.attach(block, placement, Bottleneck(
                    block.dim, self.bottleneck, self.act, self.dropout))
                self.hook(anatomy.site(block, _PLACEMENT_SITE[placement]), adapter.sequential_hook)
        self.apply_init()  # built zero-up: the reference's init where asked
