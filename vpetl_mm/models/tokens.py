"""Token-layout helpers: a spatial view of the tokens inside blocks, and extra tokens in a
sequence.

:func:`insert_tokens` / :func:`remove_tokens` put extra tokens (VPT's and NOAH's prompts, HST's
meta tokens) into a block's ``(B, L, C)`` input and take them out of its output, so the host's
own code between blocks never sees them.

:class:`TokenGrid` is for methods that convolve the tokens (Mona, HST). Each profile's token
layout (:mod:`vpetl_mm.models.profiles`) stores the spatial shape in a different place, so
:class:`TokenGrid` tracks it with hooks and converts tokens to 2-D maps and back:

* ``'windowed'`` (2-D Swin): tokens ``(B, H*W, C)``; ``(H, W)`` is the ``hw_shape`` argument of
  each block call (it changes per stage), captured by a forward pre-hook on every block.
* ``'grid3d'`` (Video Swin): tokens ``(B, D, H, W, C)``; the shape is the tensor's own. Maps are
  per frame: ``(B*D, C, H, W)``.
* ``'sequence'`` (ViT, VideoMAE, timm): tokens ``(B, P+N, C)`` with ``P`` leading non-patch
  tokens; the grid ``(H, W)`` or ``(T, H, W)`` is the output shape of the patch-embedding
  convolution named by the profile's ``grid``, captured by a forward hook on it. Maps are per
  frame; the ``P`` prefix tokens have no position on the grid and are returned separately.
"""
from functools import partial
from typing import Callable, Dict, Optional, Tuple

import torch

from .anatomy import Anatomy

Tensor = torch.Tensor


def insert_tokens(x: Tensor, tokens: Tensor, at: int) -> Tensor:
    """``x`` ``(B, L, C)`` with ``tokens`` ``(B, n, C)`` inserted before position ``at``.

    Examples:
        >>> x, prompts = torch.zeros(2, 5, 8), torch.ones(2, 3, 8)
        >>> insert_tokens(x, prompts, at=1)[0, :, 0]  # after the CLS token
        tensor([0., 1., 1., 1., 0., 0., 0., 0.])
    """
    return torch.cat((x[:, :at], tokens, x[:, at:]), dim=1)


def remove_tokens(x: Tensor, at: int, count: int) -> Tuple[Tensor, Tensor]:
    """The inverse of :func:`insert_tokens`: ``(the count tokens from at, x without them)``.

    The remaining sequence is a new contiguous tensor (host code may ``view`` it).

    Examples:
        >>> taken, rest = remove_tokens(torch.arange(8.).view(1, 8, 1), at=1, count=3)
        >>> taken.flatten().tolist(), rest.flatten().tolist()
        ([1.0, 2.0, 3.0], [0.0, 4.0, 5.0, 6.0, 7.0])
    """
    return x[:, at:at + count], torch.cat((x[:, :at], x[:, at + count:]), dim=1)


class TokenGrid:
    """Track token grids and convert tokens to ``(B', C, H, W)`` maps and back.

    Args:
        anatomy: The backbone's anatomy.
        hook: ``hook(module, fn, pre=False)`` registering a forward (pre-)hook; a method passes
            its own :meth:`~vpetl_mm.methods.base.BasePETLMethod.hook` so it owns the handles.

    Raises:
        ValueError: The layout is unknown, or a ``'sequence'`` profile names no ``grid``.
    """

    def __init__(self, anatomy: Anatomy, hook: Callable) -> None:
        self.layout = anatomy.profile.tokens
        self.hw: Dict[int, Tuple[int, int]] = {}  # windowed: block index -> (H, W)
        self.grid: Optional[Tuple[int, ...]] = None  # sequence: (H, W) or (T, H, W)
        if self.layout == 'windowed':
            for block in anatomy.blocks:
                hook(block.module, partial(self._capture_hw, block.index), pre=True)
        elif self.layout == 'sequence':
            path = anatomy.profile.grid
            conv = anatomy._get(anatomy.backbone, path) if path else None
            if conv is None:
                raise ValueError(f'Backbone profile {anatomy.profile.name!r} does not say where '
                                 'the token grid comes from (its `grid` names no module), so '
                                 'spatial methods cannot run on it. Set grid=<path of the '
                                 'patch-embedding conv> in the profile.')
            hook(conv, self._grid_hook)
        elif self.layout != 'grid3d':
            raise ValueError(f'Unknown token layout {self.layout!r}; spatial methods support '
                             "'windowed', 'grid3d' and 'sequence'.")

    # hooks are (partials of) bound methods so deep copies (EMA models) rebind them
    def _capture_hw(self, index: int, module, args) -> None:
        if len(args) < 2:
            raise RuntimeError(f'Block {index} was called without its hw_shape argument; '
                               "the profile's 'windowed' layout does not fit this host.")
        self.hw[index] = tuple(args[1])

    def _grid_hook(self, module, args, output: Tensor) -> None:
        self.grid = tuple(output.shape[2:])

    def split(self, x: Tensor, index: int) -> Tuple[Optional[Tensor], Tensor]:
        """Tokens of block ``index`` -> ``(prefix tokens or None, maps (B', C, H, W))``."""
        if self.layout == 'grid3d':
            B, D, H, W, C = x.shape
            return None, x.permute(0, 1, 4, 2, 3).reshape(B * D, C, H, W)
        if self.layout == 'windowed':
            (H, W), T, prefix = self.hw[index], 1, None
        else:
            if self.grid is None:
                raise RuntimeError('The token grid is unknown: the patch embedding did not run '
                                   'before the blocks.')
            T, (H, W) = (self.grid[0] if len(self.grid) == 3 else 1), self.grid[-2:]
            num_prefix = x.shape[1] - T * H * W
            if num_prefix < 0:
                raise RuntimeError(f'{x.shape[1]} tokens do not fit the grid {self.grid}.')
            prefix, x = (x[:, :num_prefix], x[:, num_prefix:]) if num_prefix else (None, x)
        B, _, C = x.shape
        return prefix, x.reshape(B, T, H, W, C).permute(0, 1, 4, 2, 3).reshape(B * T, C, H, W)

    def join(self, prefix: Optional[Tensor], maps: Tensor, like: Tensor) -> Tensor:
        """Inverse of :meth:`split`: tokens with the layout (and shape) of ``like``."""
        C, H, W = maps.shape[1:]
        B = like.shape[0]
        maps = maps.reshape(B, -1, C, H, W).permute(0, 1, 3, 4, 2)  # (B, T, H, W, C)
        if self.layout == 'grid3d':
            return maps.contiguous()
        tokens = maps.reshape(B, -1, C)
        return tokens if prefix is None else torch.cat([prefix, tokens], dim=1)
