"""PACE (Ni et al., NeurIPS 2024): consistency regularisation of noise-perturbed PETL models.

Source: MaxwellYaoNi/PACE@9fee34502e8cac5c2359139a5ba1acd1093dc42b, ``Vision/pace/pace_ops.py``
(``MultiplicativeNoiseAdapter``, ``PACE_MSELoss``, ``compute_loss_pace``,
``compute_loss_pace_fast``), ``Vision/train.py`` (the per-block sigmas) and
``Vision/pace/sharable_dropout.py`` (both passes share their drop-path masks).

PACE is not a PETL method: it wraps a whole model whose backbone is a ``PETLBackbone`` with any
methods, perturbs what those methods add to the host layers with multiplicative noise during
training, and adds ``loss_pace`` (the squared distance between two perturbed passes' outputs)
to the model's losses. A model wrapper is where mmengine lets a component add a loss: the
Runner's ``train_step`` sums whatever the model's ``loss`` returns.
"""
import functools
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModel

from ..models.anatomy import Anatomy
from ..models.petl_backbone import PETLBackbone
from ..registry import MODELS

_INNER = 'model'


class NoiseSource:
    """One noise generator per device, apart from the global RNG (which PACE replays so that
    both passes draw the same dropout and drop-path masks)."""

    def __init__(self) -> None:
        self.generators: Dict[torch.device, torch.Generator] = {}

    def normal(self, shape: List[int], like: torch.Tensor) -> torch.Tensor:
        gen = self.generators.get(like.device)
        if gen is None:  # seeded from the global RNG: runs with a seed are reproducible
            gen = torch.Generator(like.device).manual_seed(int(torch.randint(2**62, ())))
            self.generators[like.device] = gen
        return torch.randn(shape, generator=gen, device=like.device, dtype=like.dtype)


class NoiseSite(nn.Module):
    """Multiplicative noise on what the PETL hooks of one host module change.

    A hook registered before the PETL hooks records the host's output (or input, for
    pre-hooks such as RepAdapter's); one after them replaces the PETL result ``y`` with
    ``h + z * (y - h)``, ``z ~ N(1, sigma^2)`` per sample and channel (PACE's ``'BC'`` noise
    shape), ``h`` the recorded host value. Only in training mode and for ``sigma > 0``; a
    change of shape (tokens added) is passed through unperturbed.
    """

    def __init__(self, sigma: float, source: NoiseSource) -> None:
        super().__init__()
        self.sigma, self.source = float(sigma), source
        self._host: Optional[torch.Tensor] = None

    def active(self) -> bool:
        return self.training and self.sigma > 0

    def perturb(self, value: torch.Tensor) -> torch.Tensor:
        host, self._host = self._host, None
        if host is None or not torch.is_tensor(value) or value.shape != host.shape:
            return value
        shape = [value.shape[0]] + [1] * (value.ndim - 2) + [value.shape[-1]]
        noise = 1 + self.sigma * self.source.normal(shape, value)
        return host + (value - host) * noise

    # hooks (bound methods: deep copies rebind them)
    def record_output(self, module: nn.Module, args, output) -> None:
        self._host = output if self.active() and torch.is_tensor(output) else None

    def perturb_output(self, module: nn.Module, args, output):
        return self.perturb(output) if self._host is not None else None

    def record_input(self, module: nn.Module, args) -> None:
        self._host = args[0] if self.active() and args and torch.is_tensor(args[0]) else None

    def perturb_input(self, module: nn.Module, args):
        if self._host is None:
            return None
        return (self.perturb(args[0]), ) + tuple(args[1:])


def block_sigmas(sigma: float, blocks: int, skip_first: int) -> List[float]:
    """PACE's per-block sigmas: 0 for the first ``skip_first`` blocks, then decreasing
    linearly from ``sigma`` (the classifier head holds the last, smallest step, as in
    ``Vision/train.py``; the head itself is not perturbed here).

    Examples:
        >>> block_sigmas(1., 4, 1)
        [0.0, 1.0, 0.75, 0.5]
    """
    steps = blocks + 1 - skip_first
    return [0. if i < skip_first else sigma * (steps - (i - skip_first)) / steps
            for i in range(blocks)]


def consistency(first: List[torch.Tensor], second: List[torch.Tensor]) -> torch.Tensor:
    """PACE's ``PACE_MSELoss`` summed over the captured outputs: squared differences summed
    over dim 1 (classes / channels), averaged over the rest (samples, positions)."""
    total = first[0].new_zeros(())
    for a, b in zip(first, second):
        diff = (a - b).float().square()
        total = total + (diff.sum(dim=1).mean() if diff.ndim > 1 else diff.mean())
    return total


def _tensors(output) -> List[torch.Tensor]:
    if torch.is_tensor(output):
        return [output]
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _tensors(item)]
    if isinstance(output, dict):
        return [t for item in output.values() for t in _tensors(item)]
    return []


class _Capture:
    """Collect the tensors a module's ``forward`` returns while the context is open.

    The instance's ``forward`` is wrapped rather than hooked: heads call it directly in their
    ``loss()`` (mmseg's ``BaseDecodeHead.loss`` runs ``self.forward(inputs)``), which forward
    hooks do not see.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module, self.tensors = module, []

    def __enter__(self) -> List[torch.Tensor]:
        self.own = self.module.__dict__.get('forward')  # an instance-level forward, if any
        forward = self.module.forward

        def capture(*args, **kwargs):
            output = forward(*args, **kwargs)
            self.tensors.extend(_tensors(output))
            return output

        self.module.forward = capture
        return self.tensors

    def __exit__(self, *exc) -> None:
        if self.own is None:
            del self.module.forward
        else:
            self.module.forward = self.own


@MODELS.register_module()
class PACE(BaseModel):
    """PACE: train any PETL model with noise on its PETL outputs and a consistency loss.

    Wraps a task model (``ImageClassifier``, ``EncoderDecoder``, a detector ...) whose
    backbone is a ``PETLBackbone``. In training, every host layer (or block) a PETL module
    hooks gets :class:`NoiseSite` noise on the PETL change (LoRA / DoRA / GLoRA updates,
    adapter branches, SSF's scale and shift, Adapter+ ...), ``sigma`` per block from
    :func:`block_sigmas`; token hooks (VPT's prompts, NOAH's and HST's tokens: hooks wired
    by ``hook_blocks``) and hooks owned by a method object rather than one of its modules
    (PrefixTuning's attention patch) are not perturbed. The loss adds
    ``loss_pace = lambda_ * ||o1 - o2||^2`` (:func:`consistency`) between the outputs of the
    module ``output`` (the classifier's logits by default) in two passes that share their
    dropout / drop-path masks (the global RNG is replayed) and differ in their PACE noise.
    ``fast=True`` is PACE_fast: one pass, compared with the same sample's output of the
    previous epoch (zeros the first time, as ``compute_loss_pace_fast``; needs the samples'
    ``sample_idx``). Evaluation runs the model without noise. Checkpoint keys are the wrapped
    model's under ``model.`` (the module path, which the checkpoint tools resolve PETL tensors
    by); the noise sites hold no tensors.

    Defaults: ``lambda_ = 1``, ``sigma = 1.2`` (the repository's VTAB-1k CIFAR-100 example,
    ``Vision/README.md``; both are tuned per task there), no noise in the first block
    (``Vision/train.py``, for ViT-B; ``skip_first=0`` for Swin).

    Args:
        model: Config of the wrapped task model.
        lambda_: Weight of ``loss_pace``.
        sigma: Noise std of the first perturbed block.
        skip_first: Number of leading blocks without noise.
        output: Module path, in the wrapped model, whose outputs must agree.
        fast: PACE_fast (previous-epoch outputs instead of a second pass).
        data_preprocessor: The config's top-level one (the Runner passes it to the outer
            model); the wrapped model gets it unless it sets its own.
        init_cfg: Unused (the wrapped model initialises itself); must stay None.

    Examples:
        >>> model = dict(
        ...     type='vpetl_mm.PACE', lambda_=1., sigma=1.2,
        ...     model=dict(type='ImageClassifier',
        ...                backbone=dict(type='vpetl_mm.PETLBackbone', backbone=vit_cfg,
        ...                              petl=[dict(type='LoRA'), dict(type='VPT')]),
        ...                head=head_cfg))
    """

    def __init__(self, model: dict, lambda_: float = 1., sigma: float = 1.2,
                 skip_first: int = 1, output: str = 'head', fast: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is not None:
            raise ValueError('PACE takes no init_cfg: put it in model=dict(...).')
        super().__init__()
        del self._modules['data_preprocessor']  # the wrapped model's own serves (property)
        if isinstance(model, dict) and data_preprocessor is not None:
            # the Runner hands the config's top-level data_preprocessor to the outer model
            model = dict(model)
            model.setdefault('data_preprocessor', data_preprocessor)
        inner = model if isinstance(model, nn.Module) else MODELS.build(model)
        self.add_module(_INNER, inner)
        self.lambda_, self.sigma, self.fast = float(lambda_), float(sigma), bool(fast)
        self.output = output
        self._output_module()  # fail at build if the path is wrong
        self.source = NoiseSource()
        self.sites = nn.ModuleList()
        for wrapper in self._petl_backbones():
            self._install(wrapper, block_sigmas(self.sigma, len(wrapper.anatomy.blocks),
                                                skip_first))
        self._history: Dict[int, torch.Tensor] = {}

    @property
    def data_preprocessor(self) -> nn.Module:
        return getattr(self, _INNER).data_preprocessor

    def __getattr__(self, name: str):
        # Hooks and tools read the task model's attributes (backbone, head ...): forward them.
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__(_INNER), name)

    # -- construction --------------------------------------------------------------------------
    def _output_module(self) -> nn.Module:
        try:
            return getattr(self, _INNER).get_submodule(self.output)
        except AttributeError:
            raise ValueError(f'PACE output={self.output!r} is no module of the wrapped '
                             f'{type(getattr(self, _INNER)).__name__}; name the module whose '
                             "outputs must agree (e.g. 'head', 'decode_head').") from None

    def _petl_backbones(self) -> List[PETLBackbone]:
        found = [m for m in getattr(self, _INNER).modules() if isinstance(m, PETLBackbone)]
        if not found:
            raise ValueError('PACE perturbs PETL modules, but the wrapped model has no '
                             "vpetl_mm.PETLBackbone: set its backbone=dict(type='vpetl_mm."
                             "PETLBackbone', petl=[...]).")
        return found

    def _install(self, wrapper: PETLBackbone, sigmas: List[float]) -> None:
        owners = {id(inj.module) for m in wrapper.methods for inj in m.injected}
        for path, module in wrapper.backbone.named_modules():
            post = _owned(module._forward_hooks.values(), owners)
            pre = _owned(module._forward_pre_hooks.values(), owners)
            if not (post or pre):
                continue
            block = _block_of(wrapper.anatomy, path)  # outside the blocks: no noise
            site = NoiseSite(sigmas[block] if block >= 0 else 0., self.source)
            self.sites.append(site)
            if post:  # record before every other hook, perturb after the PETL ones
                module.register_forward_hook(site.record_output, prepend=True)
                module.register_forward_hook(site.perturb_output)
            if pre:
                module.register_forward_pre_hook(site.record_input, prepend=True)
                module.register_forward_pre_hook(site.perturb_input)

    # -- the model interface -------------------------------------------------------------------
    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return getattr(self, _INNER)(inputs, data_samples, mode=mode)

    def val_step(self, data):
        return getattr(self, _INNER).val_step(data)

    def test_step(self, data):
        return getattr(self, _INNER).test_step(data)

    def loss(self, inputs, data_samples) -> Dict[str, torch.Tensor]:
        """The wrapped model's losses plus ``loss_pace``."""
        inner, head = getattr(self, _INNER), self._output_module()
        rng = _rng_state()
        with _Capture(head) as first:
            losses = inner.loss(inputs, data_samples)
        if not first:
            raise RuntimeError(f'PACE: {self.output!r} produced no tensor in the loss pass.')
        if self.fast:
            losses['loss_pace'] = self.lambda_ * self._fast_consistency(first[0], data_samples)
            return losses
        _set_rng_state(rng)  # the same dropout / drop-path masks, other PACE noise
        with _Capture(head) as second:
            inner(inputs, data_samples, mode='tensor')
        losses['loss_pace'] = self.lambda_ * consistency(first, second)
        return losses

    def _fast_consistency(self, output: torch.Tensor, data_samples) -> torch.Tensor:
        try:
            indices = [int(s.metainfo['sample_idx']) for s in data_samples]
        except (KeyError, TypeError, AttributeError):
            raise ValueError("PACE fast=True needs each data sample's 'sample_idx' (keep it in "
                             "the pipeline's PackInputs meta_keys), or use fast=False.") from None
        zeros = output.new_zeros(output.shape[1:])
        previous = torch.stack([self._history.get(i, zeros).to(output) for i in indices])
        for i, row in zip(indices, output.detach()):
            self._history[i] = row
        return consistency([output], [previous])


def _owned(hooks, owners) -> bool:
    """Whether one of ``hooks`` is a bound method of a PETL module.

    ``functools.partial`` hooks are ``hook_blocks``' per-block token hooks (VPT's prompts,
    NOAH's, HST's meta tokens): they add or replace tokens rather than add a change to the
    host's output, so PACE leaves them alone.
    """
    return any(not isinstance(fn, functools.partial) and id(getattr(fn, '__self__', None))
               in owners for fn in hooks)


def _block_of(anatomy: Anatomy, path: str) -> int:
    """Index of the block that is or contains the host module at ``path`` (-1: none)."""
    best = max((b for b in anatomy.blocks if path == b.path or path.startswith(b.path + '.')),
               key=lambda b: len(b.path), default=None)
    return -1 if best is None else best.index


def _rng_state() -> Tuple[torch.Tensor, List[torch.Tensor]]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return torch.get_rng_state(), cuda


def _set_rng_state(state: Tuple[torch.Tensor, List[torch.Tensor]]) -> None:
    torch.set_rng_state(state[0])
    if state[1]:
        torch.cuda.set_rng_state_all(state[1])
