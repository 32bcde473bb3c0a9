"""NOAH (Zhang et al., 2022, "Neural Prompt Search"): Adapter + LoRA + VPT-deep in every layer,
each sized per layer by a one-shot architecture search.

The three modules are the project's own (``Bottleneck`` of adapter.py, ``LoRALinear`` of
lora.py, ``PromptTokens`` of vpt.py), made *elastic*: each is built at a width and runs only
its first ``active`` channels / ranks / prompts. A subnet is three lists of per-layer widths,
``dict(vpt=[...], lora=[...], adapter=[...])``:

* subnet mode (``supernet=False``, the retrain step and the benchmark configs): each module is
  built at exactly its width (0: no module in that layer), so the trainable count is the
  subnet's.
* supernet mode (``supernet=True``): every module is built at the largest width of the search
  space and :meth:`NOAH.set_subnet` switches the active widths. A subnet's parameters are
  slices of the supernet's (the weight entanglement of AutoFormer that NOAH trains with):
  LoRA ``A[:r]`` / ``B[:, :r]``, adapter ``down[:m]`` / ``up[:, :m]`` (``up`` bias whole), the
  first ``P`` prompts of the layer. ``NOAHSamplingHook`` draws a subnet before every training
  iteration and ``tools/noah_search.py`` searches one with the trained supernet.
"""
import contextlib
import random
from typing import ContextManager, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.anatomy import Anatomy
from ..models.tokens import insert_tokens, remove_tokens
from ..registry import PETL_METHODS
from .base import BasePETLMethod
from .layers import Bottleneck
from .lora import LoRALinear
from .vpt import PromptTokens

KINDS = ('vpt', 'lora', 'adapter')  # NOAH's order (visual prompt, LoRA, adapter)
Subnet = Dict[str, List[int]]

# NOAH's searched VTAB-1k subnet for SVHN (its repo, experiments/NOAH/subnet/VTAB): 431,686
# parameters on ViT-B/16, the published 0.43M VTAB average (docs/image.md, "NOAH").
DEFAULT_SUBNET = dict(vpt=(10, 5, 5, 10, 5, 5, 5, 5, 5, 5, 5, 5),
                      lora=(5, 5, 5, 10, 5, 5, 5, 10, 10, 10, 10, 5),
                      adapter=(5, 5, 5, 5, 5, 10, 5, 10, 5, 5, 5, 5))
# NOAH's VTAB search space (experiments/NOAH/supernet/supernet-B_prompt_VTAB.yaml)
DEFAULT_CHOICES = dict(vpt=(1, 5, 10), lora=(1, 5, 10), adapter=(1, 5, 10))


class ElasticLoRA(LoRALinear):
    """NOAH's LoRA of the fused qkv: one ``A`` (r x C) and one ``B`` (3C x r), unscaled.

    Only the first ``active`` ranks run (``active = 0``: no update).
    """

    def __init__(self, base: nn.Linear, rank: int, dropout: float) -> None:
        super().__init__(base, rank, alpha=float(rank), dropout=dropout)  # scale 1, as NOAH
        self.active = rank

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        r = self.active
        return F.linear(F.linear(self.dropout(x), self.lora_A[:r]), self.lora_B[0, :, :r])

    def hook(self, module: nn.Linear, args, output: torch.Tensor) -> torch.Tensor:
        return output if self.active == 0 else output + self.delta(args[0])

    def active_params(self) -> int:
        return self.active * (self.lora_A.shape[1] + self.lora_B.shape[1])


class ElasticAdapter(Bottleneck):
    """Sequential adapter on the MLP output whose first ``active`` hidden channels run."""

    def __init__(self, dim: int, width: int, act: str, dropout: float) -> None:
        super().__init__(dim, width, act, dropout)
        self.active = width

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        m = self.active
        h = self.act(F.linear(x, self.down.weight[:m], self.down.bias[:m]))
        return F.linear(self.dropout(h), self.up.weight[:, :m], self.up.bias)

    def hook(self, module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        return output if self.active == 0 else self(output)

    def active_params(self) -> int:
        m = self.active
        return m * (self.down.in_features + self.up.out_features) + m + self.up.out_features \
            if m else 0


class LayerPrompts(nn.Module):
    """VPT-deep with a prompt length per layer; the first ``active[i]`` prompts of layer i run.

    Prompts go in after the prefix tokens before a block and come out of its output, as in
    :class:`~vpetl_mm.methods.vpt.VPT`. A layer without prompts of its own carries the previous
    layer's prompt states on (VPT's deep-prompt code past its prompt depth, and NOAH's supernet,
    whose sampled prompt depths leave the last layers without prompts).

    Args:
        lengths: Built prompt length per layer (0: none).
        dim: Token width D.
        dropout: Prompt dropout.
        prefix: Leading non-patch tokens the prompts follow.
    """

    def __init__(self, lengths: Sequence[int], dim: int, dropout: float, prefix: int) -> None:
        super().__init__()
        # one PromptTokens (VPT's storage, init and dropout) per layer with prompts
        self.blocks = nn.ModuleDict({str(i): PromptTokens(1, n, dim, dropout, prefix)
                                     for i, n in enumerate(lengths) if n})
        self.active = list(lengths)
        self.prefix = prefix
        self._inserted = [0] * len(lengths)
        self._carry: Optional[torch.Tensor] = None

    def reset_parameters(self) -> None:
        for tokens in self.blocks.values():
            tokens.reset_parameters()

    def insert(self, index: int, block: nn.Module, args):
        x, rest = args[0], args[1:]
        n = self.active[index]
        if n:
            prompts = self.blocks[str(index)].batch(0, x, n)
        else:
            prompts = self._carry if index else None
        self._carry = None
        self._inserted[index] = 0 if prompts is None else prompts.shape[1]
        if prompts is None:
            return None
        return (insert_tokens(x, prompts, self.prefix), *rest)

    def strip(self, index: int, block: nn.Module, args, output: torch.Tensor):
        n = self._inserted[index]
        if not n:
            return None
        states, output = remove_tokens(output, self.prefix, n)
        # the last block drops its states (nothing to carry them into)
        self._carry = states if index + 1 < len(self.active) else None
        return output

    def active_params(self) -> int:
        return sum(self.active[int(i)] * t.prompts.shape[-1] for i, t in self.blocks.items())


@PETL_METHODS.register_module()
class NOAH(BasePETLMethod):
    """Adapter + LoRA + VPT-deep in every layer, with per-layer widths found by NOAH's search.

    Per layer i of width D: ``P_i`` prompts (``P_i D``), a rank-``r_i`` update of the fused qkv
    (``4 D r_i``, NOAH's one ``A``: D -> r and ``B``: r -> 3D, no scaling) and a sequential
    adapter of hidden width ``m_i`` on the MLP output (``(2D + 1) m_i + D`` if ``m_i > 0``).
    ViT-B/16: ``768 P + 3072 r + 1537 m + 768 [m > 0]`` per layer.

    The default subnet is NOAH's published search result for VTAB-1k SVHN: 431,686 on ViT-B/16
    (published 0.43M). NOAH publishes one searched subnet per VTAB-1k task
    (ZhangYuanhan-AI/NOAH@e9c55f3, ``experiments/NOAH/subnet/VTAB/ViT-B_prompt_<task>.yaml``);
    the benchmark configs set each task's (``vpetl_mm/benchmark/pertask.py``: 287,278 on SUN397
    to 431,686 on SVHN, mean 360,134; NOAH's own count adds the input prompts its first block
    replaces, which averages 442,512: the published 0.43M; docs/image.md). FGVC, for which NOAH
    publishes none, keeps this default. Dropout 0.1 on the prompts, the LoRA input and after the
    adapter's activation (NOAH's defaults); GELU (NOAH: QuickGELU). LoRA B and the adapter's
    up-projection start at zero; the prompts change the output from step 0 (not zero-init, as
    VPT), and only the LoRA part could be merged (not mergeable).

    Supernet (``supernet=True``): every module is built at ``max(choices[kind])`` in every
    layer (NOAH builds 100 but only ever samples widths up to 10; the slices it uses start from
    the same initial distribution either way). ``sample(rng)`` draws a subnet as NOAH does: per
    kind a depth ``d`` from ``depths``, a width from ``choices[kind]`` for each of the first d
    layers and none after; ``set_subnet(subnet)`` switches to it.

    Args:
        vpt: Prompts per layer (one int for every layer, or one per layer).
        lora: LoRA rank per layer.
        adapter: Adapter hidden width per layer.
        supernet: Build the supernet of the search space (leave vpt / lora / adapter unset).
        choices: Widths the search samples for each kind.
        depths: Layer counts the search samples (None: a quarter, half, three quarters and all
            of the layers, NOAH's {3, 6, 9, 12} on ViT-B).
        dropout: Dropout of the three modules.
        act: Adapter activation.

    Examples:
        >>> petl = dict(type='NOAH', vpt=[10, 5, 5, 10, 5, 5, 5, 5, 5, 5, 5, 5],
        ...             lora=[5, 5, 5, 10, 5, 5, 5, 10, 10, 10, 10, 5],
        ...             adapter=[5, 5, 5, 5, 5, 10, 5, 10, 5, 5, 5, 5])  # a searched subnet
        >>> petl = dict(type='NOAH', supernet=True)  # + custom_hooks NOAHSamplingHook
    """
    DEFAULTS = dict(vpt=DEFAULT_SUBNET['vpt'], lora=DEFAULT_SUBNET['lora'],
                    adapter=DEFAULT_SUBNET['adapter'], supernet=False, choices=DEFAULT_CHOICES,
                    depths=None, dropout=0.1, act='gelu')
    ZERO_INIT = False  # the prompts act from step 0 (as VPT)
    PROFILES = ('mmpretrain.VisionTransformer', 'timm.VisionTransformer')
    TOKENS = ('sequence', )
    INSERTS_TOKENS = True  # its VPT prompts
    SITES = ('qkv', 'fc2')

    def __init__(self, family: str = 'image', profile: Optional[str] = None, **hparams) -> None:
        if hparams.get('supernet') and any(hparams.get(k) is not None for k in KINDS):
            raise ValueError('NOAH supernet=True builds every module at the largest width of '
                             '`choices`; set choices=dict(vpt=..., lora=..., adapter=...) instead '
                             'of vpt / lora / adapter.')
        super().__init__(family, profile, **hparams)
        self._sampled = False

    # -- construction ------------------------------------------------------------------------
    def validate(self, anatomy: Anatomy) -> None:
        super().validate(anatomy)
        self._resolve(len(anatomy.blocks))

    def plan(self, anatomy: Anatomy) -> None:
        super().plan(anatomy)
        # choices and depths resolved against the backbone: the search reads them
        self.choices, self.depths, self.widths = self._resolve(len(anatomy.blocks))
        self.num_layers = len(anatomy.blocks)

    def _resolve(self, layers: int) -> Tuple[Dict[str, Tuple[int, ...]], List[int], Subnet]:
        """``(choices, depths, built widths)`` on a backbone of ``layers`` blocks, checked."""
        if set(self.choices) != set(KINDS) or any(
                not c or any(not isinstance(w, int) or w < 1 for w in c)
                for c in self.choices.values()):
            raise ValueError(f'NOAH choices must give positive int widths for each of {KINDS}, '
                             f'got {self.choices!r}.')
        choices = {k: tuple(sorted(set(self.choices[k]))) for k in KINDS}
        depths = self.depths
        if depths is None:
            depths = sorted({-(-layers * q // 4) for q in (1, 2, 3, 4)})  # ceil(L q / 4)
        if not depths or any(not 1 <= d <= layers for d in depths):
            raise ValueError(f'NOAH depths must lie in 1..{layers} (the layer count), got '
                             f'{depths!r}.')
        if self.supernet:
            widths = {k: [max(choices[k])] * layers for k in KINDS}
        else:
            widths = {k: self._per_layer(k, getattr(self, k), layers) for k in KINDS}
        if not any(any(w) for w in widths.values()):
            raise ValueError('NOAH with every width 0 adds nothing; give some layer prompts, a '
                             'LoRA rank or an adapter width.')
        return choices, depths, widths

    @staticmethod
    def _per_layer(kind: str, value, layers: int) -> List[int]:
        widths = [value] * layers if isinstance(value, int) else list(value)
        if len(widths) != layers or any(not isinstance(w, int) or w < 0 for w in widths):
            raise ValueError(f'NOAH {kind}={value!r} must be one int >= 0 or {layers} of them '
                             f'(one per layer of this backbone).')
        return widths

    def inject(self, anatomy: Anatomy) -> None:
        self.loras: List[Optional[ElasticLoRA]] = []
        self.adapters: List[Optional[ElasticAdapter]] = []
        self.prompts: Optional[LayerPrompts] = None
        for block in anatomy.blocks:
            rank, width = self.widths['lora'][block.index], self.widths['adapter'][block.index]
            lora = adapter = None
            if rank:
                qkv = anatomy.site(block, 'qkv')
                lora = self.attach(block, 'qkv', ElasticLoRA(qkv, rank, self.dropout))
                self.hook(qkv, lora.hook)
            if width:
                adapter = self.attach(block, 'mlp',
                                      ElasticAdapter(block.dim, width, self.act, self.dropout))
                self.hook(anatomy.site(block, 'fc2'), adapter.hook)
            self.loras.append(lora)
            self.adapters.append(adapter)
        if any(self.widths['vpt']):
            first = anatomy.blocks[0]
            self.prompts = self.attach(first, 'tokens', LayerPrompts(
                self.widths['vpt'], first.dim, self.dropout, anatomy.num_prefix_tokens()))
            # every block: a layer may carry the previous prompts
            self.hook_blocks(anatomy, self.prompts.insert, self.prompts.strip)

    # -- subnets -----------------------------------------------------------------------------
    def largest(self) -> Subnet:
        """The widths the modules were built with (the whole supernet in supernet mode)."""
        return {k: list(v) for k, v in self.widths.items()}

    def subnet(self) -> Subnet:
        """The active widths."""
        return dict(vpt=list(self.prompts.active) if self.prompts else [0] * self.num_layers,
                    lora=[m.active if m else 0 for m in self.loras],
                    adapter=[m.active if m else 0 for m in self.adapters])

    def check_subnet(self, subnet: Subnet) -> Subnet:
        """``subnet`` as lists of ints, or ``ValueError`` naming what does not fit."""
        if not isinstance(subnet, dict) or set(subnet) != set(KINDS):
            raise ValueError(f'A NOAH subnet is dict(vpt=[...], lora=[...], adapter=[...]), '
                             f'got {subnet!r}.')
        checked = {}
        for kind in KINDS:
            widths = self._per_layer(kind, subnet[kind], self.num_layers)
            over = [i for i, (w, top) in enumerate(zip(widths, self.widths[kind])) if w > top]
            if over:
                raise ValueError(f'NOAH subnet {kind}={widths} exceeds the built widths '
                                 f'{self.widths[kind]} in layer(s) {over}; a supernet '
                                 f'(supernet=True) holds up to {max(self.choices[kind])}.')
            checked[kind] = widths
        return checked

    def set_subnet(self, subnet: Subnet) -> None:
        """Run the given per-layer widths (slices of the built modules) from now on."""
        subnet = self.check_subnet(subnet)
        for module, width in zip(self.loras + self.adapters, subnet['lora'] + subnet['adapter']):
            if module is not None:
                module.active = width
        if self.prompts is not None:
            self.prompts.active = list(subnet['vpt'])
        self._sampled = True

    def sample(self, rng: random.Random) -> Subnet:
        """A random subnet as NOAH's supernet training and search draw one.

        Per kind: a depth ``d`` from ``depths``, then a width from ``choices[kind]`` for each
        of the first ``d`` layers; the other layers get none.
        """
        subnet = {}
        for kind in KINDS:
            depth = rng.choice(self.depths)
            subnet[kind] = [rng.choice(self.choices[kind]) for _ in range(depth)] + \
                [0] * (self.num_layers - depth)
        return subnet

    def count(self, subnet: Optional[Subnet] = None) -> int:
        """Trainable parameters of ``subnet`` (default: the active one): its weight slices."""
        if subnet is None:
            modules = [m for m in self.loras + self.adapters + [self.prompts] if m is not None]
            return sum(m.active_params() for m in modules)
        current, sampled = self.subnet(), self._sampled
        try:
            self.set_subnet(subnet)
            return self.count()
        finally:
            self.set_subnet(current)
            self._sampled = sampled

    # -- runtime -----------------------------------------------------------------------------
    def forward_context(self) -> ContextManager:
        if self.supernet and not self._sampled and any(i.module.training for i in self.injected):
            raise RuntimeError(
                'The NOAH supernet is training without a sampled subnet, so only its largest '
                "subnet would train. Add custom_hooks=[dict(type='vpetl_mm.NOAHSamplingHook')] "
                '(it samples one before every iteration) or call set_subnet() / sample() first.')
        return contextlib.nullcontext()
