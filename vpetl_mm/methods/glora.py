"""GLoRA (Chavan et al., 2023): generalised LoRA, one fixed subnet, mergeable.

Source: Arnav0400/ViT-Slim@0fed674833f70f98b19678963ae37c070c987215, ``GLoRA/layer.py``
(``SuperScalableLinear``: the support tensors, their choices and init) and ``GLoRA/utils.py``
(``set_glora``: every linear layer but the head); peft 0.21.2 ``tuners/glora/config.py``
(``GloraConfig``: the default choices).
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import PETL_METHODS
from .linear_fold import LinearFoldMethod

_WEIGHT_CHOICES = ('lora', 'vector', 'constant', 'none')  # A, B (ViT-Slim's config_A_B)
_CHOICES = dict(A=_WEIGHT_CHOICES, B=_WEIGHT_CHOICES, C=('lora', 'vector', 'none'),
                D=('vector', 'constant', 'none'), E=('vector', 'constant', 'none'))
_SITES = ('qkv', 'proj', 'fc1', 'fc2')


class GLoRALinear(nn.Module):
    """``W' = W + W * A + B`` and ``b' = b + b * D + E + W C`` for one host ``nn.Linear``.

    Support tensors by choice (ViT-Slim's ``prepare_path``, with only the used parameters
    allocated): A, B ``lora`` = ``Xd @ Xu`` ((out, r) zeros, (r, in) xavier), ``vector`` =
    (out, 1) broadcast over the inputs, ``constant`` = one scalar; C ``lora`` = (in, r) zeros
    @ (r, 1) xavier, ``vector`` = (in, 1); D, E ``vector`` = (out, ), ``constant`` = one
    scalar; ``none`` = absent. Every term is zero at init (the zero factor of each product).
    """

    def __init__(self, base: nn.Linear, rank: int, choices: Dict[str, str]) -> None:
        super().__init__()
        out, inp = base.out_features, base.in_features
        self.choices, self.rank = dict(choices), rank
        self.merged = False
        self._saved: Tuple[torch.Tensor, ...] = ()
        self.factors = nn.ParameterDict()
        for name in ('A', 'B'):
            self._make(name, choices[name], dict(lora=[(out, rank), (rank, inp)],
                                                 vector=[(out, 1)], constant=[(1, )]))
        self._make('C', choices['C'], dict(lora=[(inp, rank), (rank, 1)], vector=[(inp, 1)]))
        for name in ('D', 'E'):
            self._make(name, choices[name], dict(vector=[(out, )], constant=[(1, )]))
        self.reset_parameters()

    def _make(self, name: str, choice: str, shapes: Dict[str, list]) -> None:
        for i, shape in enumerate(shapes.get(choice, [])):  # 'none': no parameter
            self.factors[f'{name}{"du"[i]}'] = nn.Parameter(torch.zeros(shape))

    def reset_parameters(self) -> None:
        for key, param in self.factors.items():
            if key.endswith('u'):  # the up factor of a lora choice (ViT-Slim: xavier)
                nn.init.xavier_uniform_(param)
            else:
                nn.init.zeros_(param)

    def support(self, name: str) -> Optional[torch.Tensor]:
        """The support tensor ``name`` (broadcastable to its target), or None for ``none``."""
        down = self.factors[f'{name}d'] if f'{name}d' in self.factors else None
        up = self.factors[f'{name}u'] if f'{name}u' in self.factors else None
        return down if up is None else down @ up

    def deltas(self, weight: torch.Tensor, bias: Optional[torch.Tensor]
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(W * A + B, b * D + E + W C)`` from the host's current weight and bias."""
        A, B, C, D, E = (self.support(n) for n in 'ABCDE')
        d_weight = torch.zeros_like(weight)
        d_weight = d_weight if A is None else d_weight + weight * A
        d_weight = d_weight if B is None else d_weight + B
        d_bias = weight.new_zeros(weight.shape[0])
        if D is not None and bias is not None:  # ViT-Slim: no D without a host bias
            d_bias = d_bias + bias * D
        d_bias = d_bias if E is None else d_bias + E
        d_bias = d_bias if C is None else d_bias + (weight @ C).squeeze(-1)
        return d_weight, d_bias

    def hook(self, module: nn.Linear, args, output: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return output
        d_weight, d_bias = self.deltas(module.weight, module.bias)
        return output + F.linear(args[0], d_weight.to(output.dtype), d_bias.to(output.dtype))

    @torch.no_grad()
    def merge(self, base: nn.Linear) -> None:
        deltas = self.deltas(base.weight, base.bias)
        # unmerge copies the saved host tensors back: exact, with no inverse of (1 + A)
        self._saved = tuple(t.clone() for t in (base.weight, base.bias))
        for host, delta in zip((base.weight, base.bias), deltas):
            host.add_(delta)

    @torch.no_grad()
    def unmerge(self, base: nn.Linear) -> None:
        for host, saved in zip((base.weight, base.bias), self._saved):
            host.copy_(saved)
        self._saved = ()


@PETL_METHODS.register_module()
class GLoRA(LinearFoldMethod):
    """GLoRA: generalised LoRA (weight scale A, weight shift B, prompt C, bias scale D and
    shift E) on every linear layer; one fixed subnet; mergeable.

    ``W' = W + W * A + B``, ``b' = b + b * D + E + W C`` (:class:`GLoRALinear`): all linear in
    ``W`` and ``b``, so the merge folds them into the host layer. GLoRA's paper trains a
    supernet (each layer samples one choice per tensor) and searches a subnet per task with an
    evolutionary search under a parameter limit; the searched subnets are not published, so
    this module trains one *fixed* subnet: the choices of peft's ``GloraConfig`` defaults
    (A, B, C ``lora``; D, E ``constant``) at ViT-Slim's supernet rank 4
    (``GLoRA/supernet.py``: ``--rank`` default 4) on qkv, proj, fc1 and fc2 (ViT-Slim's
    ``set_glora``: every linear but the head). Each tensor's choice is an option.

    Parameters per layer (in -> out, ``lora`` for A, B, C, ``constant`` D, E):
    ``2 r (in + out) + r (in + 1) + 2``: ViT-B/16 ``12 * 119,832 = 1,437,984``. The published
    GLoRA VTAB-1k counts (0.86M / 0.44M / 0.29M) are searched subnets under parameter limits,
    which no single fixed choice reproduces.

    Zero-init (the ``d`` factors and the vectors / scalars start at 0). The merge needs a host
    bias (the b' terms), which VideoMAE's qkv lacks, so the mmaction ViT is not supported.

    Args:
        rank: Rank r of the ``lora`` choices.
        A: ``'lora'``, ``'vector'``, ``'constant'`` or ``'none'`` (weight scale).
        B: The same choices (weight shift).
        C: ``'lora'``, ``'vector'`` or ``'none'`` (the prompt ``W C`` on the bias).
        D: ``'vector'``, ``'constant'`` or ``'none'`` (bias scale).
        E: The same choices (bias shift).
        targets: Linear sites: any of ``'qkv'``, ``'proj'``, ``'fc1'``, ``'fc2'``.

    Examples:
        >>> petl = dict(type='GLoRA', rank=4, A='lora', B='vector', C='none', D='constant',
        ...             E='vector', targets=['qkv', 'fc1'])
    """
    DEFAULTS = dict(rank=4, A='lora', B='lora', C='lora', D='constant', E='constant',
                    targets=_SITES)
    PROFILES = ('mmpretrain.VisionTransformer', 'timm.VisionTransformer',
                'mmpretrain.SwinTransformer', 'mmdet.SwinTransformer', 'mmseg.SwinTransformer',
                'mmaction.SwinTransformer3D')
    SITE_CHOICES = _SITES

    def validate(self, anatomy) -> None:
        super().validate(anatomy)
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f'GLoRA {name}={getattr(self, name)!r} is not a choice; use '
                                 f'one of {allowed}.')
        if not (isinstance(self.rank, int) and self.rank >= 1):
            raise ValueError(f'GLoRA rank must be an int >= 1, got {self.rank!r}.')

    def make_layer(self, host: nn.Linear, site: str) -> GLoRALinear:
        return GLoRALinear(host, self.rank, {n: getattr(self, n) for n in 'ABCDE'})

