"""The contract every PETL method implements.

A method never names a host module: it asks the :class:`~vpetl_mm.models.anatomy.Anatomy` for
abstract sites (``qkv``, ``fc2``, ``norm2`` ...) of each block. It may

* select base parameters to train (:meth:`trainable_base_params`), and/or
* inject new modules (:meth:`inject`) as ``petl_*`` children of blocks, wired in with forward
  hooks, so no host parameter is ever renamed and pretrained weights load as usual.

Its own initialisation (:meth:`init_weights`) runs after the host's ``init_weights``.
"""
import contextlib
from dataclasses import dataclass
from typing import (Any, Callable, ClassVar, ContextManager, Dict, Iterable, List, Optional, Set,
                    Tuple)

import torch
import torch.nn as nn
from torch.utils.hooks import RemovableHandle

from ..models.anatomy import Anatomy, BlockRef
from ..models.profiles import PROFILES


@dataclass
class Injection:
    """A module a method added: ``<path>.<attr>`` in the backbone, wired to ``site``."""
    path: str  # block path relative to the backbone
    attr: str  # attribute name on the block (``petl_<method>_<site>``)
    site: str  # abstract site it is wired to (for the report)
    module: nn.Module

    @property
    def name(self) -> str:
        return f'{self.path}.{self.attr}' if self.path else self.attr


class BasePETLMethod:
    """Base class of PETL methods.

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
        SITES: Abstract sites the method needs in every block.
        PROFILES: Names of the backbone profiles the method supports (empty: all of them).
        TOKENS: Token layouts the method supports (empty: all), e.g. ``('sequence', )`` for
            methods that add or read whole token sequences (VPT, DTL, SCT).
        DETACHES_BACKBONE: The backbone runs without autograd (side-network methods such as
            E3VA); such a method cannot be combined with others that train inside it.
        CALIBRATES: The method selects what it trains from the training data before training
            (SCT, GPS): :meth:`calibrate` must run first (``PETLCalibrationHook`` does).
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
    DETACHES_BACKBONE: ClassVar[bool] = False
    CALIBRATES: ClassVar[bool] = False

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

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in self.hparams.items())
        return f'{self.name}({args})'

    @classmethod
    def supports(cls, profile: str) -> bool:
        """Whether the method runs on backbones of the named profile."""
        if cls.TOKENS and (profile not in PROFILES or PROFILES[profile].tokens not in cls.TOKENS):
            return False
        return not cls.PROFILES or profile in cls.PROFILES

    # -- what a method overrides -------------------------------------------------------------
    def check(self, anatomy: Anatomy) -> None:
        """Raise ``ValueError`` (naming the fix) if the method cannot run on this backbone."""
        if not self.supports(anatomy.profile.name):
            raise ValueError(f'{self.name} is not supported on {anatomy.profile.name!r} '
                             f'backbones; it runs on '
                             f'{[n for n in PROFILES if self.supports(n)]}.')
        anatomy.require_sites(self.SITES, method=self.name)

    def inject(self, anatomy: Anatomy) -> None:
        """Add the method's modules to the backbone. Default: nothing to add."""

    def trainable_base_params(self, anatomy: Anatomy) -> Set[str]:
        """Names (relative to the backbone) of *host* parameters that train. Default: none."""
        return set()

    def init_weights(self) -> None:
        """Re-initialise injected modules; runs after the host's ``init_weights``."""
        for injection in self.injected:
            if hasattr(injection.module, 'reset_parameters'):
                injection.module.reset_parameters()

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
        raise TypeError(f'{self.name} cannot be merged into the backbone weights.')

    def folds_into_host(self) -> bool:
        """Whether the stock host backbone alone reproduces this method (after :meth:`merge`).

        True for mergeable methods (unless ``FOLDS_INTO_HOST`` says otherwise) and for methods
        that only choose host parameters to train (BitFit, LNTune, Partial, Full, Frozen):
        nothing injected, no hook, and the host's forward run as it is.
        """
        if self.FOLDS_INTO_HOST is not None:
            return self.FOLDS_INTO_HOST
        if self.MERGEABLE:
            return True
        cls = type(self)
        return (not self.injected and not self._handles and not self.DETACHES_BACKBONE
                and cls.forward_context is BasePETLMethod.forward_context
                and cls.transform_output is BasePETLMethod.transform_output)

    def unmerge(self) -> None:
        raise TypeError(f'{self.name} cannot be merged into the backbone weights.')

    # -- helpers for subclasses --------------------------------------------------------------
    def site_targets(self, anatomy: Anatomy, allowed: Tuple[str, ...]) -> Tuple[str, ...]:
        """``self.targets`` (one site or several) checked against ``allowed`` and the profile."""
        targets = (self.targets, ) if isinstance(self.targets, str) else tuple(self.targets)
        if not targets or any(t not in allowed for t in targets):
            raise ValueError(f'{self.name} targets must be among {allowed}, got {targets}.')
        anatomy.require_sites(targets, method=self.name)
        return targets

    def hook_linears(self, anatomy: Anatomy, targets: Tuple[str, ...],
                     make: Callable[[nn.Linear], nn.Module], pre: bool = False) -> None:
        """For every block and target site: ``make(layer)``, attach it, hook its ``hook`` on the
        host ``nn.Linear`` (which must have a bias, to fold into); hosts go to ``self._bases``."""
        self._bases: List[nn.Module] = []
        for block in anatomy.blocks:
            for site in targets:
                base = anatomy.site(block, site)
                if not isinstance(base, nn.Linear) or base.bias is None:
                    raise ValueError(f'{self.name} needs an nn.Linear with a bias at '
                                     f'{anatomy.site_path(block, site)} (to merge into).')
                layer = make(base)
                self.attach(block, site, layer)
                self.hook(base, layer.hook, pre=pre)
                self._bases.append(base)

    def fold_layers(self, merge: bool) -> None:
        """``merge()`` / ``unmerge()`` of methods whose every injection folds into one host layer.

        The i-th injected module has ``merged``, ``merge(base)`` and ``unmerge(base)``; its host
        layer is ``self._bases[i]``. Repeated calls are no-ops.
        """
        for inj, base in zip(self.injected, self._bases):
            if inj.module.merged != merge:
                (inj.module.merge if merge else inj.module.unmerge)(base)
                inj.module.merged = merge

    def attach(self, block: BlockRef, site: str, module: nn.Module) -> nn.Module:
        """Register ``module`` as ``block.petl_<method>_<site>`` (a sibling of the host layers).

        Siblings rather than children of host layers, so host init routines that walk e.g.
        ``ffn.modules()`` never touch them, and checkpoint keys stay readable.
        """
        attr = f'petl_{self.name.lower()}_{site.replace(".", "_")}'
        if hasattr(block.module, attr):
            raise ValueError(f'{block.path}.{attr} already exists: two PETL methods inject the same '
                             'module. Remove the duplicate entry from petl=[...].')
        block.module.add_module(attr, module)
        self.injected.append(Injection(block.path, attr, site, module))
        return module

    def attach_near(self, anatomy: Anatomy, path: str, module: nn.Module) -> nn.Module:
        """:meth:`attach` ``module`` for the host layer at ``path`` (relative to the backbone).

        It goes to the enclosing block (keys read ``layers.0.petl_ssf_attn_qkv``), else to the
        layer's parent (patch embedding, final norm), named after the layer's path there.
        """
        owner = next((b for b in sorted(anatomy.blocks, key=lambda b: -len(b.path))
                      if path.startswith(b.path + '.')), None)
        if owner is None:
            parent = path.rpartition('.')[0]
            owner = BlockRef(-1, parent, anatomy._get(anatomy.backbone, parent), 0)
        return self.attach(owner, path[len(owner.path) + 1:] if owner.path else path, module)

    def hook(self, target: nn.Module, fn, pre: bool = False) -> None:
        """Register a forward (pre-)hook whose handle is kept for :meth:`remove_hooks`."""
        handle = target.register_forward_pre_hook(fn) if pre else target.register_forward_hook(fn)
        self._handles.append(handle)

    def remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def block_params(anatomy: Anatomy, blocks: Optional[List[BlockRef]] = None) -> Set[str]:
    """Names of every host parameter inside ``blocks`` (default: all blocks)."""
    names = set()
    for block in anatomy.blocks if blocks is None else blocks:
        names.update(f'{block.path}.{n}' for n, _ in block.module.named_parameters())
    return names
