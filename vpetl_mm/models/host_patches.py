"""Minimal, output-identical forward patches that make a host expose an abstract site.

A patch is applied per instance (never to the host class) and only where a profile names it.
"""
import types
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def extra_kv(attn: nn.Module, batch: int) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """Extra keys and values that PETL modules attached to ``attn`` contribute (prefixes).

    Providers are kept in ``attn._petl_kv`` (a plain list, not child modules: they are already
    registered in their blocks); each returns ``(k, v)`` of shape ``(heads, L, head_dim)``,
    broadcast here to every sequence (or window) of the batch.
    """
    providers = getattr(attn, '_petl_kv', None)
    if not providers:
        return None
    pairs = [p.key_values() for p in providers]
    k = torch.cat([kv[0] for kv in pairs], dim=1)
    v = torch.cat([kv[1] for kv in pairs], dim=1)
    return k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)


def _with_extra_kv(k: torch.Tensor, v: torch.Tensor, extra: Optional[Tuple[torch.Tensor, torch.Tensor]]):
    if extra is None:
        return k, v, 0
    k_x, v_x = extra[0].to(k.dtype), extra[1].to(v.dtype)
    return torch.cat((k_x, k), dim=2), torch.cat((v_x, v), dim=2), k_x.shape[2]


def _videomae_attention_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """mmaction2 VideoMAE ``Attention.forward`` with the qkv projection called as a module.

    The host computes ``F.linear(x, self.qkv.weight, cat(q_bias, 0, v_bias))``, which bypasses
    ``self.qkv`` (and any hook on it). ``self.qkv(x) + bias`` is the same arithmetic. Prefix
    keys / values (:func:`extra_kv`) are prepended when a method provides them.
    """
    B, N, _ = x.shape
    qkv = self.qkv(x)
    if getattr(self, 'q_bias', None) is not None:
        qkv = qkv + torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
    qkv = qkv.reshape(B, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
    k, v, _ = _with_extra_kv(k, v, extra_kv(self, B))
    attn = self.attn_drop((q @ k.transpose(-2, -1)).softmax(dim=-1))
    x = (attn @ v).transpose(1, 2).reshape(B, N, -1)
    return self.proj_drop(self.proj(x))


def _swin3d_window_attention_forward(self: nn.Module, x: torch.Tensor,
                                     mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """mmaction2 ``WindowAttention3D.forward`` that accepts prefix keys / values.

    Prefix columns get no relative-position bias and no shift mask (they belong to no window
    position): both are padded with zeros. Without prefixes this is the host's arithmetic.
    """
    B_, N, C = x.shape
    qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
    k, v, n_extra = _with_extra_kv(k, v, extra_kv(self, B_))
    attn = q @ k.transpose(-2, -1)
    bias = self.relative_position_bias_table[self.relative_position_index[:N, :N].reshape(-1)]
    bias = bias.reshape(N, N, -1).permute(2, 0, 1)
    if n_extra:
        bias = F.pad(bias, (n_extra, 0))
        mask = None if mask is None else F.pad(mask, (n_extra, 0))
    attn = attn + bias.unsqueeze(0)
    if mask is not None:
        nW = mask.shape[0]
        attn = attn.view(B_ // nW, nW, self.num_heads, N, N + n_extra) + mask[None, :, None]
        attn = attn.view(-1, self.num_heads, N, N + n_extra)
    attn = self.attn_drop(self.softmax(attn))
    x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
    return self.proj_drop(self.proj(x))


def _swin3d_block_forward(self: nn.Module, x: torch.Tensor,
                          mask_matrix: torch.Tensor) -> torch.Tensor:
    """mmaction2 ``SwinTransformerBlock3D.forward`` with non-reentrant checkpointing.

    The host calls ``torch.utils.checkpoint.checkpoint`` in reentrant mode, whose output needs
    no gradient when its *input* needs none: behind a frozen patch embedding that is every
    block, so PETL parameters inside would silently get no gradient. Non-reentrant mode tracks
    parameters too (and re-runs forward hooks during recomputation, which PETL hooks allow).
    """
    checkpointed = self.with_cp and torch.is_grad_enabled()
    if checkpointed:
        y = checkpoint(self.forward_part1, x, mask_matrix, use_reentrant=False)
    else:
        y = self.forward_part1(x, mask_matrix)
    x = x + self.drop_path(y)
    if checkpointed:
        return x + checkpoint(self.forward_part2, x, use_reentrant=False)
    return x + self.forward_part2(x)


_swin3d_block_forward.non_reentrant = True  # Anatomy.uses_reentrant_checkpointing reads it

def _mmpretrain_attention_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """mmpretrain ``MultiheadAttention.forward`` that accepts prefix keys / values.

    Without prefixes it *is* the host's forward (called unchanged); with them, the host's
    arithmetic over ``[prefix; tokens]`` keys and values, through the host's own attention
    function (which honours its ``qk_scale``).
    """
    extra = extra_kv(self, x.shape[0])
    if extra is None:
        return type(self).forward(self, x)
    B, N, _ = x.shape
    qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dims).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    k_all, v_all, _ = _with_extra_kv(k, v, extra)
    out = self.scaled_dot_product_attention(q, k_all, v_all,
                                            dropout_p=self.attn_drop if self.training else 0.)
    out = self.proj(out.transpose(1, 2).reshape(B, N, self.embed_dims))
    out = self.out_drop(self.gamma1(self.proj_drop(out)))
    return v.squeeze(1) + out if self.v_shortcut else out


def _timm_attention_forward(self: nn.Module, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """timm ``Attention.forward`` that accepts prefix keys / values.

    Without prefixes it is the host's forward, called unchanged (any timm version). With them
    it re-does the default path of ``timm.layers.Attention`` (q/k norms, fused attention at
    ``self.scale``, output norm and gate when the host has them) over ``[prefix; tokens]``; an
    attention mask or causal attention has no defined meaning for prefixes and is refused.
    """
    extra = extra_kv(self, x.shape[0])
    if extra is None:
        return type(self).forward(self, x, *args, **kwargs)
    if any(a is not None and a is not False for a in list(args) + list(kwargs.values())):
        raise ValueError('Prefix keys / values on a timm Attention called with an attention '
                         'mask or is_causal are not supported: use the default call.')
    B, N, _ = x.shape
    gate = getattr(self, 'gate', None)
    gate = gate(x).sigmoid() if gate is not None else None
    qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = self.q_norm(q), self.k_norm(k)
    k, v, _ = _with_extra_kv(k, v, extra)
    out = F.scaled_dot_product_attention(q, k, v, scale=self.scale,
                                         dropout_p=self.attn_drop.p if self.training else 0.)
    out = out.transpose(1, 2).reshape(B, N, getattr(self, 'attn_dim', q.shape[1] * q.shape[3]))
    out = getattr(self, 'norm', nn.Identity())(out)
    if gate is not None:
        out = out * gate
    return self.proj_drop(self.proj(out))


class _ConvNeXtMLP(nn.Module):
    """The pointwise MLP of one mmpretrain ``ConvNeXtBlock`` (channels-last), as a callable
    module: ``pointwise_conv1 -> act -> grn -> pointwise_conv2``. It owns no parameters and is
    not a child of the block (the state dict is unchanged); it is the block's ``mlp`` site."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, 'block', block)  # a reference, not a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block = self.block
        x = block.act(block.pointwise_conv1(x))
        if block.grn is not None:
            x = block.grn(x, data_format='channel_last')
        return block.pointwise_conv2(x)


def _convnext_block_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """mmpretrain ``ConvNeXtBlock.forward`` (``linear_pw_conv=True``) through its ``mlp`` view.

    The same arithmetic as the host: depthwise conv, channels-last norm, the pointwise MLP
    (:class:`_ConvNeXtMLP`, so hooks on the ``mlp`` site see its input and output), layer
    scale, residual. Checkpointing is non-reentrant (the host's reentrant mode would give PETL
    parameters no gradient behind a frozen stem, as for Video Swin).
    """
    def inner(x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.depthwise_conv(x).permute(0, 2, 3, 1), data_format='channel_last')
        y = self.mlp(y).permute(0, 3, 1, 2)
        if self.gamma is not None:
            y = y.mul(self.gamma.view(1, -1, 1, 1))
        return x + self.drop_path(y)

    if self.with_cp and x.requires_grad:
        return checkpoint(inner, x, use_reentrant=False)
    return inner(x)


def _convnext_block_setup(block: nn.Module) -> None:
    if not block.linear_pw_conv:
        raise ValueError('PETL on mmpretrain ConvNeXt needs linear_pw_conv=True (the default, '
                         'as the published weights): its pointwise layers are the fc1 / fc2 '
                         'sites.')
    object.__setattr__(block, 'mlp', _ConvNeXtMLP(block))


_convnext_block_forward.non_reentrant = True
_convnext_block_forward.setup = _convnext_block_setup


class _InProjection(nn.Linear):
    """The fused q/k/v in-projection of a ``torch.nn.MultiheadAttention`` as a callable
    ``nn.Linear`` (the ``qkv`` site). Its ``weight`` / ``bias`` *are* the attention's
    ``in_proj_weight`` / ``in_proj_bias`` (same Parameter objects, read through properties): it
    registers no parameters, so the state dict and the parameter names are the host's, and a
    method that folds into ``weight`` in place folds into the host's parameter. (mmseg's random
    init, which trunc-normals every ``nn.Linear`` weight, then reaches the in-projection too,
    as it reaches ``out_proj``; pretrained files overwrite both.)"""

    def __init__(self, mha: nn.MultiheadAttention) -> None:  # pylint: disable=super-init-not-called
        nn.Module.__init__(self)
        object.__setattr__(self, 'mha', mha)  # a reference, not a submodule
        self.in_features, self.out_features = mha.embed_dim, 3 * mha.embed_dim

    weight = property(lambda self: self.mha.in_proj_weight)
    bias = property(lambda self: self.mha.in_proj_bias)


def _mmcv_attention_forward(self: nn.Module, query: torch.Tensor, key=None, value=None,
                            identity=None, *args, **kwargs) -> torch.Tensor:
    """mmcv ``MultiheadAttention.forward`` (mmseg's ``VisionTransformer`` blocks) through modules.

    ``torch.nn.MultiheadAttention`` computes its projections with ``F.linear`` on its own
    parameters, so no hook would see them. Here the in-projection is called as the ``qkv`` view
    (:class:`_InProjection`) and the output projection as its ``out_proj`` module; the
    arithmetic is the host's (scale ``head_dim ** -0.5``, attention dropout, ``proj_drop``,
    ``dropout_layer``, identity). Prefix keys / values are prepended when a method provides
    them. Only self-attention, as mmseg's ViT calls it, is defined.
    """
    if key is not None or value is not None or any(
            a is not None for a in list(args) + list(kwargs.values())):
        raise ValueError('PETL on mmcv MultiheadAttention supports self-attention without '
                         'positions or masks (as mmseg VisionTransformer calls it).')
    mha, identity = self.attn, query if identity is None else identity
    B, N, C = query.shape
    qkv = self.qkv(query).reshape(B, N, 3, mha.num_heads, C // mha.num_heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    k, v, _ = _with_extra_kv(k, v, extra_kv(self, B))
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=mha.dropout if self.training else 0.)
    out = mha.out_proj(out.transpose(1, 2).reshape(B, N, C))
    return identity + self.dropout_layer(self.proj_drop(out))


def _mmcv_attention_setup(attn: nn.Module) -> None:
    mha = attn.attn
    if not (attn.batch_first and mha._qkv_same_embed_dim and mha.in_proj_weight is not None):
        raise ValueError('PETL on mmcv MultiheadAttention needs batch_first=True and one fused '
                         'in-projection (as mmseg VisionTransformer builds it).')
    attn.qkv = _InProjection(mha)  # a child (peft finds targets by module name), stateless


_mmcv_attention_forward.setup = _mmcv_attention_setup


def _eva_fused_qkv_forward(self: nn.Module, *args, **kwargs) -> torch.Tensor:
    """timm ``EvaAttention.forward``, unchanged, with ``qkv_bias_separate`` set (below)."""
    return type(self).forward(self, *args, **kwargs)


def _eva_fused_qkv_setup(attn: nn.Module) -> None:
    """timm ``EvaAttention`` in timm's fused layout (``qkv_fused=True``) computes
    ``F.linear(x, qkv.weight, cat(q_bias, k_bias, v_bias))``, bypassing the ``qkv`` module;
    ``qkv_bias_separate=True`` (a timm option, the same arithmetic) calls ``self.qkv(x)`` and
    adds the biases. Hosts with separate ``q_proj`` / ``k_proj`` / ``v_proj`` (EVA-02 B/L's
    default ``qkv_fused=False``) are refused: vpetl_mm never renames host parameters, and the
    fused layout is one timm option away (their files load through
    :mod:`vpetl_mm.compat.eva_weights`)."""
    if attn.qkv is None:
        raise ValueError('PETL on timm Eva needs the fused attention: build it with '
                         "qkv_fused=True (e.g. TIMMBackbone(model_name='eva02_base_patch14_224', "
                         'qkv_fused=True)); EVA-02 files with separate q/k/v still load.')
    attn.qkv_bias_separate = True


_eva_fused_qkv_forward.setup = _eva_fused_qkv_setup

HOST_PATCHES: Dict[str, Callable] = dict(
    videomae_attention=_videomae_attention_forward,
    swin3d_window_attention=_swin3d_window_attention_forward,
    swin3d_block=_swin3d_block_forward,
    mmpretrain_attention=_mmpretrain_attention_forward,
    timm_attention=_timm_attention_forward,
    convnext_block=_convnext_block_forward,
    mmcv_attention=_mmcv_attention_forward,
    eva_fused_qkv=_eva_fused_qkv_forward)


def apply_host_patch(module: nn.Module, patch: str) -> None:
    """Bind the named patch as ``module.forward`` (instance attribute; the class is untouched),
    after its ``setup`` (if it has one) prepares the instance."""
    forward = HOST_PATCHES[patch]
    if hasattr(forward, 'setup'):
        forward.setup(module)
    module.forward = types.MethodType(forward, module)
