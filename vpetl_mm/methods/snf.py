"""SNF (Wang et al., CVPR 2023): adapt the residual shortcuts with a normalising flow.

Every pre-norm block computes ``h = x + A(norm1(x))`` and ``y = h + M(norm2(h))``. SNF keeps the
frozen branches ``A`` and ``M`` (and what they read) and replaces each *shortcut* by an
invertible flow, so no information on the identity path is lost (the paper's
"information-preserving" flow)::

    h' = F_attn(x)  + A(norm1(x))
    y' = F_mlp(h')  + M(norm2(h'))

Each flow ``F`` is a per-channel affine map followed by K planar layers (Rezende & Mohamed 2015)::

    z_0     = mu + exp(log_sigma) * x
    z_{k+1} = z_k + u_k * tanh(w_k . z_k + b_k)          F(x) = z_K

The wiring is host-agnostic (no host forward is replaced): a pre-hook on norm1 computes
``d_attn = F_attn(x) - x`` from the block input; a pre-hook on norm2 gives the MLP branch
``h + d_attn`` and computes ``d_mlp = F_mlp(h + d_attn) - (h + d_attn)``; a hook on the block
adds ``d_attn + d_mlp`` to the output. The deltas are formed directly (``expm1`` for the affine
part), never as ``F(x) - x``, so nothing cancels in low precision.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn

from ..models.anatomy import Anatomy
from ..registry import PETL_METHODS
from .base import BasePETLMethod

SHORTCUTS = ('attn', 'mlp')
# w . u >= -1 + _MARGIN keeps every planar layer strictly monotone along w (|det J| >= _MARGIN)
_MARGIN = 1e-3


class PlanarFlow(nn.Module):
    """``F(x) = planar_K o ... o planar_1 (mu + exp(log_sigma) * x)`` over the last axis.

    Parameters keep the names of the SNF release (``mu``, ``logsigma``; per planar layer
    ``weight`` w, ``bias`` b, ``scale`` u), stacked over the K layers.

    Args:
        dim: Channels C.
        length: Number K of planar layers after the affine map (0: affine only).
        scale_init: Half-width of the uniform init of the planar scales u (0: F = identity).
        invertible: Project u so that ``w . u >= -1 + 1e-3`` (the planar layer's invertibility
            condition); without it a trained layer may fold the space and lose information.
    """

    def __init__(self, dim: int, length: int, scale_init: float = 0.,
                 invertible: bool = True) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(dim))
        self.logsigma = nn.Parameter(torch.zeros(dim))
        self.weight = nn.Parameter(torch.empty(length, dim))
        self.bias = nn.Parameter(torch.empty(length))
        self.scale = nn.Parameter(torch.empty(length, dim))
        self.scale_init = scale_init
        self.invertible = invertible
        self.reset_parameters()

    @property
    def length(self) -> int:
        return self.weight.shape[0]

    def reset_parameters(self) -> None:
        # affine: the release's identity init; w, b: its U(-0.01, 0.01); u: U(-s, s) with the
        # default s = 0 so the flow is exactly the identity at step 0 (the release draws u from
        # U(-0.01, 0.01), a ~1e-2 perturbation). u = 0 still gets a gradient (tanh(w.z + b) != 0).
        nn.init.zeros_(self.mu)
        nn.init.zeros_(self.logsigma)
        nn.init.uniform_(self.weight, -0.01, 0.01)
        nn.init.uniform_(self.bias, -0.01, 0.01)
        nn.init.uniform_(self.scale, -self.scale_init, self.scale_init)

    def scales(self) -> torch.Tensor:
        """The planar scales used: ``u`` moved along ``w`` just enough that ``w . u >= -1 + m``.

        A no-op while the constraint holds (always at init), so training starts from the
        release's parameterisation; differentiable everywhere.
        """
        u, w = self.scale, self.weight
        if not self.invertible or self.length == 0:
            return u
        gap = torch.relu(-1. + _MARGIN - (w * u).sum(-1, keepdim=True))
        return u + gap * w / (w * w).sum(-1, keepdim=True).clamp_min(1e-12)

    def _steps(self, z: torch.Tensor):
        """Yield ``(w_k, b_k, u_k)`` cast to ``z``'s dtype."""
        u = self.scales().to(z.dtype)
        w, b = self.weight.to(z.dtype), self.bias.to(z.dtype)
        return zip(w, b, u)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """``F(x) - x``, formed without cancellation."""
        mu, logsigma = self.mu.to(x.dtype), self.logsigma.to(x.dtype)
        d = mu + torch.expm1(logsigma) * x
        z = x + d
        for w, b, u in self._steps(z):
            step = u * torch.tanh(z @ w + b).unsqueeze(-1)
            z, d = z + step, d + step
        return d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.delta(x)

    def log_det(self, x: torch.Tensor) -> torch.Tensor:
        """``log |det dF/dx|`` per token (shape ``x.shape[:-1]``)."""
        z = self.mu + self.logsigma.exp() * x
        total = self.logsigma.sum().expand(x.shape[:-1])
        for w, b, u in self._steps(z):
            t = torch.tanh(z @ w + b)
            total = total + torch.log((1 + (1 - t * t) * (w @ u)).abs())
            z = z + u * t.unsqueeze(-1)
        return total

    @torch.no_grad()
    def inverse(self, y: torch.Tensor, iters: int = 100) -> torch.Tensor:
        """``F^{-1}(y)``: each planar layer by bisection on ``a = w . z``, then the affine map.

        ``w . y = a + (w . u) tanh(a + b)`` is strictly increasing in ``a`` when
        ``w . u > -1``, with its root in ``[w . y - |w . u|, w . y + |w . u|]``.
        """
        for w, b, u in reversed(list(self._steps(y))):
            m = w @ u
            target = y @ w
            lo, hi = target - m.abs(), target + m.abs()
            for _ in range(iters):
                mid = (lo + hi) / 2
                above = mid + m * torch.tanh(mid + b) > target
                lo, hi = torch.where(above, lo, mid), torch.where(above, mid, hi)
            y = y - u * torch.tanh((lo + hi) / 2 + b).unsqueeze(-1)
        return (y - self.mu.to(y.dtype)) * torch.exp(-self.logsigma.to(y.dtype))


class ShortcutFlows(nn.Module):
    """The flows of one block and the hooks that put them on its shortcuts.

    Args:
        dim: Token width C.
        shortcuts: Which shortcuts get a flow (``'attn'``, ``'mlp'``).
        length, scale_init, invertible: See :class:`PlanarFlow`.
    """

    def __init__(self, dim: int, shortcuts: Tuple[str, ...], length: int, scale_init: float,
                 invertible: bool) -> None:
        super().__init__()
        self.attn = PlanarFlow(dim, length, scale_init, invertible) \
            if 'attn' in shortcuts else None
        self.mlp = PlanarFlow(dim, length, scale_init, invertible) if 'mlp' in shortcuts else None
        self._pending: Optional[torch.Tensor] = None

    def reset_parameters(self) -> None:
        for flow in (self.attn, self.mlp):
            if flow is not None:
                flow.reset_parameters()

    def enter_attn(self, norm1: nn.Module, args) -> None:
        """norm1's input is the block input x: ``d_attn = F_attn(x) - x``."""
        x = args[0]
        self._pending = self.attn.delta(x).to(x.dtype)

    def enter_mlp(self, norm2: nn.Module, args):
        """norm2's input is ``h``: the MLP branch reads ``h' = h + d_attn``."""
        h, pending = args[0], self._pending
        if self.attn is not None:
            if pending is None:
                raise RuntimeError('SNF: norm2 ran before norm1 in this block, so the attention '
                                   'shortcut was never seen. Is the backbone profile right?')
            h = h + pending
        if self.mlp is not None:
            d = self.mlp.delta(h).to(h.dtype)
            pending = d if pending is None else pending + d
        self._pending = pending
        return (h, *args[1:]) if self.attn is not None else None

    def leave(self, block: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        """The block output ``h + M(norm2(h'))`` becomes ``F_mlp(h') + M(norm2(h'))``."""
        pending, self._pending = self._pending, None  # no graph kept on the module (deepcopy)
        if pending is None:
            raise RuntimeError('SNF: the block ran without calling norm2. Is the backbone '
                               'profile right?')
        return output + pending


@PETL_METHODS.register_module()
class SNF(BasePETLMethod):
    """Shortcut adaptation via normalising flow: an invertible flow on each residual shortcut.

    In every block ``h' = F_attn(x) + A(norm1(x))`` and ``y = F_mlp(h') + M(norm2(h'))``,
    ``F = planar^K o affine`` (see the module docstring); the branches and their drop-path are
    the host's, the flows are not dropped (as the SNF release's block forward).

    Parameters per flow ``2C + K(2C + 1)``; per block two flows. Counts on ViT-B/16 (12 blocks,
    C = 768, head excluded): K = 0 (affine only) 36,864 = the paper's "0.036M"; the release's
    default K = 16 (``set_snf(..., flow_length=16)``, ``snf.py``): 627,072; K = 5: 221,304;
    **K = 6 (our default): 258,192**. The V-PETL Bench's 0.25M (both tables) is no uniform K:
    ``24 (1536 + 1537 K)`` jumps from 0.221M to 0.258M (+3.3%, the closest), and the bench
    publishes no SNF code or setting (its SNF model file is a copy of its VPT one), so K = 6 is
    the K nearest the published count, not a value read in a source (docs/image.md).

    Init: as the release (Wang-Yaoming/SNF@a6f85b1, ``flow.py``): the affine map starts at the
    identity (mu = log_sigma = 0) and every planar layer's w, b and scale u are drawn from
    U(-0.01, 0.01) (``scale_init=0.01``), so the output moves slightly at step 0 (such an
    instance's ``ZERO_INIT`` is False). ``scale_init=0`` starts u at 0: then every flow is the
    identity and the backbone output is unchanged at step 0. Choices where the paper / release
    are silent or loose: ``invertible=True`` projects u so that ``w . u >= -1 + 1e-3`` (the
    release does not constrain u; the projection is inactive unless training crosses the
    bound); the release
    computes the affine log-determinant and discards it, so no log-det loss is added here.

    Not mergeable: the flow acts on the shortcut only while the branch reads the unflowed
    stream, so even the affine part has no host weight to fold into (and the planar layers are
    nonlinear). Inference adds ~``K (4C)`` FLOPs per token per flow.

    Args:
        flow_length: Planar layers K after the affine map in each flow.
        shortcuts: The shortcuts that get a flow: ``('attn', 'mlp')`` (the release) or one.
        scale_init: Half-width of the uniform init of the planar scales (the release's 0.01;
            0: identity at step 0).
        invertible: Keep every planar layer invertible (see above).

    Examples:
        >>> petl = dict(type='SNF', flow_length=6)
        >>> petl = dict(type='SNF', flow_length=0)  # affine only: the paper's 0.036M
    """
    DEFAULTS = dict(flow_length=6, shortcuts=SHORTCUTS, scale_init=0.01, invertible=True)
    SITES = ('norm1', 'norm2')
    # the paper and its release define SNF on plain ViTs (timm, CLIP, EVA); no Swin setting
    PROFILES = ('mmpretrain.VisionTransformer', 'timm.VisionTransformer')

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # per instance (the contract reads it): the release's U(-0.01, 0.01) scales act at once
        self.ZERO_INIT = not (self.scale_init and self.flow_length)

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        shortcuts = self._shortcut_names()
        if not shortcuts or len(set(shortcuts)) != len(shortcuts) or \
                any(s not in SHORTCUTS for s in shortcuts):
            raise ValueError(f'SNF shortcuts={self.shortcuts!r}: name each of {SHORTCUTS} at '
                             "most once, e.g. shortcuts=('attn', 'mlp').")
        if isinstance(self.flow_length, bool) or not isinstance(self.flow_length, int) or \
                self.flow_length < 0:
            raise ValueError(f'SNF flow_length={self.flow_length!r}: use an int >= 0 '
                             '(0: the affine map only).')
        if self.scale_init < 0:
            raise ValueError(f'SNF scale_init={self.scale_init!r} must be >= 0 (the half-width '
                             'of the uniform init of the planar scales).')

    def _shortcut_names(self) -> Tuple[str, ...]:
        return (self.shortcuts, ) if isinstance(self.shortcuts, str) else tuple(self.shortcuts)

    def plan(self, anatomy: Anatomy) -> None:
        super().plan(anatomy)
        self._shortcuts = self._shortcut_names()

    def inject(self, anatomy: Anatomy) -> None:
        for block in anatomy.blocks:
            flows = ShortcutFlows(block.dim, self._shortcuts, self.flow_length,
                                  self.scale_init, self.invertible)
            self.attach(block, 'shortcut', flows)
            if flows.attn is not None:
                self.hook(anatomy.site(block, 'norm1'), flows.enter_attn, pre=True)
            self.hook(anatomy.site(block, 'norm2'), flows.enter_mlp, pre=True)
            self.hook(block.module, flows.leave)
