"""The contract every PETL method implements.

A method never names a host module: it asks the :class:`~vpetl_mm.models.anatomy.Anatomy` for
abstract sites (``qkv``, ``fc2``, ``norm2`` ...) of each block. It may select host parameters
to train (:meth:`BasePETLMethod.trainable_base_params`) and / or inject new ``petl_*`` modules,
wired in with forward hooks, so no host parameter is ever renamed and pretrained weights load
as usual.

``PETLBackbone`` runs the lifecycle stages in this order, each with one job:

1. ``validate(anatomy)``: raise ``ValueError`` naming the fix if the method cannot run on this
   backbone (every method, before any is injected). Stores nothing.
2. ``plan(anatomy)``: derive the per-backbone state the method needs (targets, block ranges,
   widths) and store it on the method.
3. ``inject(anatomy)``: build the modules in their initial state and wire them in with the
   helpers (``attach`` / ``attach_near`` / ``attach_root``, ``hook`` / ``hook_blocks`` /
   ``hook_fold`` / ``hook_linears``).
4. ``init_weights()``: re-initialise after the host's ``init_weights`` (where ``Pretrained``
   weights load); initialisation that reads the loaded host weights belongs here only.
5. ``merge()`` / ``unmerge()``: fold into the host weights and back (``MERGEABLE`` methods).
"""
import contextlib
from dataclasses import dataclass
from functools import partial
from typing import (Any, Callable, ClassVar, ContextManager, Dict, Iterable, List, Optional, Set,
                    Tuple)

import torch
import torch.nn as nn
from torch.utils.hooks import RemovableHandle

from ..models.anatomy import Anatomy, BlockRef
from ..models.profiles import PROFILES

# parents that would run (Sequential) or list (ModuleList / Dict) a child added to them
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class Injection:
    """A module a method added: ``<path>.<attr>`` in the backbone, wired to ``site``."""
    path: str  # owner path relative to the backbone: a block, a layer's parent, '' (the root)
    attr: str  # attribute name on the owner (``petl_<method>_<site>``)
    site: str  # abstract site it is wired to (for the report)
    module: nn.Module

    @property
    def name(self) -> str:
        return f'{self.path}.{self.attr}' if self.path else self.attr


Hook = Callable[..., Any]


class BasePETLMethod:
    """Base class of PETL methods (see the module docstring for the lifecycle).

    Hyper-parameters are keyword arguments. Unset ones (``None``) take the value of
    ``PROFILE_DEFAULTS[profile]`` (the backbone profile), then ``FAMILY_DEFAULTS[family]`` (its
    task family), then ``DEFAULTS``, so defaults reproduce each published parameter count.

    Class attributes:
        DEFAULTS: Hyper-parameter defaults shared by all families (also the allowed names).
        FAMILY_DEFAULTS: Per-family overrides: ``{'image': {...}, 'dense': {...}, 'video': {...}}``.
        PROFILE_DEFAULTS: Per-profile overrides (``{'mmaction.VisionTransformer': {...}}``),
            where one family's backbones were published with different settings.
        ZERO_INIT: Whether the backbone output is unchanged at step 0 (the contract tests check).
        MERGEABLE: Whether :meth:`merge` folds the method into the frozen weights.
        FOLDS_INTO_HOST: Whether, after :meth:`merge`, the host alone computes the same function
            (the injected modules can be dropped: ``tools/export.py`` writes a stock model).
            ``None`` (the default) means: the same as ``MERGEABLE``. A method whose merge keeps
            state outside the host weights (PrefixTuning's folded prefixes) sets ``False``.
        TRAINS_ALL: Whether the whole backbone trains (full fine-tuning).
        SITES: Abstract sites the method needs in every block (the default :meth:`validate`).
        PROFILES: Names of the backbone profiles the method supports (empty: all of them).
        TOKENS: Token layouts the method supports (empty: all), e.g. ``('sequence', )`` for
            methods that add or read whole token sequences (VPT, DTL, SCT).
        INSERTS_TOKENS: The method inserts tokens into the blocks' sequences (VPT's prompts,
            HST's meta tokens): it runs only on profiles whose ``extra_tokens`` is True (not
            where attention positions are tied to the patch grid, e.g. RoPE).
        DETACHES_BACKBONE: The backbone runs without autograd (side-network methods such as
            E3VA); such a method cannot be combined with others that train inside it.
        CALIBRATES: The method selects what it trains from the training data before training
            (SCT, GPS): :meth:`calibrate` must run first (``PETLCalibrationHook`` does).

    Examples:
        A sequential adapter after every MLP (``Bottleneck`` from ``methods/layers.py``; the
        full worked example is in ``docs/add_petl_method.md``):

        >>> @PETL_METHODS.register_module()
        ... class MLPAdapter(BasePETLMethod):
        ...     DEFAULTS = dict(bottleneck=8)
        ...     SITES = ('fc2', )
        ...
        ...     def inject(self, anatomy):
        ...         for block in anatomy.blocks:
        ...             adapter = self.attach(block, 'mlp', Bottleneck(block.dim, self.bottleneck))
        ...             self.hook(anatomy.site(block, 'fc2'), adapter.sequential_hook)
    """
    DEFAULTS: ClassVar[Dict[str, Any]] = {}
    FAMILY_DEFAULTS: ClassVar[Dict[str, Dict[str, Any]]] = {}
    PROFILE_DEFAULTS: ClassVar[Dict[str, Dict[str, Any]]] = {}
    ZERO_INIT: ClassVar[bool] = True
    MERGEABLE: ClassVar[bool] = False
    FOLDS_INTO_HOST: ClassVar[Optional[bool]] = None
    TRAINS_ALL: ClassVar[bool] = False
    SITES: ClassVar[Tuple[str, ...]] = ()
    PROFILES: ClassVar[Tuple[str, ...]] = ()
    TOKENS: ClassVar[Tuple[str, ...]] = ()
    INSERTS_TOKENS: ClassVar[bool] = False
    DETACHES_BACKBONE: ClassVar[bool] = False
    CALIBRATES: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if 'check' in vars(cls):  # the pre-lifecycle name: it would silently never run
            raise TypeError(f'{cls.__name__} defines check(), which the method contract split '
                            'into validate() (raise only) and plan() (store per-backbone '
                            'state); rename it.')

    def __init__(self, family: str = 'image', profile: Optional[str] = None,
                 **hparams: Any) -> None:
        unknown = set(hparams) - set(self.DEFAULTS)
        if unknown:
            raise TypeError(f'{self.name} got unknown option(s) {sorted(unknown)}; '
                            f'its options are {sorted(self.DEFAULTS)}.')
        resolved = dict(self.DEFAULTS)
        resolved.update(self.FAMILY_DEFAULTS.get(family, {}))
        resolved.update(self.PROFILE_DEFAULTS.get(profile, {}))
        resolved.update({k: v for k, v in hparams.items() if v is not None})
        self.family = family
        self.hparams: Dict[str, Any] = resolved
        for key, value in resolved.items():
            setattr(self, key, value)
        self.injected: List[Injection] = []
        self._handles: List[RemovableHandle] = []
        self._folds: List[Tuple[nn.Module, nn.Module]] = []  # (layer, host layer it folds into)

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in self.hparams.items())
        return f'{self.name}({args})'

    @classmethod
    def supports(cls, profile: str) -> bool:
        """Whether the method runs on backbones of the named profile (``PROFILES``, ``TOKENS``,
        ``INSERTS_TOKENS``, and the ``SITES`` it needs in every block)."""
        known = PROFILES.get(profile)
        if cls.TOKENS and (known is None or known.tokens not in cls.TOKENS):
            return False
        if known is not None and (not set(cls.SITES) <= set(known.sites)
                                  or cls.INSERTS_TOKENS and not known.extra_tokens):
            return False
        return not cls.PROFILES or profile in cls.PROFILES

    # -- the lifecycle: what a method overrides ------------------------------------------------
    def validate(self, anatomy: Anatomy) -> None:
        """Raise ``ValueError`` (naming the fix) if the method cannot run on this backbone.

        Stores nothing: per-backbone state belongs to :meth:`plan`. Default: :meth:`supports`
        and the ``SITES``; overrides call ``super().validate(anatomy)`` first.
        """
        if not self.supports(anatomy.profile.name):
            missing = sorted(set(self.SITES) - set(anatomy.profile.sites))
            why = (f': {self.name} needs the site(s) {missing}, which that profile does not '
                   'define, and is not supported without them' if missing else
                   ': it inserts tokens, which that host cannot position (extra_tokens=False)'
                   if self.INSERTS_TOKENS and not anatomy.profile.extra_tokens else '')
            raise ValueError(f'{self.name} is not supported on {anatomy.profile.name!r} '
                             f'backbones{why}; it runs on '
                             f'{[n for n in PROFILES if self.supports(n)]}.')
        anatomy.require_sites(self.SITES, method=self.name)

    def plan(self, anatomy: Anatomy) -> None:
        """Store the per-backbone state :meth:`inject` needs (runs after :meth:`validate`)."""

    def inject(self, anatomy: Anatomy) -> None:
        """Build the method's modules, attach and wire them. Default: nothing to add."""

    def init_weights(self) -> None:
        """Re-initialise injected modules; runs after the host's ``init_weights``.

        Default: ``reset_parameters()`` of each injected module that has one. Modules are
        built in the same state by :meth:`inject`, so a model is usable before this runs.
        """
        for injection in self.injected:
            if hasattr(injection.module, 'reset_parameters'):
                injection.module.reset_parameters()

    def trainable_base_params(self, anatomy: Anatomy) -> Set[str]:
        """Names (relative to the backbone) of *host* parameters that train. Default: none."""
        return set()

    def forward_context(self) -> ContextManager:
        """Context the host backbone's forward runs in (e.g. ``torch.no_grad()``)."""
        return contextlib.nullcontext()

    def transform_output(self, output: Any) -> Any:
        """Post-process the host backbone's output (outside :meth:`forward_context`)."""
        return output

    def calibrate(self, anatomy: Anatomy,
                  batches: Callable[[], Iterable[Tuple[torch.Tensor, torch.Tensor]]]) -> None:
        """Select from the training data with the frozen model (``CALIBRATES`` methods).

        Args:
            anatomy: The backbone's anatomy (``anatomy.backbone`` is the host, eval mode).
            batches: Returns a fresh iterator of ``(inputs, labels)`` over the training set.
        """
        raise TypeError(f'{self.name} has no calibration pass.')

    @property
    def calibrated(self) -> bool:
        """Whether the method is ready to run (always, unless it ``CALIBRATES``)."""
        return True

    def merge(self) -> None:
        """Fold into the host weights (``MERGEABLE`` methods); repeated calls change nothing.

        Default: :meth:`fold_layers` over the layers wired by :meth:`hook_fold` /
        :meth:`hook_linears`; a method whose fold is different overrides both this and
        :meth:`unmerge`.
        """
        self.fold_layers(True)

    def unmerge(self) -> None:
        """Undo :meth:`merge` (layers in reverse order); a no-op when not merged."""
        self.fold_layers(False)

    def remove_hooks(self) -> None:
        """Unwire the method (tests re-run the host bare); overrides also undo host patches."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    # -- derived queries -----------------------------------------------------------------------
    @classmethod
    def folds_into_host(cls) -> bool:
        """Whether the stock host backbone alone reproduces this method (after :meth:`merge`).

        ``FOLDS_INTO_HOST`` where set; else True for mergeable methods and for methods that
        only choose host parameters to train (BitFit, LNTune, Partial, Full, Frozen): no
        :meth:`inject`, no forward context or output transform, the host's forward run as it
        is. A class-level fact: the benchmark tables read it without building a model, and
        ``tests/test_contract.py`` checks it on every profile (``merge_and_unload``).
        """
        if cls.FOLDS_INTO_HOST is not None:
            return cls.FOLDS_INTO_HOST
        if cls.MERGEABLE:
            return True
        base = BasePETLMethod
        return (cls.inject is base.inject and not cls.DETACHES_BACKBONE
                and cls.forward_context is base.forward_context
                and cls.transform_output is base.transform_output)

    # -- helpers for validate / plan -----------------------------------------------------------
    def site_targets(self, anatomy: Anatomy, allowed: Tuple[str, ...]) -> Tuple[str, ...]:
        """``self.targets`` (one site or several) checked against ``allowed`` and the profile."""
        targets = (self.targets, ) if isinstance(self.targets, str) else tuple(self.targets)
        if not targets or any(t not in allowed for t in targets):
            raise ValueError(f'{self.name} targets must be among {allowed}, got {targets}.')
        anatomy.require_sites(targets, method=self.name)
        return targets

    def require_linears(self, anatomy: Anatomy, sites: Iterable[str], bias: bool) -> None:
        """Raise unless every block has an ``nn.Linear`` (with a bias if ``bias``) at ``sites``."""
        for block in anatomy.blocks:
            for site in sites:
                host = anatomy.site(block, site)
                if not isinstance(host, nn.Linear) or (bias and host.bias is None):
                    what = 'an nn.Linear with a bias (to merge into)' if bias else 'an nn.Linear'
                    raise ValueError(f'{self.name} needs {what} at '
                                     f'{anatomy.site_path(block, site)}, found {host}.')

    def attention_heads(self, anatomy: Anatomy, block: BlockRef) -> int:
        """Heads of the host attention at ``block`` (its ``num_heads``, or its ``w_msa``'s on
        Swin), or ``ValueError`` if there is none dividing the width."""
        attn = anatomy.site(block, 'attn')
        heads = getattr(attn, 'num_heads', None) or getattr(
            getattr(attn, 'w_msa', None), 'num_heads', None)
        if not heads or block.dim % heads:
            raise ValueError(f'{self.name}: {anatomy.site_path(block, "attn")} has no usable '
                             f'num_heads ({heads}) for width {block.dim}.')
        return heads

    # -- helpers for inject: where modules live ------------------------------------------------
    def attach(self, block: BlockRef, site: str, module: nn.Module) -> nn.Module:
        """Register ``module`` as ``block.petl_<method>_<site>`` (a sibling of the host layers).

        Siblings rather than children of host layers, so host init routines that walk e.g.
        ``ffn.modules()`` never touch them, and checkpoint keys stay readable.
        """
        return self._register(block.path, block.module, site, site, module)

    def attach_near(self, anatomy: Anatomy, path: str, module: nn.Module) -> nn.Module:
        """:meth:`attach` ``module`` for the host layer at ``path`` (relative to the backbone).

        It goes to the enclosing block (keys read ``layers.0.petl_ssf_attn_qkv``), else to the
        layer's parent (patch embedding, final norm), named after the layer's path there. A
        container parent (``nn.Sequential`` would run an added child; ConvNeXt's
        ``downsample_layers.1.1``) is skipped for the first ancestor that is not one.
        """
        owner = next((b for b in sorted(anatomy.blocks, key=lambda b: -len(b.path))
                      if path.startswith(b.path + '.')), None)
        if owner is not None:
            return self.attach(owner, path[len(owner.path) + 1:], module)
        parent, _, layer = path.rpartition('.')
        while parent and isinstance(anatomy._get(anatomy.backbone, parent), _CONTAINERS):
            parent, _, up = parent.rpartition('.')
            layer = f'{up}_{layer}'
        return self._register(parent, anatomy._get(anatomy.backbone, parent), layer, layer,
                              module)

    def attach_root(self, anatomy: Anatomy, name: str, module: nn.Module,
                    site: str = 'output') -> nn.Module:
        """Register ``module`` as ``backbone.petl_<method>_<name>``: it belongs to no block.

        For a side network's stream ends, weights shared by every block (FacT's ``U`` / ``V``)
        or per-output modules. Recorded like :meth:`attach`, so checkpoints, the load report
        and ``injected_modules()`` see it (path ``''``).
        """
        return self._register('', anatomy.backbone, name, site, module)

    def _register(self, path: str, owner: nn.Module, suffix: str, site: str,
                  module: nn.Module) -> nn.Module:
        attr = f'petl_{self.name.lower()}_{suffix.replace(".", "_")}'
        if hasattr(owner, attr):
            where = f'{path}.{attr}' if path else attr
            raise ValueError(f'{where} already exists: two PETL methods inject the same '
                             'module. Remove the duplicate entry from petl=[...].')
        owner.add_module(attr, module)
        self.injected.append(Injection(path, attr, site, module))
        return module

    # -- helpers for inject: how modules are wired ---------------------------------------------
    def hook(self, target: nn.Module, fn: Hook, pre: bool = False) -> None:
        """Register a forward (pre-)hook whose handle is kept for :meth:`remove_hooks`.

        Pass bound methods or ``functools.partial`` of them, not closures: deep copies (EMA
        models) rebind bound methods to the copied modules.
        """
        handle = target.register_forward_pre_hook(fn) if pre else target.register_forward_hook(fn)
        self._handles.append(handle)

    def hook_blocks(self, anatomy: Anatomy, before: Optional[Hook], after: Optional[Hook]) -> None:
        """On every block: ``before(index, block, args)`` as a pre-hook and ``after(index,
        block, args, output)`` as a hook (either may be None), ``index`` the block's."""
        for block in anatomy.blocks:
            if before is not None:
                self.hook(block.module, partial(before, block.index), pre=True)
            if after is not None:
                self.hook(block.module, partial(after, block.index))

    def hook_fold(self, host: nn.Module, layer: nn.Module, fn: Hook, pre: bool = False) -> None:
        """:meth:`hook` ``fn`` on ``host`` and record that ``layer`` folds into it.

        ``layer`` has a ``merged`` flag, ``merge(host)`` and ``unmerge(host)``; its hook must
        pass the host output through while ``merged``. The default :meth:`merge` folds it.
        """
        self.hook(host, fn, pre=pre)
        self._folds.append((layer, host))

    def hook_linears(self, anatomy: Anatomy, targets: Iterable[str],
                     make: Callable[[nn.Linear, str], nn.Module], pre: bool = False) -> None:
        """For every block and target site: ``layer = make(host, site)`` on the host
        ``nn.Linear``, attached as ``petl_<method>_<site>`` and wired by :meth:`hook_fold`
        with ``layer.hook`` (:meth:`require_linears` in :meth:`validate` checks the hosts)."""
        for block in anatomy.blocks:
            for site in targets:
                host = anatomy.site(block, site)
                layer = self.attach(block, site, make(host, site))
                self.hook_fold(host, layer, layer.hook, pre=pre)

    def fold_layers(self, merge: bool) -> None:
        """Merge (in wiring order) or unmerge (in reverse) every :meth:`hook_fold` layer.

        Repeated calls are no-ops. ``TypeError`` for methods that cannot merge.
        """
        if not self.MERGEABLE:
            raise TypeError(f'{self.name} cannot be merged into the backbone weights.')
        if not self._folds and self.injected:
            raise NotImplementedError(f'{self.name} is MERGEABLE but wired no layer with '
                                      'hook_fold / hook_linears: override merge() and unmerge().')
        for layer, host in (self._folds if merge else reversed(self._folds)):
            if layer.merged != merge:
                (layer.merge if merge else layer.unmerge)(host)
                layer.merged = merge


def block_params(anatomy: Anatomy, blocks: Optional[List[BlockRef]] = None) -> Set[str]:
    """Names of every host parameter inside ``blocks`` (default: all blocks)."""
    names = set()
    for block in anatomy.blocks if blocks is None else blocks:
        names.update(f'{block.path}.{n}' for n, _ in block.module.named_parameters())
    return names
