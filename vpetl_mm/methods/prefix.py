"""Prefix tuning (Li & Liang, 2021) for vision transformers: learned key/value prefixes.

Every attention layer attends to ``L`` extra keys and values besides its tokens. During training
the prefixes are re-parameterised, ``P = MLP(E)`` with ``E`` in ``R^{L x C}`` and
``MLP = Linear(C, mid) -> tanh -> Linear(mid, 2C)`` (the paper found direct optimisation of P
unstable); :meth:`PrefixTuning.merge` folds the MLP away (P computed once), so inference costs
only the extra keys. The prefixes enter through a host patch of the attention forward named by
the profile (``kv_attention``), which prepends them to the keys and values of every sequence
or window; Swin's relative-position bias and shift mask get zero columns for them.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn

from ..models.anatomy import Anatomy
from ..models.host_patches import apply_host_patch
from ..models.profiles import PROFILES
from ..registry import PETL_METHODS
from .base import BasePETLMethod


class PrefixKV(nn.Module):
    """The ``L`` key/value prefixes of one attention layer, ``(heads, L, head_dim)`` each.

    Args:
        dim: Token width C.
        heads: Attention heads of the layer.
        length: Prefix length L.
        mid: Hidden width of the re-parameterisation MLP (0: optimise P directly).
    """

    def __init__(self, dim: int, heads: int, length: int, mid: int) -> None:
        super().__init__()
        self.heads, self.length, self.dim = heads, length, dim
        if mid > 0:
            self.embedding = nn.Parameter(torch.empty(length, dim))
            self.reparam: Optional[nn.Module] = nn.Sequential(
                nn.Linear(dim, mid), nn.Tanh(), nn.Linear(mid, 2 * dim))
        else:
            self.embedding = nn.Parameter(torch.empty(length, 2 * dim))
            self.reparam = None
        self.register_buffer('folded', None, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Embedding's N(0, 1) for E, as the V-PETL video code (wte); Linear defaults.
        nn.init.normal_(self.embedding)
        if self.reparam is not None:
            for layer in (self.reparam[0], self.reparam[2]):
                layer.reset_parameters()
        self.folded = None

    def prefixes(self) -> torch.Tensor:
        """``P`` of shape ``(L, 2C)``: keys then values."""
        if self.folded is not None:
            return self.folded
        return self.reparam(self.embedding) if self.reparam is not None else self.embedding

    def key_values(self) -> Tuple[torch.Tensor, torch.Tensor]:
        kv = self.prefixes().view(self.length, 2, self.heads, self.dim // self.heads)
        kv = kv.permute(1, 2, 0, 3)  # (2, heads, L, head_dim)
        return kv[0].unsqueeze(0), kv[1].unsqueeze(0)

    @torch.no_grad()
    def fold(self) -> None:
        self.folded = self.prefixes().detach().clone()

    def unfold(self) -> None:
        self.folded = None


@PETL_METHODS.register_module()
class PrefixTuning(BasePETLMethod):
    """Key/value prefixes in every attention layer, re-parameterised by an MLP while training.

    Parameters per block: ``L*C + C*mid + mid + 2*C*mid + 2*C`` (training);
    ``2*L*C`` once folded (:meth:`merge`, the inference form).

    Defaults: L = 20 and mid = 128, the V-PETL video code's ``att_preseqlen`` and the
    ``att_mid_dim`` of its published recipe, on every family.

    * video: ``sum over blocks C * (L + 3*mid + 2) + 24*mid`` = 4,888,064 trainable on Video
      Swin-B. The published 6.37M cannot be reproduced: the released ``prefix_qk`` code sizes
      its MLP as ``heads * 196`` wide and fails with a shape error when run, and no (L, mid)
      of this definition gives 6.37M with round values (see docs/video.md).
    * image: the published ViT-B/16 0.36M (FGVC table) counts the prefixes that remain after
      folding, ``2*L*C`` per layer (:meth:`num_folded_params`): 368,640 at L = 20. Training
      also holds the re-parameterisation MLP: 3,743,232 trainable parameters on ViT-B/16.

    Args:
        length: Prefix length L per layer.
        mid: Hidden width of the re-parameterisation MLP (0 trains the prefixes directly).

    Examples:
        >>> petl = dict(type='PrefixTuning', length=20, mid=128)
    """
    DEFAULTS = dict(length=20, mid=128)
    ZERO_INIT = False
    MERGEABLE = True  # merge() folds the MLP into fixed prefixes (not into host weights)
    FOLDS_INTO_HOST = False  # the folded prefixes still need the patched attention
    SITES = ('attn', )

    @classmethod
    def supports(cls, profile: str) -> bool:
        return bool(PROFILES[profile].kv_attention) if profile in PROFILES else False

    def validate(self, anatomy: Anatomy) -> None:
        if not anatomy.profile.kv_attention:
            raise ValueError(f'{self.name} is not supported on {anatomy.profile.name!r} '
                             'backbones: their profile names no attention patch that accepts '
                             'extra keys (kv_attention); profiles with one: '
                             f'{sorted(n for n, p in PROFILES.items() if p.kv_attention)}.')
        super().validate(anatomy)
        if self.length < 1 or self.mid < 0:
            raise ValueError(f'{self.name} needs length >= 1 and mid >= 0, got '
                             f'length={self.length}, mid={self.mid}.')
        for block in anatomy.blocks:
            self.attention_heads(anatomy, block)

    def plan(self, anatomy: Anatomy) -> None:
        super().plan(anatomy)
        self.block_heads = [self.attention_heads(anatomy, block) for block in anatomy.blocks]

    def inject(self, anatomy: Anatomy) -> None:
        self._attns = []
        for block, heads in zip(anatomy.blocks, self.block_heads):
            attn = anatomy.site(block, 'attn')
            prefix = PrefixKV(block.dim, heads, self.length, self.mid)
            self.attach(block, 'attn', prefix)
            apply_host_patch(attn, anatomy.profile.kv_attention)
            # A plain list, not a child module: the prefix is registered in its block already.
            attn.__dict__.setdefault('_petl_kv', []).append(prefix)
            self._attns.append(attn)

    def remove_hooks(self) -> None:
        super().remove_hooks()
        for attn in self._attns:
            attn.__dict__.pop('_petl_kv', None)

    def num_folded_params(self) -> int:
        """Size of the folded prefixes, ``2*L*C`` per layer: what an exported model keeps."""
        return sum(2 * inj.module.length * inj.module.dim for inj in self.injected)

    def merge(self) -> None:
        for injection in self.injected:
            injection.module.fold()

    def unmerge(self) -> None:
        for injection in self.injected:
            injection.module.unfold()
