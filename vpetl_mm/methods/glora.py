"""GLoRA (Chavan et al., 2023): generalised LoRA; a fixed subnet, or the supernet to search.

Source: Arnav0400/ViT-Slim@0fed674833f70f98b19678963ae37c070c987215, ``GLoRA/layer.py``
(``SuperScalableLinear``: the support tensors, their choices, init and the supernet's per-forward
draw), ``GLoRA/utils.py`` (``set_glora``: every linear layer but the head) and
``GLoRA/evolution_utils.py`` (``get_param_tensor``: the parameter count of a choice); peft
0.21.2 ``tuners/glora/config.py`` (``GloraConfig``: the default choices). The search over a
trained supernet: :mod:`vpetl_mm.apis.glora_search` and ``tools/glora_search.py``.
"""
import math
import random
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import PETL_METHODS
from .linear_fold import LinearFoldMethod

_WEIGHT_CHOICES = ('lora', 'vector', 'constant', 'none')  # A, B (ViT-Slim's config_A_B)
#: every tensor's choices (ViT-Slim's ``config_A_B``, ``config_C``, ``config_D_E``)
CHOICES = dict(A=_WEIGHT_CHOICES, B=_WEIGHT_CHOICES, C=('lora', 'vector', 'none'),
               D=('vector', 'constant', 'none'), E=('vector', 'constant', 'none'))
#: the largest choice of each tensor: what a supernet layer allocates (and evaluates by default)
LARGEST = dict(A='lora', B='lora', C='lora', D='vector', E='vector')
_SITES = ('qkv', 'proj', 'fc1', 'fc2')
#: a subnet: one ``{'A': choice, ..., 'E': choice}`` per GLoRA layer, block by block, each
#: block's layers in ``targets`` order
Subnet = List[Dict[str, str]]


def check_subnet(subnet, layers: int) -> None:
    """Raise one ``ValueError`` line if ``subnet`` is not ``layers`` valid choice dicts.

    Examples:
        >>> check_subnet([dict(A='lora', B='none', C='vector', D='constant', E='none')], 1)
    """
    if not isinstance(subnet, (list, tuple)) or len(subnet) != layers:
        got = len(subnet) if isinstance(subnet, (list, tuple)) else type(subnet).__name__
        raise ValueError(f'GLoRA subnet must list one choice dict per GLoRA layer ({layers}: '
                         f'blocks x targets), got {got}; write it with tools/glora_search.py.')
    for i, layer in enumerate(subnet):
        if not isinstance(layer, dict) or set(layer) != set(CHOICES) or any(
                layer[n] not in CHOICES[n] for n in CHOICES):
            raise ValueError(f'GLoRA subnet[{i}] = {layer!r} is not a choice dict; give keys '
                             f'A..E with choices {CHOICES}.')


class GLoRALinear(nn.Module):
    """``W' = W + W * A + B`` and ``b' = b + b * D + E + W C`` for one host ``nn.Linear``.

    Support tensors by choice (ViT-Slim's ``prepare_path``): A, B ``lora`` = ``Xd @ Xu``
    ((out, r) zeros, (r, in) xavier), ``vector`` = (out, 1) broadcast over the inputs,
    ``constant`` = one scalar; C ``lora`` = (in, r) zeros @ (r, 1) xavier, ``vector`` = (in, 1);
    D, E ``vector`` = (out, ), ``constant`` = one scalar; ``none`` = absent. Every term is zero
    at init (the zero factor of each product).

    A fixed layer (``supernet=False``) allocates only the parameters of its ``choices``. A
    supernet layer allocates the largest of each tensor (``lora`` A, B, C; ``vector`` D, E) and
    reads every other choice from it as ViT-Slim's ``SuperScalableLinear`` does (weight
    entanglement: ``vector`` = the first column of ``Xd``, ``constant`` = its first element).
    In training it draws a new choice per tensor on every forward (ViT-Slim's
    ``random.choice(self.configs)``: uniform over the 4 x 4 x 3 x 3 x 3 configurations), unless
    :meth:`pin` fixed one; in eval it runs the pinned choice, else the largest. :meth:`slice`
    turns a supernet layer's tensors into a fixed layer's (the same slices), so a searched
    subnet runs with the supernet's trained weights.

    Examples:
        >>> layer = GLoRALinear(nn.Linear(8, 8), rank=2, choices=LARGEST, supernet=True)
        >>> layer.count(dict(A='lora', B='none', C='vector', D='constant', E='none'))
        41
    """

    def __init__(self, base: nn.Linear, rank: int, choices: Dict[str, str],
                 supernet: bool = False) -> None:
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.rank, self.supernet = rank, supernet
        self.choices = dict(LARGEST if supernet else choices)  # the allocated layout
        self.pinned: Optional[Dict[str, str]] = None
        self.active = dict(self.choices)  # the choice of the last forward
        self.merged = False
        self._saved: Tuple[torch.Tensor, ...] = ()
        self.factors = nn.ParameterDict()
        for name, choice in self.choices.items():
            for i, shape in enumerate(self._shapes(name, choice)):
                self.factors[f'{name}{"du"[i]}'] = nn.Parameter(torch.zeros(shape))
        self.reset_parameters()

    def _shapes(self, name: str, choice: str) -> List[Tuple[int, ...]]:
        """The parameter shapes of one tensor's choice (``'none'``: no parameter)."""
        out, inp, r = self.out_features, self.in_features, self.rank
        if name in 'AB':
            shapes = dict(lora=[(out, r), (r, inp)], vector=[(out, 1)], constant=[(1, )])
        elif name == 'C':
            shapes = dict(lora=[(inp, r), (r, 1)], vector=[(inp, 1)])
        else:
            shapes = dict(vector=[(out, )], constant=[(1, )])
        return shapes.get(choice, [])

    def count(self, choices: Dict[str, str]) -> int:
        """Parameters of ``choices`` on this layer (ViT-Slim's ``get_param_tensor``)."""
        return sum(math.prod(s) for n, c in choices.items() for s in self._shapes(n, c))

    def reset_parameters(self) -> None:
        for key, param in self.factors.items():
            if key.endswith('u'):  # the up factor of a lora choice (ViT-Slim: xavier)
                nn.init.xavier_uniform_(param)
            else:
                nn.init.zeros_(param)

    def pin(self, choices: Optional[Dict[str, str]]) -> None:
        """Run ``choices`` from now on (a supernet layer; ``None``: draw again in training)."""
        self.pinned = None if choices is None else dict(choices)
        self.active = dict(self.pinned or self.choices)

    def _current(self, training: bool) -> Dict[str, str]:
        if self.supernet and self.pinned is None:
            self.active = ({n: random.choice(c) for n, c in CHOICES.items()} if training
                           else dict(LARGEST))
        return self.active

    def support(self, name: str, choice: str) -> Optional[torch.Tensor]:
        """The support tensor ``name`` under ``choice`` (broadcastable), None for ``none``."""
        if choice == 'none':
            return None
        down = self.factors[f'{name}d']
        if choice == 'lora':
            return down @ self.factors[f'{name}u']
        if choice == 'constant':
            return down.reshape(-1)[:1]
        return down[:, :1] if down.dim() == 2 else down  # vector

    def deltas(self, weight: torch.Tensor, bias: Optional[torch.Tensor],
               choices: Dict[str, str]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(W * A + B, b * D + E + W C)`` from the host's current weight and bias."""
        A, B, C, D, E = (self.support(n, choices[n]) for n in 'ABCDE')
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
        d_weight, d_bias = self.deltas(module.weight, module.bias, self._current(module.training))
        return output + F.linear(args[0], d_weight.to(output.dtype), d_bias.to(output.dtype))

    @torch.no_grad()
    def merge(self, base: nn.Linear) -> None:
        deltas = self.deltas(base.weight, base.bias, self._current(False))
        # unmerge copies the saved host tensors back: exact, with no inverse of (1 + A)
        self._saved = tuple(t.clone() for t in (base.weight, base.bias))
        for host, delta in zip((base.weight, base.bias), deltas):
            host.add_(delta)

    @torch.no_grad()
    def unmerge(self, base: nn.Linear) -> None:
        for host, saved in zip((base.weight, base.bias), self._saved):
            host.copy_(saved)
        self._saved = ()

    def slice(self, factor: str, value: torch.Tensor, choices: Dict[str, str]
              ) -> Optional[torch.Tensor]:
        """This supernet layer's tensor ``factors[factor]`` (``value``, e.g. from a checkpoint)
        as the fixed layer of ``choices`` holds it (the slices of :meth:`support`); None if
        ``choices`` do not use it."""
        name, part = factor[0], 'du'.index(factor[1])
        shapes = self._shapes(name, choices[name])
        if part >= len(shapes):
            return None
        if shapes[part] == (1, ):  # constant: the first element
            return value.reshape(-1)[:1].clone()
        return value[:, :shapes[part][1]].clone() if value.dim() == 2 else value.clone()


@PETL_METHODS.register_module()
class GLoRA(LinearFoldMethod):
    """GLoRA: generalised LoRA (weight scale A, weight shift B, prompt C, bias scale D and
    shift E) on every linear layer; a fixed subnet, or the supernet to search one; mergeable.

    ``W' = W + W * A + B``, ``b' = b + b * D + E + W C`` (:class:`GLoRALinear`): all linear in
    ``W`` and ``b``, so the merge folds them into the host layer. Sites: qkv, proj, fc1 and fc2
    (ViT-Slim's ``set_glora``: every linear but the head), rank 4 (``GLoRA/supernet.py``:
    ``--rank`` default 4).

    * Fixed subnet (default): every layer runs A..E (peft's ``GloraConfig`` defaults: A, B, C
      ``lora``; D, E ``constant``), or ``subnet`` gives one choice dict per layer (what
      ``tools/glora_search.py`` writes). Only the chosen parameters exist.
    * Supernet (``supernet=True``, GLoRA's step 1): every layer allocates its largest choices
      and draws a new choice per tensor on each training forward (ViT-Slim's supernet
      training); eval runs the largest choices unless :meth:`set_subnet` pinned a subnet.
      ``tools/glora_search.py`` then searches a subnet under a parameter limit (GLoRA's step
      2) and writes the subnet's config and its checkpoint (the supernet's weights, sliced).

    Parameters per layer (in -> out, ``lora`` for A, B, C, ``constant`` D, E):
    ``2 r (in + out) + r (in + 1) + 2``: ViT-B/16 ``12 * 119,832 = 1,437,984``. The published
    GLoRA VTAB-1k counts (0.86M / 0.44M / 0.29M) are searched subnets under parameter limits
    (1.0M is ViT-Slim's ``--param-limits`` default).

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
        subnet: One ``dict(A=..., B=..., C=..., D=..., E=...)`` per layer (blocks x targets,
            block by block); overrides A..E.
        supernet: Build the supernet (GLoRA's step 1) instead of a fixed subnet.

    Examples:
        >>> petl = dict(type='GLoRA', rank=4, A='lora', B='vector', C='none', D='constant',
        ...             E='vector', targets=['qkv', 'fc1'])
        >>> supernet = dict(type='GLoRA', supernet=True)  # then tools/glora_search.py
    """
    DEFAULTS = dict(rank=4, A='lora', B='lora', C='lora', D='constant', E='constant',
                    targets=_SITES, subnet=None, supernet=False)
    PROFILES = ('mmpretrain.VisionTransformer', 'timm.VisionTransformer',
                'mmpretrain.SwinTransformer', 'mmdet.SwinTransformer', 'mmseg.SwinTransformer',
                'mmaction.SwinTransformer3D')
    SITE_CHOICES = _SITES

    def validate(self, anatomy) -> None:
        super().validate(anatomy)
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f'GLoRA {name}={getattr(self, name)!r} is not a choice; use '
                                 f'one of {allowed}.')
        if not (isinstance(self.rank, int) and self.rank >= 1):
            raise ValueError(f'GLoRA rank must be an int >= 1, got {self.rank!r}.')
        if self.supernet and self.subnet is not None:
            raise ValueError('GLoRA supernet=True builds every choice; drop subnet= (pin one '
                             'with set_subnet(), or train the fixed subnet without supernet).')
        if self.subnet is not None:
            check_subnet(self.subnet, len(anatomy.blocks) * len(
                self.site_targets(anatomy, self.SITE_CHOICES)))

    def inject(self, anatomy) -> None:
        self._made = 0
        super().inject(anatomy)

    def make_layer(self, host: nn.Linear, site: str) -> GLoRALinear:
        choices = {n: getattr(self, n) for n in 'ABCDE'} if self.subnet is None \
            else self.subnet[self._made]
        self._made += 1
        return GLoRALinear(host, self.rank, choices, supernet=self.supernet)

    # -- the search's interface (supernet mode; NOAH's ``sample`` / ``set_subnet`` / ``count``)
    @property
    def layers(self) -> List[GLoRALinear]:
        """The GLoRA layers in subnet order (block by block, ``targets`` order)."""
        return [layer for layer, _ in self._folds]

    def subnet_now(self) -> Subnet:
        """The choices each layer ran in its last forward (or runs next, when pinned)."""
        return [dict(layer.active) for layer in self.layers]

    def sample(self, rng: random.Random) -> Subnet:
        """A random subnet: a uniform choice per tensor and layer (ViT-Slim's
        ``get_random_cand``)."""
        return [{n: rng.choice(c) for n, c in CHOICES.items()} for _ in self.layers]

    def set_subnet(self, subnet: Optional[Subnet]) -> None:
        """Pin ``subnet`` on the supernet (``None``: draw again in training)."""
        if not self.supernet:
            raise ValueError('GLoRA set_subnet() needs supernet=True; a fixed GLoRA takes its '
                             'subnet as the subnet= option.')
        if subnet is not None:
            check_subnet(subnet, len(self.layers))
        for i, layer in enumerate(self.layers):
            layer.pin(None if subnet is None else subnet[i])

    def count(self, subnet: Optional[Subnet] = None) -> int:
        """Parameters of ``subnet`` (default: the built layers' choices)."""
        subnet = subnet if subnet is not None else [layer.choices for layer in self.layers]
        return sum(layer.count(c) for layer, c in zip(self.layers, subnet))
