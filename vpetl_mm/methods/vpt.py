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
        bound: Half-width of the uniform init (default ``sqrt(6 / D)``, V-PETL's).
    """

    def __init__(self, layers: int, length: int, dim: int, dropout: float, prefix: int,
                 bound: Optional[float] = None) -> None:
        super().__init__()
        self.prompts = nn.Parameter(torch.empty(layers, length, dim))
        self.bound = math.sqrt(6. / dim) if bound is None else bound
        self.dropout = nn.Dropout(dropout)
        self.prefix = prefix
        self._carry: Optional[torch.Tensor] = None  # shallow: prompt states between blocks
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.prompts, -self.bound, self.bound)

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

    Defaults reproduce V-PETL's VTAB-1k setting: shallow, P = 100, no prompt dropout: ViT-B/16
    100 * 768 = 76,800 (published 0.08M). VPT-deep's published 0.56M (VTAB) and 0.85M (FGVC)
    average per-task lengths chosen from {1, 5, 10, 50, 100, 200}; with its prompt dropout 0.1
    and P = 50 it has 12 * 50 * 768 = 460,800 (docs/image.md). VPT keeps those lengths in a
    spreadsheet linked from its README (KMnP/vpt@4410440, "Hyperparameters for experiments in
    paper"), outside the repository; its ``configs/prompt/*.yaml`` set none
    (``src/configs/config.py`` defaults ``NUM_TOKENS`` to 5) and its demo notebook gives three
    VTAB tasks, which the benchmark's per-task table uses. The FGVC 0.85M implies a mean P of
    about 92 (12 * 768 * 92 = 847,872); no readable source gives the five lengths, so FGVC keeps
    P = 50. Not zero-init (prompts change attention from step 0), not mergeable (they add
    tokens).

    Init (``init``): prompts ~ U(-a, a) with ``'vpt'``: a = sqrt(6 / (3 p^2 + D)), VPT's
    xavier-uniform bound from the patch size p and width D (KMnP/vpt@4410440,
    ``src/models/vit_prompt/vit.py``: sqrt(6/1536) on ViT-B/16), or ``'vpetl'``:
    a = sqrt(6 / D), V-PETL's VPT-shallow (synbol/Parameter-Efficient-Transfer-Learning-Benchmark
    @c188fad, ``ImageClassification/models/vision_transformer_vptshallow.py``). Default
    (``None``): ``'vpt'`` for VPT-deep (VPT's code produced its published figures), ``'vpetl'``
    for VPT-shallow (V-PETL's).

    Args:
        length: Prompts per layer P.
        deep: One set of prompts per block (VPT-deep) instead of one at the input.
        dropout: Prompt dropout.
        init: ``'vpt'``, ``'vpetl'`` or None (by ``deep``; see above).

    Examples:
        >>> petl = dict(type='VPT', length=50, deep=True, dropout=0.1)
    """
    DEFAULTS = dict(length=100, deep=False, dropout=0., init=None)
    ZERO_INIT = False

    TOKENS = ('sequence', )  # prompts join a token sequence
    INSERTS_TOKENS = True

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        if self.length < 1 or not 0 <= self.dropout < 1:
            raise ValueError(f'{self.name} needs length >= 1 and 0 <= dropout < 1, got '
                             f'length={self.length}, dropout={self.dropout}.')
        if self.init not in (None, 'vpt', 'vpetl'):
            raise ValueError(f"{self.name} init={self.init!r}: use 'vpt' (VPT's xavier bound "
                             "from the patch size), 'vpetl' (sqrt(6 / D)) or None (by deep).")
        if (self.init or ('vpt' if self.deep else 'vpetl')) == 'vpt':
            patch_area(anatomy)  # raises where the host has no patch embedding to read

    def inject(self, anatomy: Anatomy) -> None:
        first = anatomy.blocks[0]
        init = self.init or ('vpt' if self.deep else 'vpetl')
        bound = math.sqrt(6. / (3 * patch_area(anatomy) + first.dim)) if init == 'vpt' else None
        tokens = PromptTokens(len(anatomy.blocks) if self.deep else 1, self.length, first.dim,
                              self.dropout, anatomy.num_prefix_tokens(), bound)
        self.attach(first, 'tokens', tokens)
        self.hook_blocks(anatomy, tokens.insert, tokens.strip)


def patch_area(anatomy: Anatomy) -> int:
    """Pixels per patch, ``p * p``, from the profile's patch-embedding conv (``grid``).

    VPT's init bound reads the patch size (``reduce(mul, patch_size)``, KMnP/vpt@4410440,
    ``src/models/vit_prompt/vit.py``); a 3-D (video) patch counts its spatial extent.
    """
    conv = anatomy._get(anatomy.backbone, anatomy.profile.grid) if anatomy.profile.grid else None
    if not isinstance(conv, nn.modules.conv._ConvNd):
        raise ValueError(f"VPT init='vpt' reads the patch size from the patch embedding, which "
                         f'the {anatomy.profile.name!r} profile does not name (grid); use '
                         "init='vpetl'.")
    height, width = conv.kernel_size[-2:]
    return height * width
