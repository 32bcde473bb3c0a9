"""``PETLBackbone``: apply PETL methods to any supported OpenMMLab backbone, by config."""
import re
from typing import (Callable, ContextManager, Dict, Iterable, List, Optional, Sequence, Set,
                    Tuple, Union)

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule

from ..registry import MODELS, PETL_METHODS
from .anatomy import Anatomy
from .load_report import LoadReporter
from .profiles import find_profile

_INNER = 'backbone'


@MODELS.register_module()
class PETLBackbone(BaseModule):
    """Wrap a host backbone, inject PETL methods and own the freezing, at model build.

    The inner backbone is built from the host toolbox's registry (the config's
    ``default_scope``). Checkpoint keys keep the host's names: ``state_dict()`` drops the
    wrapper's own ``backbone.`` level and loading adds it back, so pretrained and full-model
    checkpoints load unchanged, and every load into the backbone logs a report of what loaded.

    Args:
        backbone: Config of the host backbone, e.g. ``dict(type='SwinTransformer', ...)``.
        petl: One method config or a list of them, e.g. ``dict(type='LoRA', rank=64)``.
        profile: Force a backbone profile by name; by default it is found from the class.
        trainable: Regexes (``re.search`` on host parameter names) of extra host parameters
            to train, e.g. ``['pos_embed']``. Each must match at least one parameter.
        init_cfg: Must stay None: the host backbone's own ``init_cfg`` does the loading.

    Examples:
        >>> model = dict(
        ...     backbone=dict(
        ...         type='vpetl_mm.PETLBackbone',
        ...         backbone=dict(type='SwinTransformer', embed_dims=128, depths=[2, 2, 18, 2],
        ...                       num_heads=[4, 8, 16, 32], init_cfg=dict(
        ...                           type='Pretrained', checkpoint='swin_base.pth')),
        ...         petl=dict(type='LoRA', rank=64)))
    """

    def __init__(self, backbone: dict, petl: Union[dict, Sequence[dict]],
                 profile: Optional[str] = None, trainable: Sequence[str] = (),
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is not None:
            raise ValueError('PETLBackbone takes no init_cfg: put init_cfg (e.g. Pretrained) '
                             'inside backbone=dict(...), where the host backbone loads it.')
        super().__init__()
        self._merged = self._unloaded = False
        inner = MODELS.build(backbone)
        self.add_module(_INNER, inner)
        self.profile = find_profile(inner, profile)
        self.anatomy = Anatomy(inner, self.profile)
        self.methods = self._build_methods(petl)
        for method in self.methods:  # the lifecycle: vpetl_mm/methods/base.py
            method.validate(self.anatomy)
        self._check_host_options()
        for method in self.methods:
            method.plan(self.anatomy)
        for method in self.methods:
            method.inject(self.anatomy)
        self.trainable_names = self._resolve_trainable(trainable)
        self.apply_trainability()
        self._check_checkpointing()
        self._register_state_dict_hook(_strip_inner_prefix)
        self._register_load_state_dict_pre_hook(_add_inner_prefix)
        # Before the reporter: its pre-hook must see the converted (host-named) keys.
        self.profile.install_weights(inner)
        self.load_reporter = LoadReporter(inner, self.injected_modules(), self.trainable_names)

    # -- construction ------------------------------------------------------------------------
    def _build_methods(self, petl) -> List:
        cfgs = [petl] if isinstance(petl, dict) else list(petl)
        if not cfgs:
            raise ValueError('petl=[] applies no method. Use petl=dict(type="Full") to fine-tune '
                             'everything or petl=dict(type="Frozen") for linear probing.')
        methods, seen = [], set()
        for cfg in cfgs:
            cfg = dict(cfg)
            kind = cfg.get('type')
            name = kind if isinstance(kind, str) else getattr(kind, '__name__', kind)
            cls = PETL_METHODS.get(kind) if isinstance(kind, str) else kind
            if cls is None:
                raise KeyError(f'Unknown PETL method {kind!r}. Known methods: '
                               f'{sorted(PETL_METHODS.module_dict)}.')
            if cls in seen:
                raise ValueError(f'PETL method {name} is listed twice in petl=[...]; merge the '
                                 'two entries into one.')
            seen.add(cls)
            cfg['type'] = cls
            cfg.setdefault('family', self.profile.family)
            cfg.setdefault('profile', self.profile.name)
            methods.append(PETL_METHODS.build(cfg))
        if len(methods) > 1 and any(m.TRAINS_ALL for m in methods):
            raise ValueError('Full trains the whole backbone; combining it with other PETL '
                             f'methods ({[m.name for m in methods]}) is contradictory.')
        if len(methods) > 1 and any(m.DETACHES_BACKBONE for m in methods):
            raise ValueError(f'{[m.name for m in methods if m.DETACHES_BACKBONE]} run the '
                             'backbone without autograd, so the other methods in petl=[...] '
                             f'({[m.name for m in methods]}) would get no gradient. Use one '
                             'method.')
        return methods

    def _check_host_options(self) -> None:
        frozen_stages = getattr(self.backbone, 'frozen_stages', -1)
        if frozen_stages is not None and frozen_stages >= 0 and any(
                m.TRAINS_ALL for m in self.methods):
            raise ValueError(
                f'Conflicting options: frozen_stages={frozen_stages} freezes part of the backbone '
                'but petl=Full trains all of it. Set frozen_stages=-1 (PETLBackbone owns '
                'freezing) or choose Partial/another method.')
    def _check_checkpointing(self) -> None:
        # Reentrant checkpointing gives no gradient to parameters inside a checkpointed block
        # whose input needs none: behind a frozen stem, that is every PETL parameter there.
        if not self.anatomy.uses_reentrant_checkpointing() or any(
                m.TRAINS_ALL or m.DETACHES_BACKBONE for m in self.methods):
            return
        inside = [f'{b.path}.{n}' for b in self.anatomy.blocks
                  for n, p in b.module.named_parameters() if p.requires_grad]
        if inside:
            raise ValueError(f'{[m.name for m in self.methods]} train parameters inside blocks '
                             f'that run under reentrant activation checkpointing (with_cp=True), '
                             f'e.g. {inside[0]}; they would get no gradient. Set with_cp=False '
                             'on the backbone (vpetl_mm makes with_cp safe only for mmaction2 '
                             'SwinTransformer3D).')

    def _resolve_trainable(self, extra: Sequence[str]) -> Set[str]:
        all_names = [n for n, _ in self.backbone.named_parameters()]
        names: Set[str] = set()
        for method in self.methods:
            names |= set(all_names) if method.TRAINS_ALL else method.trainable_base_params(
                self.anatomy)
            for inj in method.injected:
                names |= {f'{inj.name}.{n}' for n, _ in inj.module.named_parameters()}
        if extra and any(m.DETACHES_BACKBONE for m in self.methods):
            raise ValueError(f'trainable={list(extra)} cannot train: the method runs the '
                             'backbone without autograd. Remove trainable=.')
        for pattern in extra:
            hits = {n for n in all_names if re.search(pattern, n)}
            if not hits:
                raise ValueError(f'trainable pattern {pattern!r} matches no backbone parameter. '
                                 f'Example names: {all_names[:5]}.')
            names |= hits
        return names

    # -- lifecycle -----------------------------------------------------------------------------
    def apply_trainability(self) -> None:
        """Set ``requires_grad`` by structure: exactly :attr:`trainable_names` train."""
        for name, param in self.backbone.named_parameters():
            param.requires_grad_(name in self.trainable_names)

    def train(self, mode: bool = True) -> 'PETLBackbone':
        # The host's train() may re-freeze stages (frozen_stages) or set them to eval mode;
        # PETL parameters and modules must stay trainable whatever the host does.
        super().train(mode)
        self.apply_trainability()
        for method in self.methods:
            for inj in method.injected:
                inj.module.train(mode)
        return self

    def init_weights(self) -> None:
        """Host init first (this is where Pretrained weights load), then each method's init."""
        with self.load_reporter.during('host init_weights'):
            self.backbone.init_weights()
        if not self.load_reporter.loads_seen:
            print_log('PETLBackbone: the host init loaded no pretrained weights (no Pretrained '
                      'init_cfg); the backbone starts from its random init unless load_from '
                      'sets it.', logger='current')
        for method in self.methods:
            method.init_weights()
        self._is_init = True

    def calibrate(self, batches: Callable[[], Iterable[Tuple[torch.Tensor, torch.Tensor]]]
                  ) -> None:
        """Run the selection pass of the methods that select from the training data.

        SCT and GPS choose what they train from the frozen model's response to the training
        set; ``PETLCalibrationHook`` calls this before training (and caches the result).

        Args:
            batches: Returns a fresh iterator of ``(inputs, labels)`` batches, inputs as the
                backbone takes them (after the data preprocessor), labels ``(B, )`` ints.
        """
        mode = self.training
        self.eval()  # no dropout / drop path: select on the deterministic frozen model
        try:
            for method in self.methods:
                if method.CALIBRATES:
                    method.calibrate(self.anatomy, batches)
        finally:
            self.train(mode)

    def uncalibrated(self) -> List[str]:
        """Names of the methods whose calibration has not run (or been loaded) yet."""
        return [m.name for m in self.methods if not m.calibrated]

    def forward(self, *args, **kwargs):
        pending = self.uncalibrated()
        if pending:
            raise RuntimeError(
                f'{pending} select what they train from the training data before training, '
                "and that selection has not run. Add custom_hooks=[dict(type='vpetl_mm."
                "PETLCalibrationHook')] to the config (the generated configs have it), load a "
                'checkpoint trained with it, or call model.backbone.calibrate(batches).')
        output = _nested([m.forward_context() for m in self.methods], self.backbone, args, kwargs)
        for method in self.methods:
            output = method.transform_output(output)
        return output

    def __getattr__(self, name: str):
        # Host code reads backbone attributes (out_indices, num_features, ...): forward them.
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__(_INNER), name)

    # -- merge ---------------------------------------------------------------------------------
    @property
    def merged(self) -> bool:
        """Whether the mergeable methods are folded into the host weights now."""
        return self._merged

    def merge(self) -> None:
        """Fold the mergeable methods into the frozen weights (zero-cost inference).

        Methods merge in ``petl=[...]`` order, which is the order their hooks run in, so methods
        that fold into the same layer compose as they do unmerged (SSF then LoRA on ``qkv``).
        Methods that cannot merge (Adapter, VPT, BitFit, ...) stay as they are. Merging a
        merged model changes nothing.

        Examples:
            >>> wrapper.merge()      # e.g. petl=[dict(type='LoRA'), dict(type='Adapter')]
            >>> wrapper.unmerge()    # the weights are back as before merge()
        """
        if self._merged:
            return
        self._check_merge_order()
        for method in self.methods:
            if method.MERGEABLE:
                method.merge()
        self._merged = True

    def _check_merge_order(self) -> None:
        # A method that folds into a layer's *input* (a pre-hook, RepAdapter) changes what
        # another method reading that input sees; merged one after the other, the second
        # would fold its delta against the untransformed input, so refuse instead.
        owner = {id(inj.module): m for m in self.methods if m.MERGEABLE for inj in m.injected}
        for path, module in self.backbone.named_modules():
            pre = {owner.get(id(getattr(h, '__self__', None)))
                   for h in module._forward_pre_hooks.values()} - {None}
            post = {owner.get(id(getattr(h, '__self__', None)))
                    for h in module._forward_hooks.values()} - {None}
            if pre and len(pre | post) > 1:
                raise ValueError(
                    f'{sorted(m.name for m in pre)} fold into the input of {path}, which '
                    f'{sorted(m.name for m in (pre | post) - pre) or "another method"} also '
                    'reads: merged together they would not reproduce the model. Merge a model '
                    'with one of them, or keep it unmerged.')

    def unmerge(self) -> None:
        """Undo :meth:`merge`, in the reverse order (a no-op when nothing is merged)."""
        if self._unloaded:
            raise RuntimeError('merge_and_unload() removed the PETL modules: the merge cannot be '
                               'undone. Rebuild the model to train it again.')
        if not self._merged:
            return
        for method in reversed(self.methods):
            if method.MERGEABLE:
                method.unmerge()
        self._merged = False

    def unfoldable(self) -> List[str]:
        """Names of the methods the stock host backbone cannot reproduce after :meth:`merge`
        (their modules run at inference: adapters, prompts, side networks, folded prefixes)."""
        return [m.name for m in self.methods if not m.folds_into_host()]

    def merge_and_unload(self) -> nn.Module:
        """Merge, then remove every PETL hook and module: returns the plain host backbone.

        The returned module is the wrapper's inner backbone with stock state-dict keys and the
        host's own forward (what ``tools/export.py`` saves and the efficiency tool times). The
        wrapper keeps running it, but cannot :meth:`unmerge` any more.

        Raises:
            ValueError: if a method does not fold into the host (see :meth:`unfoldable`).

        Examples:
            >>> host = model.backbone.merge_and_unload()   # petl=dict(type='LoRA')
            >>> sorted(host.state_dict()) == sorted(stock_vit.state_dict())
            True
        """
        kept = self.unfoldable()
        if kept:
            raise ValueError(f'{kept} do not fold into the host backbone (their modules run at '
                             'inference), so merge_and_unload() cannot return a plain host. '
                             'Keep the PETLBackbone, or export adapter-only (tools/export.py).')
        self.merge()
        for method in self.methods:
            method.remove_hooks()
            for inj in method.injected:
                owner = self.backbone.get_submodule(inj.path) if inj.path else self.backbone
                delattr(owner, inj.attr)
            method.injected.clear()
        self.load_reporter.petl_keys = set()  # the host's own keys are all it loads now
        self._unloaded = True
        return self.backbone

    # -- introspection -------------------------------------------------------------------------
    def frozen_param_names(self) -> Set[str]:
        """Host parameter names (as in checkpoints) that do not train: what adapter-only
        checkpoints leave out, because the pretrained init restores them."""
        return {n for n, p in self.backbone.named_parameters() if not p.requires_grad}

    def num_trainable(self) -> int:
        """Trainable backbone parameters (the published ``Params`` and the PPT input)."""
        return sum(p.numel() for p in self.backbone.parameters() if p.requires_grad)

    def injected_modules(self) -> Dict[str, nn.Module]:
        """Injected module path (relative to the host backbone) -> module."""
        return {inj.name: inj.module for m in self.methods for inj in m.injected}


def _strip_inner_prefix(module, state_dict, prefix, local_metadata) -> None:
    inner = prefix + _INNER + '.'
    for key in [k for k in state_dict if k.startswith(inner)]:
        state_dict[prefix + key[len(inner):]] = state_dict.pop(key)


def _add_inner_prefix(state_dict, prefix, local_metadata, strict, missing, unexpected,
                      errors) -> None:
    inner = prefix + _INNER + '.'
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(inner)]:
        state_dict[inner + key[len(prefix):]] = state_dict.pop(key)


def _nested(contexts: Sequence[ContextManager], fn: Callable, args: tuple, kwargs: dict):
    """``fn(*args, **kwargs)`` inside ``contexts`` (outermost first), as nested ``with`` blocks.

    ``contextlib.ExitStack`` would do the same, but dynamo cannot trace it (a graph break in
    every compiled forward of a method with a context, e.g. a side network's ``no_grad``).
    """
    if not contexts:
        return fn(*args, **kwargs)
    with contexts[0]:
        return _nested(contexts[1:], fn, args, kwargs)
