"""Minimal, output-identical forward patches that make a host expose an abstract site.

A patch is applied per instance (never to the host class) and only where a profile names it.
"""
import types
from typing import Callable, Dict

import torch
import torch.nn as nn


def _videomae_attention_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """mmaction2 VideoMAE ``Attention.forward`` with the qkv projection called as a module.

    The host computes ``F.linear(x, self.qkv.weight, cat(q_bias, 0, v_bias))``, which bypasses
    ``self.qkv`` (and any hook on it). ``self.qkv(x) + bias`` is the same arithmetic.
    """
    B, N, _ = x.shape
    qkv = self.qkv(x)
    if getattr(self, 'q_bias', None) is not None:
        qkv = qkv + torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
    qkv = qkv.reshape(B, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
    attn = self.attn_drop((q @ k.transpose(-2, -1)).softmax(dim=-1))
    x = (attn @ v).transpose(1, 2).reshape(B, N, -1)
    return self.proj_drop(self.proj(x))


HOST_PATCHES: Dict[str, Callable] = dict(videomae_attention=_videomae_attention_forward)


def apply_host_patch(module: nn.Module, patch: str) -> None:
    """Bind the named patch as ``module.forward`` (instance attribute; the class is untouched)."""
    module.forward = types.MethodType(HOST_PATCHES[patch], module)
