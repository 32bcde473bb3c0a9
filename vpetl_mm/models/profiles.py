"""Backbone anatomy as data: one profile per supported backbone family.

A PETL method is written once against *abstract sites* and never names a host module. The table
below maps, for each host family, the abstract sites to concrete module paths relative to a block.

Abstract sites (relative to a transformer block):

=========  ===========================================================
``attn``   the attention module (input: the normalised tokens)
``qkv``    the fused q/k/v ``nn.Linear`` (output ``3C``, q, k, v in order)
``proj``   the attention output projection ``nn.Linear(C, C)``
``mlp``    the MLP / FFN module
``fc1``    the MLP expansion ``nn.Linear(C, hidden)``
``fc2``    the MLP contraction ``nn.Linear(hidden, C)``
``norm1``  the norm before attention (its input is the block input)
``norm2``  the norm before the MLP (its input is the residual stream after attention)
``gate``   the gate projection of a gated MLP with separate projections (SwiGLU's ``fc1_g``;
           ``fc1`` is then its value projection ``fc1_x``)
=========  ===========================================================

``tokens`` names the token layout inside blocks, for token-space methods (prompts, Mona):
``'sequence'`` is ``(B, N, C)`` with ``prefix_tokens`` leading tokens (``str``: the attribute of
the backbone that holds the count), ``'windowed'`` is Swin's ``(B, H*W, C)`` with ``hw_shape``
passed to each block, ``'grid3d'`` is Video Swin's channels-last ``(B, D, H, W, C)``,
``'grid2d'`` is SAM's channels-last ``(B, H, W, C)`` (no prefix tokens; attention sites see
windows), and ``'conv'`` is a CNN's ``(B, C, H, W)`` between blocks (no tokens: token methods refuse it; its
MLP sites see channels-last ``(B, H, W, C)``).

``family`` selects the default hyper-parameters of each method (``'image'`` for V-PETL image
classification, ``'dense'`` for the Mona-repo detection / segmentation recipes, ``'video'`` for
V-PETL video), so the defaults reproduce the published parameter counts on each task family.

``weights`` names how the host loads pretrained files it cannot load natively (checkpoint
layouts of other code bases, Google ``.npz``, weights-only loading): a
:class:`~vpetl_mm.compat.weights.HostWeights` subclass that ``PETLBackbone`` installs on the built
host, or None when the host's own loading is all it needs. This is the one path for pretrained
loading; see :mod:`vpetl_mm.compat.weights`.

Adding a backbone is adding one entry here (see ``docs/add_backbone_profile.md``).
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Type

from ..compat.dinov2_weights import MMPretrainViTWeights
from ..compat.eva_weights import EvaWeights
from ..compat.mmseg_vit_weights import MMSegViTWeights
from ..compat.sam_weights import SAMWeights
from ..compat.swin_weights import MMDetSwinWeights, SwinWeights
from ..compat.timm_weights import TimmWeights
from ..compat.video_weights import VideoMAEWeights, VideoSwinWeights
from ..compat.weights import HostWeights

SITES = ('attn', 'qkv', 'proj', 'mlp', 'fc1', 'fc2', 'norm1', 'norm2', 'gate')


@dataclass(frozen=True)
class BackboneProfile:
    """The anatomy of one backbone family.

    Args:
        name: Registry-style name, e.g. ``'mmdet.SwinTransformer'``.
        classes: Dotted class paths this profile describes (subclasses match too).
        family: Default hyper-parameter family: ``'image'``, ``'dense'`` or ``'video'``.
        blocks: Glob (``*`` = one path component) of the block modules, in forward order.
        sites: Abstract site -> module path relative to a block.
        tokens: Token layout inside blocks (see the module docstring).
        prefix_tokens: Number of leading non-patch tokens, or the backbone attribute holding it.
        root: Path of the described module inside the built backbone (``''``: the backbone).
        patches: Abstract site (or ``'block'``: the block itself) -> name of a host patch in
            :mod:`vpetl_mm.models.host_patches`, applied to every block (output-identical
            re-implementations that expose a site to hooks or fix a host limitation).
        grid: For ``'sequence'`` layouts: path of the patch-embedding convolution whose output
            shape gives the token grid ``(H, W)`` or ``(T, H, W)`` (spatial methods need it).
        kv_attention: Name of a host patch of the ``attn`` site that accepts extra keys and
            values (:func:`~vpetl_mm.models.host_patches.extra_kv`); prefix methods need it.
        extra_tokens: Whether blocks accept tokens a method inserts into the sequence (VPT's
            prompts); False where attention positions are tied to the patch grid (RoPE), so
            methods with ``INSERTS_TOKENS`` refuse the host.
        weights: See the module docstring.
    """
    name: str
    classes: Tuple[str, ...]
    family: str
    blocks: str
    sites: Dict[str, str]
    tokens: str
    prefix_tokens: object = 0
    root: str = ''
    patches: Dict[str, str] = field(default_factory=dict)
    grid: str = ''
    kv_attention: str = ''
    extra_tokens: bool = True
    weights: Optional[Type[HostWeights]] = None

    def install_weights(self, backbone) -> Optional[HostWeights]:
        """Install :attr:`weights` on the built host (before the load reporter, so that every
        load report describes converted, host-named keys); None where the profile has none."""
        return self.weights(backbone) if self.weights is not None else None


_SWIN_2D_SITES = dict(attn='attn', qkv='attn.w_msa.qkv', proj='attn.w_msa.proj', mlp='ffn',
                      fc1='ffn.layers.0.0', fc2='ffn.layers.1', norm1='norm1', norm2='norm2')
_TIMM_SITES = dict(attn='attn', qkv='attn.qkv', proj='attn.proj', mlp='mlp', fc1='mlp.fc1',
                   fc2='mlp.fc2', norm1='norm1', norm2='norm2')

PROFILES: Dict[str, BackboneProfile] = {p.name: p for p in (
    BackboneProfile(
        name='mmpretrain.VisionTransformer',
        classes=('mmpretrain.models.backbones.vision_transformer.VisionTransformer',),
        family='image', blocks='layers.*', tokens='sequence', prefix_tokens='num_extra_tokens',
        grid='patch_embed.projection', kv_attention='mmpretrain_attention',
        # Google JAX .npz (V-PETL's ViT-B/16), Meta's DINOv2 files; mmpretrain .pth as the host
        # (DINOv2: layer_scale_init_value; CLIP: pre_norm=True; docs/foundation.md)
        weights=MMPretrainViTWeights,
        sites=dict(attn='attn', qkv='attn.qkv', proj='attn.proj', mlp='ffn',
                   fc1='ffn.layers.0.0', fc2='ffn.layers.1', norm1='ln1', norm2='ln2')),
    BackboneProfile(
        name='mmpretrain.SwinTransformer',
        classes=('mmpretrain.models.backbones.swin_transformer.SwinTransformer',),
        family='image', blocks='stages.*.blocks.*', tokens='windowed', sites=_SWIN_2D_SITES),
    BackboneProfile(
        name='mmdet.SwinTransformer', classes=('mmdet.models.backbones.swin.SwinTransformer',),
        family='dense', blocks='stages.*.blocks.*', tokens='windowed', sites=_SWIN_2D_SITES,
        weights=MMDetSwinWeights),  # Microsoft / OpenMMLab layouts, any convert_weights
    BackboneProfile(
        name='mmseg.SwinTransformer', classes=('mmseg.models.backbones.swin.SwinTransformer',),
        family='dense', blocks='stages.*.blocks.*', tokens='windowed', sites=_SWIN_2D_SITES,
        weights=SwinWeights),  # Microsoft / OpenMMLab layouts
    BackboneProfile(
        name='mmaction.VisionTransformer',
        classes=('mmaction.models.backbones.vit_mae.VisionTransformer',),
        family='video', blocks='blocks.*', tokens='sequence', grid='patch_embed.projection',
        sites=dict(attn='attn', qkv='attn.qkv', proj='attn.proj', mlp='mlp',
                   fc1='mlp.layers.0.0', fc2='mlp.layers.1', norm1='norm1', norm2='norm2'),
        # VideoMAE adds its q/v biases with F.linear(x, qkv.weight, ...): route through qkv.
        patches=dict(attn='videomae_attention'), kv_attention='videomae_attention',
        weights=VideoMAEWeights),  # VideoMAE / AdaptFormer / fine-tuned / mmaction layouts
    BackboneProfile(
        name='mmaction.SwinTransformer3D',
        classes=('mmaction.models.backbones.swin.SwinTransformer3D',),
        family='video', blocks='layers.*.blocks.*', tokens='grid3d', sites=_TIMM_SITES,
        # The host checkpoints blocks in reentrant mode (no PETL gradients): see the patch.
        patches=dict(block='swin3d_block'), kv_attention='swin3d_window_attention',
        weights=VideoSwinWeights),  # Video Swin K400 files, weights-only
    BackboneProfile(
        # EVA-02 (mmpretrain configs/eva02): RoPE on the patch tokens, SwiGLU MLP. fc1 is the
        # fused gate-and-value expansion w12 (C -> 2 * hidden: gate half first), fc2 is w3.
        name='mmpretrain.ViTEVA02', classes=('mmpretrain.models.backbones.vit_eva02.ViTEVA02',),
        family='image', blocks='layers.*', tokens='sequence', prefix_tokens='num_extra_tokens',
        grid='patch_embed.projection', extra_tokens=False,  # RoPE: no inserted tokens
        sites=dict(attn='attn', qkv='attn.qkv', proj='attn.proj', mlp='mlp', fc1='mlp.w12',
                   fc2='mlp.w3', norm1='norm1', norm2='norm2')),
    BackboneProfile(
        # ConvNeXt (V1; V2 with use_grn=True): a CNN. Its block is depthwise conv -> norm ->
        # pointwise MLP (Linear layers on channels-last maps) -> layer scale; the patch exposes
        # that MLP as the 'mlp' site. No attention sites: attention methods refuse it.
        name='mmpretrain.ConvNeXt', classes=('mmpretrain.models.backbones.convnext.ConvNeXt',),
        family='image', blocks='stages.*.*', tokens='conv', patches=dict(block='convnext_block'),
        sites=dict(mlp='mlp', fc1='pointwise_conv1', fc2='pointwise_conv2', norm2='norm')),
    BackboneProfile(
        name='timm.VisionTransformer', classes=('timm.models.vision_transformer.VisionTransformer',),
        family='image', blocks='timm_model.blocks.*', root='timm_model', tokens='sequence',
        prefix_tokens='num_prefix_tokens', grid='timm_model.patch_embed.proj', sites=_TIMM_SITES,
        # num_prefix_tokens counts the class token and DINOv2's registers (reg_tokens); layer
        # scale (ls1/ls2) and CLIP's norm_pre sit outside the sites: docs/foundation.md
        kv_attention='timm_attention', weights=TimmWeights),  # timm files, timm's converters
    BackboneProfile(
        # mmseg's plain ViT (UperNet-ViT; the dense DINOv2 / CLIP host). Its attention is
        # torch.nn.MultiheadAttention (F.linear on its own parameters): the patch calls the
        # in-projection through a parameter-sharing Linear view (the qkv site) and out_proj as
        # a module; state dict unchanged. The cls token leads unless with_cls_token=False.
        name='mmseg.VisionTransformer', classes=('mmseg.models.backbones.vit.VisionTransformer',),
        family='dense', blocks='layers.*', tokens='sequence', prefix_tokens='with_cls_token',
        grid='patch_embed.projection', patches=dict(attn='mmcv_attention'),
        kv_attention='mmcv_attention', weights=MMSegViTWeights,  # DINOv2 / CLIP layouts
        sites=dict(attn='attn', qkv='attn.qkv', proj='attn.attn.out_proj', mlp='ffn',
                   fc1='ffn.layers.0.0', fc2='ffn.layers.1', norm1='ln1', norm2='ln2')),
    BackboneProfile(
        # SAM's image encoder (mmpretrain configs/sam): (B, H, W, C) tokens, windowed attention
        # with global blocks (global_attn_indexes), decomposed relative positions in the
        # attention, no class token. No prefix keys (rel-pos has no column for them) and no
        # inserted tokens. mmpretrain's converted SAM files load natively, Meta's through
        # compat/sam_weights.py.
        name='mmpretrain.ViTSAM', classes=('mmpretrain.models.backbones.vit_sam.ViTSAM',),
        family='image', blocks='layers.*', tokens='grid2d', grid='patch_embed.projection',
        extra_tokens=False, weights=SAMWeights,
        sites=dict(attn='attn', qkv='attn.qkv', proj='attn.proj', mlp='ffn',
                   fc1='ffn.layers.0.0', fc2='ffn.layers.1', norm1='ln1', norm2='ln2')),
    BackboneProfile(
        # timm Eva (EVA-02 B/L: eva02_base_patch14_224): RoPE, SwiGLU with separate fc1_g (the
        # 'gate' site), fc1_x (fc1) and fc2, separate q/k/v projections, which the patch fuses
        # into timm's own qkv_fused layout so that 'qkv' and its q/k/v slices exist.
        name='timm.Eva', classes=('timm.models.eva.Eva',), family='image',
        blocks='timm_model.blocks.*', root='timm_model', tokens='sequence',
        prefix_tokens='num_prefix_tokens', grid='timm_model.patch_embed.proj',
        extra_tokens=False, patches=dict(attn='eva_fused_qkv'),  # RoPE: no inserted tokens
        weights=EvaWeights,  # timm's Eva files (separate q/k/v) onto the fused layout
        sites=dict(attn='attn', qkv='attn.qkv', proj='attn.proj', mlp='mlp', fc1='mlp.fc1_x',
                   gate='mlp.fc1_g', fc2='mlp.fc2', norm1='norm1', norm2='norm2')),
)}


def register_profile(profile: BackboneProfile, force: bool = False) -> BackboneProfile:
    """Add a profile to :data:`PROFILES` (``force=True`` replaces one of the same name)."""
    unknown = set(profile.sites) - set(SITES)
    if unknown:
        raise ValueError(f'Profile {profile.name!r} defines unknown sites {sorted(unknown)}; '
                         f'abstract sites are {SITES}.')
    if profile.name in PROFILES and not force:
        raise KeyError(f'A profile named {profile.name!r} exists; pass force=True to replace it.')
    PROFILES[profile.name] = profile
    return profile


def _class_names(obj: object) -> Tuple[str, ...]:
    return tuple(f'{c.__module__}.{c.__qualname__}' for c in type(obj).__mro__)


def find_profile(backbone: object, name: Optional[str] = None) -> BackboneProfile:
    """Return the profile describing ``backbone``.

    Args:
        backbone: The built host backbone.
        name: Force a profile by name instead of matching the backbone's class.

    Raises:
        KeyError: No profile describes the backbone (the message lists the supported families).
    """
    if name is not None:
        if name not in PROFILES:
            raise KeyError(f'Unknown backbone profile {name!r}. Known profiles: '
                           f'{sorted(PROFILES)}. Add one in vpetl_mm/models/profiles.py.')
        return PROFILES[name]
    # the most specific profile wins: ViTEVA02 subclasses mmpretrain's VisionTransformer
    matches = []
    for profile in PROFILES.values():
        module = backbone
        for part in filter(None, profile.root.split('.')):
            module = getattr(module, part, None)
        mro = _class_names(module) if module is not None else ()
        depths = [mro.index(c) for c in profile.classes if c in mro]
        if depths:
            matches.append((min(depths), profile))
    if matches:
        return min(matches, key=lambda m: m[0])[1]
    raise KeyError(
        f'No backbone profile describes {type(backbone).__module__}.{type(backbone).__name__}. '
        f'Supported families: {sorted(PROFILES)}. Add a profile in vpetl_mm/models/profiles.py '
        '(see docs/add_backbone_profile.md) or pass profile=<name> to PETLBackbone.')
