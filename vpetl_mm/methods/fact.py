"""FacT (Jie & Deng, AAAI 2023): the ViT's weight increments as one factorised tensor."""
from functools import partial
from typing import Dict, List, Tuple

import torch
import torch.nn as nn

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod

_SITES = ('qkv', 'proj', 'fc1', 'fc2')


class FacTShared(nn.Module):
    """U (D -> r) and V (r -> D, zero-init), shared by every increment of every block."""

    def __init__(self, dim: int, rank: int, mode: str, num_blocks: int, chunks: int) -> None:
        super().__init__()
        self.U = nn.Linear(dim, rank, bias=False)
        self.V = nn.Linear(rank, dim, bias=False)
        self.mode = mode
        if mode == 'tk':  # C (r x r x r) and P (r x per-block matrices), FacT-TK's cores
            self.core = nn.Parameter(torch.empty(rank, rank, rank))
            self.factors = nn.Parameter(torch.empty(rank, num_blocks * (4 + 2 * chunks)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.U.reset_parameters()
        nn.init.zeros_(self.V.weight)  # the increments start at zero
        if self.mode == 'tk':
            nn.init.xavier_uniform_(self.core)
            nn.init.xavier_uniform_(self.factors)


class FacTBlock(nn.Module):
    """One block's r x r cores: q, k, v, proj, and one per ``D``-wide chunk of fc1 and fc2.

    FacT-TT stores them; FacT-TK computes them from the shared ``C`` and this block's columns of
    ``P``. ``delta(site)`` is the site's weight increment ``s V Sigma U`` (or its chunks).
    """

    def __init__(self, shared: FacTShared, index: int, rank: int, chunks: int, scale: float,
                 dropout: float) -> None:
        super().__init__()
        self.shared = [shared]  # a list: not a child, so its parameters are counted once
        self.index, self.chunks, self.scale = index, chunks, scale
        self.count = 4 + 2 * chunks
        if shared.mode == 'tt':
            self.cores = nn.Parameter(torch.empty(self.count, rank, rank))
        self.dropout = nn.Dropout(dropout)
        self.merged = False
        self._saved: Dict[str, torch.Tensor] = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if hasattr(self, 'cores'):  # as FacT's Linear(r, r) cores
            for core in self.cores:
                nn.init.kaiming_uniform_(core, a=5 ** 0.5)

    def all_cores(self) -> torch.Tensor:
        """(count, r, r): q, k, v, proj, fc1 chunks, fc2 chunks."""
        if hasattr(self, 'cores'):
            return self.cores
        shared = self.shared[0]
        cols = shared.factors[:, self.index * self.count:(self.index + 1) * self.count]
        return torch.einsum('abr,rk->kab', shared.core, cols)

    def _sites(self, cores: torch.Tensor) -> Dict[str, torch.Tensor]:
        c = self.chunks
        return dict(qkv=cores[0:3], proj=cores[3:4], fc1=cores[4:4 + c], fc2=cores[4 + c:])

    def out_delta(self, site: str, x: torch.Tensor) -> torch.Tensor:
        """The increment's output for the host layer's input ``x``."""
        shared, cores = self.shared[0], self._sites(self.all_cores())[site]
        if site == 'fc2':  # x is c chunks of D: each through U and its core, summed
            u = shared.U(x.unflatten(-1, (self.chunks, -1)))
            h = torch.einsum('...ci,cji->...j', self.dropout(u), cores)
            return shared.V(h) * self.scale
        h = torch.einsum('...i,cji->...cj', shared.U(x), cores)  # cores apply to U x
        return shared.V(self.dropout(h)).flatten(-2) * self.scale

    def weight_delta(self, site: str) -> torch.Tensor:
        shared, cores = self.shared[0], self._sites(self.all_cores())[site]
        U, V = shared.U.weight, shared.V.weight
        blocks = [V @ core @ U * self.scale for core in cores]
        return torch.cat(blocks, dim=1 if site == 'fc2' else 0)

    def hook(self, site: str, module: nn.Linear, args, output: torch.Tensor) -> torch.Tensor:
        return output if self.merged else output + self.out_delta(site, args[0])


@PETL_METHODS.register_module()
class FacT(BasePETLMethod):
    """Factor-tuning: every block's q, k, v, proj, fc1, fc2 increments share U and V.

    ``Delta W = s V Sigma U`` with ``U`` (D -> r) and ``V`` (r -> D, zero-init) shared by all
    12 x 12 D x D increments of ViT-B (fc1 / fc2 count as 4 chunks each). FacT-TT
    (``mode='tt'``) gives each increment its own r x r core: ``2 D r + 144 r^2`` parameters,
    ViT-B/16 rank 16: 61,440. FacT-TK (``mode='tk'``) builds the cores from one r x r x r tensor
    and an r x 144 factor matrix: ``2 D r + r^3 + 144 r``. The published 0.07M is the average of
    FacT's per-task ranks (8 to 32) and modes; rank 16 TT is its middle setting. Zero-init;
    merges into the host weights (``merge()`` / ``unmerge()``, exact).

    Args:
        mode: ``'tt'`` or ``'tk'``.
        rank: r.
        scale: s (FacT tunes it per task, 0.01 to 100; 1 by default).
        dropout: Dropout on the factorised path (0.1, as FacT).

    Examples:
        >>> petl = dict(type='FacT', mode='tt', rank=16, scale=1.0)
    """
    DEFAULTS = dict(mode='tt', rank=16, scale=1., dropout=0.1)
    MERGEABLE = True
    SITES = _SITES
    PROFILES = ('mmpretrain.VisionTransformer', 'timm.VisionTransformer')  # one width for all

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        if self.mode not in ('tt', 'tk'):
            raise ValueError(f"FacT mode must be 'tt' or 'tk', got {self.mode!r}.")
        self._chunks(anatomy)

    @staticmethod
    def _chunks(anatomy: Anatomy) -> int:
        """fc1 / fc2 increments as ``D x D`` chunks (the MLP width over the token width)."""
        dim = anatomy.blocks[0].dim
        chunks, rest = divmod(anatomy.site(anatomy.blocks[0], 'fc1').out_features, dim)
        if rest:
            raise ValueError(f'FacT needs an MLP width that is a multiple of {dim}.')
        return chunks

    def plan(self, anatomy: Anatomy) -> None:
        super().plan(anatomy)
        self.chunks = self._chunks(anatomy)

    def inject(self, anatomy: Anatomy) -> None:
        dim, chunks = anatomy.blocks[0].dim, self.chunks
        # U and V belong to no block: every block's increments share them
        shared = self.attach_root(anatomy, 'shared', FacTShared(
            dim, self.rank, self.mode, len(anatomy.blocks), chunks), site='shared')
        self._layers: List[Tuple[FacTBlock, Dict[str, nn.Linear]]] = []
        for block in anatomy.blocks:
            layer = FacTBlock(shared, block.index, self.rank, chunks, self.scale, self.dropout)
            self.attach(block, 'blocks', layer)
            hosts = {site: anatomy.site(block, site) for site in _SITES}
            for site, host in hosts.items():
                # a partial of a bound method: deep copies rebind it to the copied layer
                self.hook(host, partial(layer.hook, site))
            self._layers.append((layer, hosts))

    def _fold(self, merge: bool) -> None:
        # every increment of a block folds into its own host layer; the saved weights unmerge
        for layer, hosts in (self._layers if merge else reversed(self._layers)):
            if layer.merged == merge:
                continue
            with torch.no_grad():
                for site, host in hosts.items():
                    if merge:
                        layer._saved[site] = host.weight.clone()
                        host.weight.add_(layer.weight_delta(site))
                    else:  # the saved weights: exact
                        host.weight.copy_(layer._saved.pop(site))
            layer.merged = merge

    def merge(self) -> None:
        self._fold(True)

    def unmerge(self) -> None:
        self._fold(False)
