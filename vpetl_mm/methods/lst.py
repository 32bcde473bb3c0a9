"""LST (Sung et al., NeurIPS 2022): a narrow ladder side transformer beside a no-grad backbone.

The frozen backbone runs under ``torch.no_grad()``. A side transformer of the same depth and
width ``d = D / r`` starts from a down-projection of the embedded tokens; before side layer
``i`` a *ladder* mixes in the down-projected output of backbone block ``i``,
``h <- mu_i down_i(b_i) + (1 - mu_i) h`` with ``mu_i = sigmoid(alpha_i / T)``. The side layers
are pruned copies of the backbone's own blocks. The side stream's final norm and a
zero-initialised up-projection ``d -> D`` give per-token features added to the host output.
"""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.anatomy import Anatomy, BlockRef
from ..registry import PETL_METHODS
from .layers import attention
from .side import SideNetworkMethod

Tensor = torch.Tensor


class LadderBlock(nn.Module):
    """A pre-norm transformer block of width ``dim`` (a side layer; GELU MLP, no dropout).

    Args:
        dim: Width d.
        heads: Attention heads (``dim`` divisible by it).
        hidden: MLP hidden width.
        eps: LayerNorm epsilon (the host's).
    """

    def __init__(self, dim: int, heads: int, hidden: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        x = x + self.proj(attention(q, k, v, self.heads))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class LadderRung(nn.Module):
    """Side layer ``i`` with its ladder: ``down_i`` of block ``i``'s output and the gate."""

    def __init__(self, dim: int, width: int, heads: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.down = nn.Linear(dim, width)
        self.alpha = nn.Parameter(torch.zeros(1))
        self.block = LadderBlock(width, heads, hidden, eps)

    def reset_parameters(self) -> None:
        """PyTorch's default init of the layers (LST's), gate at ``mu = 0.5``."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.LayerNorm)):
                module.reset_parameters()
        nn.init.zeros_(self.alpha)

    def forward(self, h: Tensor, backbone: Tensor, temperature: float) -> Tensor:
        mu = torch.sigmoid(self.alpha / temperature)
        return self.block(mu * self.down(backbone) + (1 - mu) * h)


class LadderEnds(nn.Module):
    """The down-projection that starts the side stream, its final norm and the up-projection."""

    def __init__(self, dim: int, width: int, eps: float) -> None:
        super().__init__()
        self.down = nn.Linear(dim, width)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.up = nn.Linear(width, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default init, except the up-projection: zero, so LST adds nothing."""
        for module in (self.down, self.norm, self.up):
            module.reset_parameters()
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)


def _weight(module: nn.Module, name: str, size: int, fill: float, like: Tensor) -> Tensor:
    """``module.<name>`` or a constant vector (bias-free linears, non-affine norms)."""
    value = getattr(module, name, None)
    return value.detach() if value is not None else like.new_full((size, ), fill)


def stream_channels(anatomy: Anatomy, width: int) -> Tensor:
    """The ``width`` residual-stream channels of largest L1 weight over all blocks (sorted).

    A channel's importance sums the L1 norms of the weights that read it (qkv and fc1 input
    columns) and write it (proj and fc2 output rows), in every block, so one channel set serves
    the whole side stream.
    """
    score = 0.
    for block in anatomy.blocks:
        qkv, proj, fc1, fc2 = (anatomy.site(block, s) for s in ('qkv', 'proj', 'fc1', 'fc2'))
        score = score + (qkv.weight.detach().abs().sum(0) + fc1.weight.detach().abs().sum(0)
                         + proj.weight.detach().abs().sum(1) + fc2.weight.detach().abs().sum(1))
    return torch.topk(score, width).indices.sort().values


def _top(score: Tensor, k: int) -> Tensor:
    return torch.topk(score, k).indices.sort().values


@torch.no_grad()
def prune_block(side: LadderBlock, anatomy: Anatomy, block: BlockRef, keep: Tensor,
                host_heads: int) -> None:
    """Copy the L1-largest structure of a host block into ``side`` (LST's pruned init).

    Rows and columns of the stream are ``keep``. Of the host's heads, the ``side.heads`` with
    the largest L1 weight are kept; within each, the q / k dims (paired: they meet in ``q.k``)
    and the v dims (paired with proj's columns) of largest L1 weight; of the MLP, the hidden
    units with the largest L1 weight of fc1's row plus fc2's column.
    """
    norm1, qkv, proj, norm2, fc1, fc2 = (anatomy.site(block, s) for s in (
        'norm1', 'qkv', 'proj', 'norm2', 'fc1', 'fc2'))
    D = qkv.in_features
    wq, wk, wv = qkv.weight.detach()[:, keep].chunk(3, dim=0)  # (D, d) each
    bq, bk, bv = _weight(qkv, 'bias', 3 * D, 0., wq).chunk(3)
    wp = proj.weight.detach()[keep]  # (d, D): the columns are v dims
    e, es = D // host_heads, side.qkv.in_features // side.heads
    per_dim = wq.abs().sum(1) + wk.abs().sum(1) + wv.abs().sum(1) + wp.abs().sum(0)
    heads = _top(per_dim.view(host_heads, e).sum(1), side.heads)
    qk = torch.cat([h * e + _top(wq[h * e:(h + 1) * e].abs().sum(1)
                                 + wk[h * e:(h + 1) * e].abs().sum(1), es) for h in heads])
    v = torch.cat([h * e + _top(wv[h * e:(h + 1) * e].abs().sum(1)
                                + wp[:, h * e:(h + 1) * e].abs().sum(0), es) for h in heads])
    side.qkv.weight.copy_(torch.cat([wq[qk], wk[qk], wv[v]]))
    side.qkv.bias.copy_(torch.cat([bq[qk], bk[qk], bv[v]]))
    side.proj.weight.copy_(wp[:, v])
    side.proj.bias.copy_(_weight(proj, 'bias', D, 0., wq)[keep])
    w1, w2 = fc1.weight.detach()[:, keep], fc2.weight.detach()[keep]
    hidden = _top(w1.abs().sum(1) + w2.abs().sum(0), side.fc1.out_features)
    side.fc1.weight.copy_(w1[hidden])
    side.fc1.bias.copy_(_weight(fc1, 'bias', fc1.out_features, 0., wq)[hidden])
    side.fc2.weight.copy_(w2[:, hidden])
    side.fc2.bias.copy_(_weight(fc2, 'bias', D, 0., wq)[keep])
    for mine, host in ((side.norm1, norm1), (side.norm2, norm2)):
        mine.weight.copy_(_weight(host, 'weight', D, 1., wq)[keep])
        mine.bias.copy_(_weight(host, 'bias', D, 0., wq)[keep])


@PETL_METHODS.register_module()
class LST(SideNetworkMethod):
    """Ladder side-tuning: a pruned narrow side transformer fed by ladders from every block.

    The backbone runs without autograd (only the side network keeps activations for
    backward). Side layer ``i`` is a pre-norm transformer block of width ``d = D / r`` (heads:
    the host's, each ``r`` times narrower; MLP ``hidden / r``). Before it, the ladder mixes in
    block ``i``'s output: ``h <- mu_i down_i(b_i) + (1 - mu_i) h``, ``mu_i = sigmoid(alpha_i /
    T)``, alpha 0, T 0.1 (LST's gate); ``h`` starts as ``down_0`` of the embedded tokens. The
    side output, normalised and projected back (``up: d -> D``, zero-init), is added per token
    to the host output in its layout (the CLS token, the mean of the patch tokens, the
    ``featmap`` grid or the raw tokens), so the output equals the frozen backbone's at step 0.

    Choices where the paper is silent or differs (docs/image.md):

    * pruned init: LST keeps the structures of largest importance; here an L1-magnitude
      criterion on the pretrained weights (:func:`stream_channels`, :func:`prune_block`).
      It reads the weights present when :meth:`init_weights` runs, i.e. after the host's
      ``init_cfg=Pretrained`` load (as the benchmark configs load it); weights loaded later
      by ``load_from`` are not pruned from. The down / up projections start as LST's
      (PyTorch default), except ``up``, zero here;
    * LST replaces the backbone output by ``up(h)``; here ``up(h)`` is *added* to the host's
      output (zero-init), so the head starts from the frozen features;
    * no dropout in the side network.

    ViT-B/16, r = 8: 12 side blocks of 111,840 + 13 down-projections of 73,824 + 12 gates +
    the final norm (192) + up (74,496) = 2,376,492 (published 2.38M).

    Args:
        reduction: Width reduction r (``D`` and the MLP width divisible by it).
        heads: Side attention heads (``None``: the host's); at most the host's, dividing d.
        temperature: Gate temperature T.
        prune: Initialise side layers from the backbone (else PyTorch's default init).

    Examples:
        >>> petl = dict(type='LST', reduction=8)
    """
    DEFAULTS = dict(reduction=8, heads=None, temperature=0.1, prune=True)
    SITES = ('attn', 'qkv', 'proj', 'fc1', 'fc2', 'norm1', 'norm2')
    PROFILES = ('mmpretrain.VisionTransformer', 'timm.VisionTransformer')
    TOKENS = ('sequence', )
    DETACHES_BACKBONE = True
    ZERO_INIT = True

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        self._widths(anatomy)

    def _widths(self, anatomy: Anatomy) -> Tuple[int, int, int, int, int]:
        """``(D, d, side heads, side MLP width, host heads)``, or ``ValueError``."""
        block = anatomy.blocks[0]
        D, hidden = block.dim, anatomy.site(block, 'fc1').out_features
        host_heads = getattr(anatomy.site(block, 'attn'), 'num_heads', None)
        heads = self.heads or host_heads
        r = self.reduction
        if not isinstance(r, int) or r < 1 or D % r or hidden % r:
            raise ValueError(f'LST reduction={r!r} must divide the width {D} and the MLP width '
                             f'{hidden}.')
        if host_heads is None or not heads or (D // r) % heads or heads > host_heads \
                or (D // r) // heads > D // host_heads:
            raise ValueError(f'LST heads={heads!r} must divide the side width {D // r} and be '
                             f'at most the host heads ({host_heads}).')
        if self.temperature <= 0:
            raise ValueError(f'LST temperature must be > 0, got {self.temperature}.')
        return D, D // r, heads, hidden // r, host_heads

    def plan(self, anatomy: Anatomy) -> None:
        super().plan(anatomy)
        self.anatomy = anatomy  # init_weights prunes from the host weights loaded by then
        self._shape = self._widths(anatomy)
        self._eps = getattr(anatomy.site(anatomy.blocks[0], 'norm1'), 'eps', 1e-6)

    def inject(self, anatomy: Anatomy) -> None:
        D, width, heads, hidden, _ = self._shape
        self.rungs: List[LadderRung] = [
            self.attach(block, 'ladder', LadderRung(D, width, heads, hidden, self._eps))
            for block in anatomy.blocks]
        # not a block's: the stream's ends (key petl_lst_ends)
        self.ends = self.attach_root(anatomy, 'ends', LadderEnds(D, width, self._eps))
        self.tap_blocks(anatomy)

    def init_weights(self) -> None:
        """Default init, zero up-projection, then the pruned copy of the (loaded) backbone."""
        super().init_weights()
        if self.prune:
            keep = stream_channels(self.anatomy, self.ends.down.out_features)
            for rung, block in zip(self.rungs, self.anatomy.blocks):
                prune_block(rung.block, self.anatomy, block, keep, self._shape[-1])

    def side_forward(self) -> Tensor:
        """The side stream's per-token output ``up(norm(h))`` ``(B, L, D)``."""
        taps = self.taps
        taps.require(len(self.rungs), self.name)
        h = self.ends.down(taps.embed)
        for index, rung in enumerate(self.rungs):
            h = rung(h, taps.outputs[index], self.temperature)
        return self.ends.up(self.ends.norm(h))
