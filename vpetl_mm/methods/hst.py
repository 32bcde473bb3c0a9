"""HST (Lin et al., 2023): a hierarchical side network fed by meta-registers and bridges.

Before every frozen block a learnable *meta token* joins the sequence; its output (the block's
answer to it, a "meta-register") and the block's patch tokens feed a small four-stage
hierarchical side network on the image (strides 4, 8, 16, 32). Side block ``j`` of a stage
reads backbone block ``j`` of the matching quarter: its patch tokens, bridged to the stage width
(``T_s``: Linear ``D -> c_s``) and resized to the stage grid, are added to the side tokens, and
its meta-register (bridged and normalised) with the bridged tokens' mean are the keys / values
of the side block's cross-attention. The mean of the last stage's tokens is the side feature.

HST's head reads that feature alone (AFeng-x/HST@661c02b, ``models/vit_hsn.py``, ``forward``:
``head(fc_norm(side))``): ``head='side'`` hands it to the head in place of the host's output
(the benchmark configs, whose head reads ``dims[-1]`` = 72 channels); the default
``head='host'`` adds its projection to ``D`` to the host's output, so any head of width D keeps
working.
"""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.anatomy import Anatomy
from ..models.tokens import TokenGrid, insert_tokens, remove_tokens
from ..registry import PETL_METHODS
from .layers import attention
from .side import SideNetworkMethod

Tensor = torch.Tensor


class SideEmbed(nn.Module):
    """Tokens of the next side stage: HST's stem (``first``: conv 3x3 s2 + BN + ReLU + conv
    2x2 s2 on the image) or its overlapping patch embedding (conv 3x3 s2), then a LayerNorm."""

    def __init__(self, in_channels: int, channels: int, first: bool) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, 2, 1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 2, 2)) if first else \
            nn.Conv2d(in_channels, channels, 3, 2, 1)
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tuple[Tensor, int, int]:
        x = self.conv(x)
        H, W = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), H, W


class CrossSideBlock(nn.Module):
    """HST's side block: cross-attention from the side tokens to the meta-register and global
    token, plus the bridged backbone tokens, plus an MLP (pre-norm, qkv biases)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: Tensor, context: Tensor, feature: Tensor) -> Tensor:
        x = x + self.proj(attention(self.q(self.norm1(x)), self.k(context), self.v(context),
                                    self.heads))
        x = x + feature
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class SideStage(nn.Module):
    """One stage: embedding, side blocks, the bridge ``T_s`` and the meta-register norms."""

    def __init__(self, dim: int, in_channels: int, channels: int, heads: int, depth: int,
                 mlp_ratio: float, first: bool) -> None:
        super().__init__()
        self.embed = SideEmbed(in_channels, channels, first)
        self.blocks = nn.ModuleList(CrossSideBlock(channels, heads, mlp_ratio)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(channels)
        self.bridge = nn.Linear(dim, channels)
        self.meta_norms = nn.ModuleList(nn.LayerNorm(channels) for _ in range(depth))


class HierarchicalSideNetwork(nn.Module):
    """The meta tokens, the side stages and the projection of the side feature to ``D``."""

    def __init__(self, dim: int, depth: int, meta: int, channels: Sequence[int],
                 heads: Sequence[int], mlp_ratio: float, project: bool = True) -> None:
        super().__init__()
        self.meta = nn.Parameter(torch.empty(depth, meta, dim))
        per = depth // len(channels)
        self.stages = nn.ModuleList(
            SideStage(dim, 3 if s == 0 else channels[s - 1], c, h, per, mlp_ratio, s == 0)
            for s, (c, h) in enumerate(zip(channels, heads)))
        self.final_norm = nn.BatchNorm1d(channels[-1], affine=False, eps=1e-6)
        # the projection to D of head='host' (HST's own head reads the c_last-wide feature)
        self.up = nn.Linear(channels[-1], dim) if project else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # HST's init: xavier meta tokens (fan-in n * D, fan-out D), trunc-normal(0.02) linears
        # with zero biases, unit / zero norms, He-normal (fan-out) convs with zero biases
        n, dim = self.meta.shape[1:]
        bound = math.sqrt(6. / ((n + 1) * dim))
        nn.init.uniform_(self.meta, -bound, bound)
        for m in self.stages.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
                m.reset_parameters()
            elif isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0., math.sqrt(2. / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.final_norm.reset_running_stats()
        if isinstance(self.up, nn.Linear):  # the side feature joins the head's input from zero
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def forward(self, image: Tensor, registers: List[Tensor], maps: List[Tensor]) -> Tensor:
        """Side feature ``(B, D)`` from the image, the meta-registers ``(B, n, D)`` and the
        backbone patch maps ``(B, D, h, w)`` of every block, in block order."""
        x, per = image, len(registers) // len(self.stages)
        for s, stage in enumerate(self.stages):
            x, H, W = stage.embed(x)
            for j, block in enumerate(stage.blocks):
                i = s * per + j
                register = stage.meta_norms[j](stage.bridge(registers[i]))
                # bridge, then resize: the same as HST's resize-then-bridge (bilinear weights
                # sum to 1, so a per-pixel affine map commutes), on D / c_s fewer channels
                feature = stage.bridge(maps[i].permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
                feature = F.interpolate(feature, size=(H, W), mode='bilinear',
                                        align_corners=False).flatten(2).transpose(1, 2)
                context = torch.cat([register, feature.mean(dim=1, keepdim=True)], dim=1)
                x = block(x, context, feature)
            x = stage.norm(x)
            if s < len(self.stages) - 1:
                x = x.transpose(1, 2).reshape(x.shape[0], -1, H, W)
        pooled = x.mean(dim=1)
        if self.training and pooled.shape[0] == 1:  # a last batch of one: no batch statistics
            bn = self.final_norm
            return self.up(F.batch_norm(pooled, bn.running_mean, bn.running_var, eps=bn.eps))
        return self.up(self.final_norm(pooled))


@PETL_METHODS.register_module()
class HST(SideNetworkMethod):
    """Hierarchical side-tuning: meta-registers + bridges into a multi-scale side network.

    Follows HST's released classification code (AFeng-x/HST@661c02b, ``models/vit_hsn.py``): per
    block one meta token (xavier) is inserted before the block and its output taken out after it
    (the host's own code between blocks never sees it); four side stages of widths (32, 48, 64,
    72), heads (2, 4, 8, 12), three blocks each (one per backbone block of the matching
    quarter), MLP ratio 4; the side feature is the BatchNorm (no affine) of the mean of the last
    stage (a training batch of one uses the running statistics).

    The backbone is *not* detached: HST's meta tokens train through the frozen blocks, and HST's
    code also trains every block's two LayerNorms (``tune_norms``), so backward runs through
    the backbone as for VPT-deep (``DETACHES_BACKBONE`` is False, the output changes at step
    0).

    Head input (``head``): HST classifies from the side feature alone. ``head='side'`` (HST's,
    the benchmark configs) replaces the host's last output by the ``(B, dims[-1])`` side
    feature, so the head's ``in_channels`` must be ``dims[-1]`` (72). ``head='host'`` (default,
    so that any head of the host's width D works) adds ``up(side)`` instead, ``up: c_last -> D``
    zero-init, to every position of the last output.

    ViT-B/16: HST's own count, side network 727,976 + block norms 36,864 = 764,840 with
    ``head='side'`` (2% below the published 0.78M); ``head='host'`` adds ``up``
    72 * 768 + 768 = 56,064: 820,904 (docs/image.md).

    Args:
        dims: Side stage widths (the depth must be divisible by their count).
        heads: Side attention heads per stage.
        mlp_ratio: Side MLP ratio.
        meta: Meta tokens per block.
        tune_norms: Train every block's norm1 / norm2 (HST's ``freeze_vit``).
        head: ``'host'`` or ``'side'`` (what the head reads, see above).

    Examples:
        >>> petl = dict(type='HST', dims=(32, 48, 64, 72), heads=(2, 4, 8, 12))
        >>> model = dict(backbone=dict(petl=dict(type='HST', head='side')),
        ...              head=dict(in_channels=72))  # HST's own head input
    """
    DEFAULTS = dict(dims=(32, 48, 64, 72), heads=(2, 4, 8, 12), mlp_ratio=4., meta=1,
                    tune_norms=True, head='host')
    SITES = ('norm1', 'norm2')
    PROFILES = ('mmpretrain.VisionTransformer', 'timm.VisionTransformer')
    TOKENS = ('sequence', )
    INSERTS_TOKENS = True  # its meta tokens
    ZERO_INIT = False

    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        dims, heads = tuple(self.dims), tuple(self.heads)
        if not dims or len(dims) != len(heads) or any(
                h < 1 or d % h for d, h in zip(dims, heads)):
            raise ValueError(f'HST needs one head count per stage, each dividing its width: '
                             f'dims={dims}, heads={heads}.')
        if len(anatomy.blocks) % len(dims):
            raise ValueError(f'HST spreads the {len(anatomy.blocks)} blocks evenly over its '
                             f'{len(dims)} side stages: give a number of dims dividing it.')
        if self.meta < 1:
            raise ValueError(f'HST needs meta >= 1, got {self.meta}.')
        if self.head not in ('host', 'side'):
            raise ValueError(f"HST head={self.head!r}: use 'host' (add the side feature to the "
                             "host output) or 'side' (hand the head the side feature alone).")

    def inject(self, anatomy: Anatomy) -> None:
        dim, depth = anatomy.blocks[0].dim, len(anatomy.blocks)
        self.side = self.attach_root(anatomy, 'side', HierarchicalSideNetwork(
            dim, depth, self.meta, tuple(self.dims), tuple(self.heads), self.mlp_ratio,
            project=self.head == 'host'))
        self.grid = TokenGrid(anatomy, self.hook)
        self.hook(anatomy.backbone, self._read_image, pre=True)
        self.hook_blocks(anatomy, self._insert, self._take_out)
        self.reset_capture()

    def trainable_base_params(self, anatomy: Anatomy):
        if not self.tune_norms:
            return set()
        return {f'{anatomy.site_path(b, s)}.{n}' for b in anatomy.blocks for s in self.SITES
                for n, _ in anatomy.site(b, s).named_parameters()}

    # -- capture: hooks (bound-method partials, so deep copies rebind them) --------------------
    def reset_capture(self) -> None:
        self.image, self.registers, self.maps = None, {}, {}

    def _read_image(self, module, args) -> None:
        self.reset_capture()  # also for host runs outside PETLBackbone.forward (calibration)
        self.image = args[0]
        if not isinstance(self.image, Tensor) or self.image.dim() != 4:
            raise ValueError('HST runs its side network on the input images (B, 3, H, W); '
                             f'the backbone got {type(self.image).__name__}.')

    def _insert(self, index: int, block, args):
        x, rest = args[0], args[1:]
        meta = self.side.meta[index].to(x.dtype).expand(x.shape[0], -1, -1)
        return (insert_tokens(x, meta, 0), *rest)

    def _take_out(self, index: int, block, args, output: Tensor) -> Tensor:
        self.registers[index], output = remove_tokens(output, 0, self.side.meta.shape[1])
        self.maps[index] = self.grid.split(output, index)[1]
        return output

    def add_back(self, output, side: Tensor):
        """``head='side'``: the side feature replaces the last output (HST's head input)."""
        if self.head == 'host':
            return super().add_back(output, side)
        if not isinstance(output, (tuple, list)):
            return side
        return type(output)([*output[:-1], side])

    def side_forward(self) -> Tensor:
        """The side feature (``(B, D)``; ``(B, dims[-1])`` with ``head='side'``) from the
        captured image, registers and patch maps."""
        depth = self.side.meta.shape[0]
        if self.image is None or len(self.registers) < depth:
            raise RuntimeError('HST read the outputs of only '
                               f'{len(self.registers)} of {depth} blocks: the host forward '
                               'did not run every block.')
        return self.side(self.image, [self.registers[i] for i in range(depth)],
                         [self.maps[i] for i in range(depth)])
