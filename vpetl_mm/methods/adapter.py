"""Adapter (Houlsby et al., 2019): sequential bottleneck adapters on the sublayer outputs."""
from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod
from .layers import Bottleneck

# placement -> the abstract site whose output the adapter transforms (before the residual add)
_PLACEMENT_SITE = dict(attn='proj', mlp='fc2')


def placement_sites(placements, method: str):
    """Sites of sequential-adapter placements; ``ValueError`` naming the fix if invalid."""
    bad = [p for p in placements if p not in _PLACEMENT_SITE]
    if bad or not placements:
        raise ValueError(f'{method} placements {list(placements)} are invalid; use a '
                         f'non-empty subset of {sorted(_PLACEMENT_SITE)}.')
    return [_PLACEMENT_SITE[p] for p in placements]


@PETL_METHODS.register_module()
class Adapter(BasePETLMethod):
    """Sequential bottleneck adapter ``h + up(act(down(h)))`` on attention and/or MLP outputs.

    ``h`` is the output of the attention projection (placement ``'attn'``) or of the MLP
    (``'mlp'``), before the residual add. Adapters act per token, so on Swin they may run on
    windowed tokens. Parameters per adapter: ``2*C*m + m + C``.

    Defaults by task family (published counts, head excluded):

    * image (V-PETL): after the MLP only, m = 8, GELU, no dropout: ViT-B/16
      ``12*(2*768*8 + 8 + 768) = 156,768`` (0.16M).
    * dense (Mona repo): after attention and after the MLP, m = 64, GELU, dropout 0.1:
      ``2*(129*C + 64)`` per block = 3,107,328 on Swin-B (3.11M), 4,659,456 on Swin-L (4.66M).

    Init: zero up-projection (the adapter starts as the identity); the V-PETL code's intended
    all-zero init is overwritten there by a generic init, which we do not reproduce.

    Args:
        bottleneck: Hidden width m.
        placements: Any of ``'attn'``, ``'mlp'``.
        act: Activation name.
        dropout: Dropout after the activation.

    Examples:
        >>> petl = dict(type='Adapter', bottleneck=64, placements=['attn', 'mlp'])
    """
    DEFAULTS = dict(bottleneck=8, placements=('mlp', ), act='gelu', dropout=0.)
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
