"""Peft: every tuner of HuggingFace ``peft`` on any profiled backbone, by config.

``petl=dict(type='Peft', peft_type='BOFT', targets=['qkv', 'proj', 'fc1', 'fc2'], **options)``
translates the abstract ``targets`` into the host's module names through the profile
(:mod:`vpetl_mm.models.profiles`) and lets peft's own tuner class (``peft.tuners``, the class
``peft.inject_adapter_in_model`` builds, with the matching ``*Config`` and ``target_modules``
the full module names) create its layers. The host keeps its modules: each peft layer moves
out to a ``petl_peft_<site>`` sibling (:class:`PeftSite`) that a forward hook runs in the host
layer's place, so host keys, pretrained loading, host patches and the contract's checkpoints
work as for the native methods, and peft's own ``merge`` / ``unmerge`` fold it.

Which tuners pass the contract on which hosts is in ``docs/peft.md`` (measured by
``tools/analysis/peft_table.py``); the ones this
module vouches for (zero-init flag and mergeability) are :data:`TUNERS`. Source: peft 0.21.2
(huggingface/peft@v0.21.2, ``src/peft/tuners/*/config.py`` for every option and default).
"""
from functools import partial
from typing import Any, Dict, List, Optional, Tuple

from ..models.anatomy import Anatomy
from ..models.profiles import PROFILES
from ..registry import PETL_METHODS
from .base import BasePETLMethod
from .peft_sites import PeftSite, build_peft_config, lift_tuner_layers, peft_type_name

#: Tuners verified by ``tests/test_peft_bridge.py``: peft type -> (its init flag option, the
#: flag values whose init is the identity (ZERO_INIT), MERGEABLE). Other peft tuners run
#: without these promises (ZERO_INIT and MERGEABLE False) until measured and added here.
TUNERS: Dict[str, Tuple[str, Tuple[Any, ...], bool]] = {
    # init_lora_weights='pissa' / 'olora' / ... keep the function but move part of the host
    # weights into the adapter, so the host alone no longer gives the step-0 output
    'LORA': ('init_lora_weights', (True, 'gaussian'), True),
    'LOHA': ('init_weights', (True, ), True),
    'LOKR': ('init_weights', (True, ), True),
    'OFT': ('init_weights', (True, ), True),
    'BOFT': ('init_weights', (True, ), True),
    'HRA': ('init_weights', (True, ), True),
    'VERA': ('init_weights', (True, ), True),
    # FourierFT's published init is a Gaussian spectrum (peft's default init_weights=False)
    'FOURIERFT': ('init_weights', (True, ), True),
    'IA3': ('init_ia3_weights', (True, ), True),
}
#: LoRA inits that read the host weights: they run in init_weights(), after the pretrained
#: weights load (peft's ``pissa_init`` / ``olora_init``), never on the random build-time host
HOST_READING_INITS = ('pissa', 'olora')


class _TunerFact:
    """A class-level fact (``folds_into_host``) that an instance may refine for its tuner."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def __get__(self, obj, cls):
        return partial(self.fn, cls if obj is None else obj)


@PETL_METHODS.register_module()
class Peft(BasePETLMethod):
    """Any peft tuner (LoRA, DoRA, LoHa, LoKr, OFT, BOFT, HRA, VeRA, FourierFT, IA3, ...).

    Args:
        peft_type: A ``peft.PeftType`` name, any case (``'LoRA'``, ``'BOFT'``, ``'IA3'``).
        targets: Abstract sites (``qkv``, ``proj``, ``fc1``, ``fc2``, ...) of every block that
            the tuner adapts; the profile names the host modules.
        **options: Options of the tuner's peft ``*Config`` (``r``, ``lora_alpha``,
            ``use_dora``, ``use_rslora``, ``init_lora_weights``, ``boft_block_size`` ...).
            ``target_modules`` and ``modules_to_save`` are the bridge's own business.

    Defaults: peft's LoRA (``r=8``, ``lora_alpha=8``: ``LoraConfig`` of peft@v0.21.2,
    ``src/peft/tuners/lora/config.py``) on the fused ``qkv``: ``A`` (r x C) + ``B`` (3C x r) =
    4 C r parameters per block, 294,912 on ViT-B/16 (C = 768, 12 blocks): the count of V-PETL's
    LoRA on q and v at rank 8 (no published figure for the bridge itself).
    peft cannot adapt only q and v of a fused qkv layer (it adapts whole modules); the native
    ``LoRA`` (V-PETL's q and v) can.

    Examples:
        >>> petl = dict(type='Peft', peft_type='BOFT', targets=['qkv', 'proj', 'fc1', 'fc2'],
        ...             boft_block_size=4)
        >>> petl = dict(type='Peft', peft_type='LoRA', r=16, use_dora=True)
    """
    DEFAULTS = dict(peft_type='LORA', targets=('qkv', ))
    MERGEABLE = True  # the default tuner (LoRA); each instance sets its tuner's own
    SITES = ()

    def __init__(self, family: str = 'image', profile: Optional[str] = None,
                 peft_type: Optional[str] = None, targets: Any = None,
                 **options: Any) -> None:
        super().__init__(family, profile, peft_type=peft_type, targets=targets)
        self.peft_type = peft_type_name(self.peft_type)
        self.targets = (self.targets, ) if isinstance(self.targets, str) else tuple(self.targets)
        self.options = dict(options)
        config = build_peft_config(self.peft_type, self.options, ['?'])  # bad options fail now
        self.hparams.update(peft_type=self.peft_type, targets=self.targets, **self.options)
        flag, identity, mergeable = TUNERS.get(self.peft_type, ('', (), False))
        init = getattr(config, flag, None) if flag else None
        self.ZERO_INIT = init in identity if flag else False
        self.MERGEABLE = mergeable
        self.host_init = init if self.peft_type == 'LORA' and isinstance(init, str) and \
            init.startswith(HOST_READING_INITS) else None
        self.sites: List[PeftSite] = []

    @_TunerFact
    def folds_into_host(self_or_cls) -> bool:
        """Whether the stock host reproduces the merged tuner (its ``MERGEABLE``)."""
        return bool(self_or_cls.MERGEABLE)

    @classmethod
    def supports(cls, profile: str) -> bool:
        """Whether the default targets (``qkv``) exist on the named profile; other targets
        are checked against the profile when the method is built (:meth:`validate`)."""
        known = PROFILES.get(profile)
        return super().supports(profile) and (
            known is None or set(cls.DEFAULTS['targets']) <= set(known.sites))

    def validate(self, anatomy: Anatomy) -> None:
        # the instance's targets decide, not the default's: fc1 / fc2 run on ConvNeXt
        missing = sorted(set(self.targets) - set(anatomy.profile.sites))
        if missing:
            raise ValueError(
                f'{self.name} is not supported on {anatomy.profile.name!r} backbones with '
                f'targets {missing}: that profile does not define them. Target its sites '
                f'{sorted(anatomy.profile.sites)} instead (targets=[...]).')
        for block in anatomy.blocks:
            for site in self.targets:
                host = anatomy.site(block, site)
                if next(host.children(), None) is not None:
                    raise ValueError(
                        f'Peft targets must be single layers: {site!r} is '
                        f'{anatomy.site_path(block, site)} ({type(host).__name__}), a container '
                        'of layers. Target its layers (qkv, proj, fc1, fc2) instead.')

    def plan(self, anatomy: Anatomy) -> None:
        self.paths = {(block.index, site): anatomy.site_path(block, site)
                      for block in anatomy.blocks for site in self.targets}

    def inject(self, anatomy: Anatomy) -> None:
        paths = list(self.paths.values())
        layers = lift_tuner_layers(anatomy.backbone, self.peft_config(), paths)
        for block in anatomy.blocks:
            for site in self.targets:
                host, layer = layers[self.paths[(block.index, site)]]
                wrapped = self.attach(block, site, PeftSite(layer))
                self.hook(host, wrapped.hook)
                self.sites.append(wrapped)

    def init_weights(self) -> None:
        """Re-run peft's init after the host's (which loads the pretrained file, and on some
        hosts re-draws every ``nn.Linear``, peft's LoRA factors included): LoRA's factors and
        DoRA's magnitude every time, PiSSA / OLoRA once (they move part of the host weight into
        the adapter)."""
        lora_init = self.options.get('init_lora_weights', True) if self.peft_type == 'LORA' \
            else None
        host_init = self.host_init
        if host_init:  # once: a second run would move a part of the residual again
            lora_init, host_init = (None, None) if getattr(self, '_host_init_done', False) \
                else (True, host_init)
        for wrapped in self.sites:
            wrapped.reinit(lora_init, host_init)
        self._host_init_done = True

    def merge(self) -> None:
        """peft's own merge of every layer (``safe_merge=False``); merged layers are skipped."""
        if not self.MERGEABLE:
            raise TypeError(f'Peft({self.peft_type}) cannot be merged into the backbone weights.')
        for wrapped in self.sites:
            wrapped.merge()

    def unmerge(self) -> None:
        """peft's own unmerge, in reverse order (a no-op for unmerged layers)."""
        if not self.MERGEABLE:
            raise TypeError(f'Peft({self.peft_type}) cannot be merged into the backbone weights.')
        for wrapped in reversed(self.sites):
            wrapped.unmerge()

    def peft_config(self, root: str = ''):
        """This tuner's peft ``*Config``, ``target_modules`` the host paths (after :meth:`plan`)
        relative to the module at ``root`` (``'timm_model'``: the timm model's own names).

        The build-time config: a host-reading LoRA init (PiSSA, OLoRA) is peft's zero-B init
        here and runs in :meth:`init_weights`.
        """
        strip = len(root) + 1 if root else 0
        paths = {key: path[strip:] for key, path in self.paths.items()}
        options = dict(self.options)
        if self.host_init:
            options['init_lora_weights'] = True
        if self.peft_type == 'IA3' and 'feedforward_modules' not in options:
            # IA3 scales the *input* of feed-forward layers (the MLP's hidden activations:
            # the paper's l_ff), the output of the others
            options['feedforward_modules'] = [p for (_, site), p in paths.items()
                                              if site == 'fc2']
        return build_peft_config(self.peft_type, options, list(paths.values()))

    def remove_hooks(self) -> None:
        super().remove_hooks()
        self.sites.clear()

