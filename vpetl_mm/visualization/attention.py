"""Attention maps of (PETL) vision transformers, captured with hooks, and attention rollout.

:class:`AttentionRecorder` hooks the abstract sites of the backbone profile
(:mod:`vpetl_mm.models.profiles`) and does not copy or re-run the backbone: a forward hook on
the ``qkv`` site keeps that layer's output, and a forward hook on the ``attn`` site turns it into
the attention probabilities ``softmax(q k^T * scale)`` of every head, as the host computes them.
Hooking the ``qkv`` *output* means every PETL change made there is included (LoRA, FacT,
NOAH's LoRA, SSF or RepAdapter on qkv: their hooks run before ours, or are merged into the
weight). Other PETL changes to attention are handled explicitly:

* prefix keys (``PrefixTuning``, through the profile's ``kv_attention`` patch): the ``L``
  prefix keys are prepended to the keys exactly as the patch does, so the rows are the real
  probabilities over ``L + N`` keys; :attr:`BlockAttention.num_extra_keys` says how many.
* inserted tokens (VPT prompts, NOAH prompts, HST meta tokens): methods insert them in block
  pre-hooks, so the sequence inside a block is longer than the host's. A pre-hook that runs
  *before* every PETL pre-hook sees the host's own tokens and one that runs after them sees the
  final sequence; the host tokens are located in it by value (insertion concatenates, it does
  not change them), whatever the method and wherever it puts its tokens.

The maps (:func:`patch_map`, :func:`attention_rollout`) use the attention *among the host's own
tokens* (:meth:`BlockAttention.host`): attention paid to prompts or prefix keys leaves the
image tokens. Rollout adds the identity and renormalises each row, so that mass is
renormalised away; the last-block map shows the raw probabilities.

Side-network methods (LST, LAST, E3VA, HST's side network) leave the backbone's attention
unchanged: their maps show the frozen backbone. U-Tuning's parallel prefix is a separate
softmax beside the host's (the host attention is exactly kept) and is not shown.

Examples:
    >>> with AttentionRecorder(model) as recorder:
    ...     model(inputs, mode='tensor')
    >>> last = recorder.last_map()        # (B, H_grid, W_grid): CLS -> patch, last block
    >>> rollout = recorder.rollout_map()  # (B, H_grid, W_grid)
"""
import functools
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn

from ..models.anatomy import Anatomy
from ..models.host_patches import extra_kv
from ..models.profiles import find_profile
from ..models.tokens import TokenGrid
from ..utils import find_petl_backbone, unwrap

Tensor = torch.Tensor
ArrayLike = Union[Tensor, np.ndarray]


@dataclass
class BlockAttention:
    """The attention probabilities of one block for one batch.

    Attributes:
        probs: ``(B, heads, N, L + N)``: every query over the ``L`` extra keys (prefixes, first,
            as the ``kv_attention`` patches put them) and the ``N`` tokens of the block.
        num_extra_keys: ``L``.
        host_index: ``(P + G, )`` positions of the host's own tokens (``P`` prefix tokens such
            as CLS, then the ``G`` patch tokens) in the block's sequence of ``N``.
    """
    probs: Tensor
    num_extra_keys: int
    host_index: Tensor

    def host(self) -> Tensor:
        """``(B, heads, P + G, P + G)``: the raw probabilities among the host's own tokens."""
        rows = self.probs[:, :, self.host_index]
        return rows[..., self.host_index + self.num_extra_keys]


def _host_token_index(host: Tensor, final: Tensor) -> Tensor:
    """Positions of the rows of ``host (B, n, C)`` inside ``final (B, N, C)``, in order."""
    if host.shape == final.shape and torch.equal(host, final):
        return torch.arange(host.shape[1])
    index, j = [], 0
    for i in range(final.shape[1]):
        if j < host.shape[1] and torch.equal(final[:, i], host[:, j]):
            index.append(i)
            j += 1
    if j != host.shape[1]:
        raise RuntimeError(
            f'Only {j} of the {host.shape[1]} host tokens were found, unchanged, among the '
            f'{final.shape[1]} tokens a block received: a PETL pre-hook changes the tokens '
            'instead of only inserting new ones, so the host tokens cannot be located for '
            'attention maps.')
    return torch.tensor(index)


def _qk_scale(attn: nn.Module, head_dim: int) -> float:
    """The factor the host multiplies ``q k^T`` by."""
    sdpa = getattr(attn, 'scaled_dot_product_attention', None)  # mmpretrain MultiheadAttention
    if isinstance(sdpa, functools.partial) and sdpa.keywords.get('scale') is not None:
        # with qk_scale set, mmpretrain calls its python attention, which *divides* by `scale`
        return 1. / float(sdpa.keywords['scale'])
    scale = getattr(attn, 'scale', None)  # timm, mmaction2 VideoMAE
    if isinstance(scale, (int, float)):
        return float(scale)
    return head_dim ** -0.5  # F.scaled_dot_product_attention's default


class AttentionRecorder:
    """Record the attention probabilities of every block of a sequence-layout backbone.

    Use as a context manager around forward passes: the hooks exist only inside it. Each
    forward of the backbone replaces what was recorded.

    Args:
        model: A model holding a ``PETLBackbone`` (e.g. an mmpretrain ``ImageClassifier``),
            the ``PETLBackbone`` itself, or a plain host backbone that a profile describes.
        store_on_cpu: Move the probabilities to the CPU as they are recorded.

    Raises:
        ValueError: The backbone's token layout is not ``'sequence'`` (Swin's windows have no
            global CLS-to-patch attention), its profile lacks the ``attn`` / ``qkv`` sites or a
            patch-embedding ``grid``, or an attention module has no ``num_heads``.

    Examples:
        >>> with AttentionRecorder(model) as recorder:
        ...     model(inputs, mode='tensor')
        >>> [a.probs.shape for a in recorder.attentions]  # one (B, heads, N, L + N) per block
    """

    def __init__(self, model: nn.Module, store_on_cpu: bool = True) -> None:
        wrapper = find_petl_backbone(model)
        if wrapper is not None:
            self.anatomy: Anatomy = wrapper.anatomy
            self._entry: nn.Module = wrapper
        else:
            backbone = getattr(unwrap(model), 'backbone', unwrap(model))
            self.anatomy = Anatomy(backbone, find_profile(backbone))
            self._entry = backbone
        profile = self.anatomy.profile
        if profile.tokens != 'sequence':
            raise ValueError(f'Attention maps need a global attention over a token sequence '
                             f"(CLS + patches); backbone profile {profile.name!r} has the "
                             f'{profile.tokens!r} layout. Supported: the ViT profiles '
                             "('mmpretrain.VisionTransformer', 'timm.VisionTransformer', "
                             "'mmaction.VisionTransformer').")
        self.anatomy.require_sites(('attn', 'qkv'), method='AttentionRecorder')
        self.attns = [self.anatomy.site(b, 'attn') for b in self.anatomy.blocks]
        for block, attn in zip(self.anatomy.blocks, self.attns):
            if not isinstance(getattr(attn, 'num_heads', None), int):
                raise ValueError(f'{self.anatomy.site_path(block, "attn")} '
                                 f'({type(attn).__name__}) has no integer num_heads.')
        self.num_prefix: int = self.anatomy.num_prefix_tokens()
        root = self.anatomy._get(self.anatomy.backbone, profile.root)
        # CLS is the first prefix token where the host has one (timm: before any registers)
        self.has_cls: bool = getattr(root, 'cls_token', None) is not None
        self.store_on_cpu = store_on_cpu
        self._handles: List = []
        self._grid: Optional[TokenGrid] = None
        self.attentions: List[BlockAttention] = []
        self._reset()

    # -- hooks ---------------------------------------------------------------------------------
    def _hook(self, module: nn.Module, fn, pre: bool = False, prepend: bool = False) -> None:
        register = module.register_forward_pre_hook if pre else module.register_forward_hook
        self._handles.append(register(fn, prepend=prepend))

    def __enter__(self) -> 'AttentionRecorder':
        self._grid = TokenGrid(self.anatomy, self._hook)
        self._hook(self._entry, self._start, pre=True)
        for block, attn in zip(self.anatomy.blocks, self.attns):
            i = block.index
            # first of all pre-hooks: the host's tokens; last: the sequence after PETL inserts
            self._hook(block.module, functools.partial(self._host_tokens, i), pre=True,
                       prepend=True)
            self._hook(block.module, functools.partial(self._final_tokens, i), pre=True)
            self._hook(attn, functools.partial(self._enter_attn, i), pre=True)
            # after PETL hooks on qkv (registered at build): their changes are in the output
            self._hook(self.anatomy.site(block, 'qkv'), self._qkv_output)
            self._hook(attn, functools.partial(self._attention, i))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _reset(self) -> None:
        self._slots: List[Optional[BlockAttention]] = [None] * len(self.anatomy.blocks)
        self._host: dict = {}
        self._index: dict = {}
        self._active: Optional[int] = None
        self._qkv: Optional[Tensor] = None

    def _start(self, module, args) -> None:
        self._reset()
        self.attentions = []

    def _host_tokens(self, index: int, module, args) -> None:
        self._host[index] = args[0]

    def _final_tokens(self, index: int, module, args) -> None:
        self._index[index] = _host_token_index(self._host.pop(index), args[0])

    def _enter_attn(self, index: int, module, args) -> None:
        self._active, self._qkv = index, None

    def _qkv_output(self, module, args, output: Tensor) -> None:
        if self._active is not None and self._qkv is None:  # the attention's own qkv call
            self._qkv = output

    def _attention(self, index: int, attn: nn.Module, args, output) -> None:
        qkv, self._active = self._qkv, None
        if qkv is None:
            raise RuntimeError(f'Block {index}: the attention ran without calling its qkv '
                               'layer as a module, so its probabilities cannot be recorded.')
        probs, extra = self._probabilities(attn, qkv)
        if self.store_on_cpu:
            probs = probs.cpu()
        self._slots[index] = BlockAttention(probs, extra, self._index.pop(index))
        if index == len(self._slots) - 1:
            missing = [i for i, s in enumerate(self._slots) if s is None]
            if missing:
                raise RuntimeError(f'Blocks {missing} did not run their attention.')
            self.attentions = list(self._slots)

    @torch.no_grad()
    def _probabilities(self, attn: nn.Module, qkv: Tensor) -> Tuple[Tensor, int]:
        """The host's arithmetic from the qkv output to the softmax (no dropout)."""
        B, N, _ = qkv.shape
        heads = attn.num_heads
        qkv = qkv.float()
        q_bias = getattr(attn, 'q_bias', None)
        if isinstance(q_bias, Tensor):  # VideoMAE adds its q / v biases after qkv(x)
            qkv = qkv + torch.cat((q_bias, torch.zeros_like(q_bias),
                                   getattr(attn, 'v_bias', torch.zeros_like(q_bias)))).float()
        q, k, _ = qkv.reshape(B, N, 3, heads, -1).permute(2, 0, 3, 1, 4)
        for name, t in (('q_norm', 'q'), ('k_norm', 'k')):  # timm's optional q / k norms
            norm = getattr(attn, name, None)
            if isinstance(norm, nn.Module):
                if t == 'q':
                    q = norm(q)
                else:
                    k = norm(k)
        extra = extra_kv(attn, B)
        if extra is not None:  # prefix keys, first, as the kv_attention patches put them
            k = torch.cat((extra[0].float(), k), dim=2)
        logits = (q @ k.transpose(-2, -1)) * _qk_scale(attn, q.shape[-1])
        return logits.softmax(dim=-1), 0 if extra is None else extra[0].shape[2]

    # -- results -------------------------------------------------------------------------------
    @property
    def grid(self) -> Tuple[int, ...]:
        """The patch grid ``(H, W)`` (``(T, H, W)`` for video) of the last forward."""
        if self._grid is None or self._grid.grid is None:
            raise RuntimeError('No forward pass was recorded yet.')
        return tuple(self._grid.grid)

    def _check(self) -> None:
        if not self.attentions:
            raise RuntimeError('No complete forward pass was recorded: run the model inside '
                               '`with recorder:`.')
        n = self.attentions[0].host_index.numel()
        expected = self.num_prefix + int(np.prod(self.grid))
        if n != expected:
            raise RuntimeError(f'{n} host tokens do not match {self.num_prefix} prefix tokens '
                               f'plus the patch grid {self.grid}.')

    def host_attentions(self) -> List[Tensor]:
        """Per block, ``(B, heads, P + G, P + G)`` among the host's tokens."""
        self._check()
        return [a.host() for a in self.attentions]

    def last_map(self, layer: int = -1) -> Tensor:
        """``(B, *grid)``: CLS-to-patch attention of block ``layer``, mean over heads."""
        attn = self.host_attentions()[layer]
        return patch_map(attn, self.num_prefix, self.grid, 'cls' if self.has_cls else 'mean')

    def rollout_map(self) -> Tensor:
        """``(B, *grid)``: the CLS row of the attention rollout over all blocks."""
        rollout = attention_rollout(self.host_attentions())
        return patch_map(rollout, self.num_prefix, self.grid, 'cls' if self.has_cls else 'mean')


def _as_tensor(x: ArrayLike) -> Tensor:
    return torch.as_tensor(np.asarray(x)) if isinstance(x, np.ndarray) else x


def attention_rollout(attentions: Sequence[ArrayLike], add_identity: bool = True) -> Tensor:
    """Attention rollout (Abnar & Zuidema, 2020) over blocks in forward order.

    Each block's attention is averaged over heads, the identity is added (the residual
    connection), rows are renormalised to sum to one, and the blocks are multiplied:
    ``R = A_L ... A_2 A_1``; ``R[b, i, j]`` is how much output token ``i`` draws from input
    token ``j``.

    Args:
        attentions: Per block ``(B, heads, N, N)`` or head-averaged ``(B, N, N)``.
        add_identity: Add the identity before renormalising (the paper's residual term).

    Returns:
        ``(B, N, N)`` float64.
    """
    if not attentions:
        raise ValueError('attention_rollout needs the attention of at least one block.')
    rollout = None
    for attn in attentions:
        a = _as_tensor(attn).double()
        if a.dim() == 4:
            a = a.mean(dim=1)
        if add_identity:
            a = a + torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    return rollout


def patch_map(attention: ArrayLike, num_prefix: int, grid: Sequence[int],
              query: str = 'cls') -> Tensor:
    """The attention a query pays to each patch, on the patch grid.

    Args:
        attention: ``(B, heads, P + G, P + G)`` (averaged over heads here) or ``(B, P + G,
            P + G)``, with ``P`` prefix tokens first and ``G = prod(grid)`` patches row-major.
        num_prefix: ``P``.
        grid: ``(H, W)`` or ``(T, H, W)``.
        query: ``'cls'``: the row of token 0 (the class token); ``'mean'``: the mean row of the
            patch tokens (for backbones without a class token, whose head pools the patches).

    Returns:
        ``(B, *grid)``.
    """
    a = _as_tensor(attention)
    if a.dim() == 4:
        a = a.mean(dim=1)
    size = int(np.prod(grid))
    if a.shape[-1] != num_prefix + size or a.shape[-2] != a.shape[-1]:
        raise ValueError(f'Attention of shape {tuple(a.shape)} does not fit {num_prefix} prefix '
                         f'tokens and a {tuple(grid)} grid.')
    if query == 'cls':
        if num_prefix < 1:
            raise ValueError("query='cls' needs a class token; use query='mean'.")
        row = a[:, 0]
    elif query == 'mean':
        row = a[:, num_prefix:].mean(dim=1)
    else:
        raise ValueError(f"query must be 'cls' or 'mean', got {query!r}.")
    return row[:, num_prefix:].reshape(a.shape[0], *grid)
