"""VPT (Jia et al., ECCV 2022): learnable prompt tokens, at the input (shallow) or per layer (deep).

Prompts live only *inside* the blocks, so the host never sees them: a forward pre-hook on every
block inserts them after the leading non-patch tokens (CLS, ...), and a forward hook on every
block takes them out of its output. Whatever the host does between blocks (final norm,
``out_indices`` formatting, pooling, the grid reshape of ``featmap`` outputs) therefore sees
exactly its own tokens, whether the profile has a CLS token or not. VPT-shallow carries the
prompts' hidden states from one block to the next (the same arithmetic as leaving them in the
sequence); VPT-deep discards them and inserts the next layer's prompts.
"""
import math
from typing import Optional

import torch
import torch.nn as nn

from ..models.anatomy import Anatomy
from ..models.tokens import insert_tokens, remove_tokens
from ..registry import PETL_METHODS
from .base import BasePETLMethod


class PromptTokens(nn.Module):
    """The prompts of every layer (deep) or of the input (shallow) and the hooks moving them.

    Args:
        layers: 1 (shallow) or the number of blocks (deep).
        length: Prompts per layer P.
        dim: Token width D.
        dropout: Dropout on the prompts as they are inserted.
        prefix: Leading non-patch tokens the prompts follow.
    """

    def __init__(self, layers: int, length: int, dim: int, dropout: float, prefix: int) -> None:
        super().__init__()
        self.prompts = nn.Parameter(torch.empty(layers, length, dim))
        self.dropout = nn.Dropout(dropout)
        self.prefix = prefix
        self._carry: Optional[torch.Tensor] = None  # shallow: prompt states between blocks
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # V-PETL's uniform(-sqrt(6 / D), sqrt(6 / D)); VPT's own code uses 6 / (3 * 16 * 16 + D)
        bound = math.sqrt(6. / self.prompts.shape[-1])
        nn.init.uniform_(self.prompts, -bound, bound)

    def batch(self, layer: int, like: torch.Tensor, count: Optional[int] = None) -> torch.Tensor:
        """The first ``count`` (default all) prompts of ``layer``, dropped out, as ``(B, P, D)``
        in the dtype of the tokens ``like``."""
        prompts = self.prompts[layer] if count is None else self.prompts[layer, :count]
        return self.dropout(prompts).to(like.dtype).expand(like.shape[0], -1, -1)

    def insert(self, index: int, block: nn.Module, args):
        x, rest = args[0], args[1:]
        if index < self.prompts.shape[0]:  # a layer with its own prompts
            prompts = self.batch(index, x)
        else:
            prompts, self._carry = self._carry, None
            if prompts is None:
                raise RuntimeError('VPT found no prompt states to carry into block '
                                   f'{index}: the blocks ran out of order or the first one '
                                   'was skipped.')
        return (insert_tokens(x, prompts, self.prefix), *rest)

    def strip(self, index: int, block: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        states, output = remove_tokens(output, self.prefix, self.prompts.shape[1])
        self._carry = states if self.prompts.shape[0] == 1 else None
        return output


@PETL_METHODS.register_module()
class VPT(BasePETLMethod):
    """Visual prompt tuning: P learnable tokens after the CLS token, shallow or deep.

    VPT-shallow (``deep=False``) inserts ``P`` prompts once, after the position embedding,
    and they travel through every block; VPT-deep replaces them before every block with that
    layer's own prompts. The head reads the host's usual output (CLS or pooled patches): the
    prompts are never part of it. Parameters ``P * D`` (shallow) or ``L * P * D`` (deep).

    Defaults reproduce V-PETL's VTAB-1k setting: shallow, P = 100, no prompt dropout:
    ViT-B/16 100 * 768 = 76,800 (published 0.08M). VPT-deep's published 0.56M (VTAB) and
    0.85M (FGVC) average per-task lengths chosen from {1, 5, 10, 50, 100, 200}; with its
    prompt dropout 0.1 and P = 50 it has 12 * 50 * 768 = 460,800 (docs/image.md). Not
    zero-init (prompts change attention from step 0), not mergeable (they add tokens).

    Args:
        length: Prompts per layer P.
        deep: One set of prompts per block (VPT-deep) instead of one at the input.
        dropout: Prompt dropout.

    Examples:
        >>> petl = dict(type='VPT', length=50, deep=True, dropout=0.1)
    """
    DEFAULTS = dict(length=100, deep=False, dropout=0.)
    ZERO_INIT = False

    TOKENS = ('sequence', )  # prompts join a token sequence
    INSERTS_TOKENS = True

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        if self.length < 1 or not 0 <= self.dropout < 1:
            raise ValueError(f'{self.name} needs length >= 1 and 0 <= dropout < 1, got '
                             f'length={self.length}, dropout={self.dropout}.')

    def inject(self, anatomy: Anatomy) -> None:
        first = anatomy.blocks[0]
        tokens = PromptTokens(len(anatomy.blocks) if self.deep else 1, self.length, first.dim,
                              self.dropout, anatomy.num_prefix_tokens())
        self.attach(first, 'tokens', tokens)
        self.hook_blocks(anatomy, tokens.insert, tokens.strip)
