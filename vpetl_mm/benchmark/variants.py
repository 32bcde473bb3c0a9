"""The benchmark's method variants: the one home of each method's benchmark metadata.

A *variant* is what the benchmark runs under one config folder: a registered PETL method with
fixed keyword arguments (``vpt_shallow`` / ``vpt_deep`` are two variants of ``VPT``, ``linear``
is ``Frozen`` in the image tables). :data:`VARIANTS` lists the variants that need a word the
class cannot give: a folder name other than the lower-case class name, a title, a name in the
published tables, per-variant config lines, a restriction to some matrices or the demo's name.
Every other registered method gets a default variant from its class (:func:`default_variant`),
so a new method reaches the generated configs (:mod:`.matrices`), the report tables
(:mod:`.report`) and the digits demo's zoo with its module and its registry import alone.
Mergeability is never restated here: the class says it
(:meth:`~vpetl_mm.methods.base.BasePETLMethod.folds_into_host`).

Examples:
    >>> [v.folder for v in variants() if v.petl == 'VPT']
    ['vpt_shallow', 'vpt_deep']
    >>> published_names()['linear']
    'Linear probing'
"""
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Tuple, Type

from .. import methods  # noqa: F401  (registers every PETL method in PETL_METHODS)
from ..methods.base import BasePETLMethod
from ..registry import PETL_METHODS

#: the generated matrices a default variant may join, with the backbone profiles they run on
MATRIX_PROFILES: Dict[str, Tuple[str, ...]] = {
    'image': ('mmpretrain.VisionTransformer', ),
    'video': ('mmaction.VisionTransformer', 'mmaction.SwinTransformer3D'),
}
#: the profile of the digits demo's tiny ViT (demo/digits_transfer.py)
DEMO_PROFILE = 'mmpretrain.VisionTransformer'


@dataclass(frozen=True)
class Variant:
    """One benchmark variant of a registered PETL method.

    Args:
        folder: The config folder, ``configs/<folder>/``.
        title: One line saying what the variant is (the generated configs' first line).
        petl: The method's registered type name.
        kwargs: The fixed keyword arguments of its ``petl`` dict.
        published: The method's name in the published tables (default: the class name).
        lines: Config lines the variant needs besides its ``petl`` dict (e.g. a hook).
        matrices: The generated matrices it joins (``'image'``, ``'video'``); None: every
            matrix whose backbones its class supports.
        demo: Its name in the digits demo's table; empty: not in the demo.
        demo_config: Whether its demo config (``configs/demo/vit-tiny_digits5-9_<folder>.py``)
            is written by hand (tuned for the tiny ViT) rather than generated.
        head: Keyword arguments of the model's head, e.g. the head's input width where the
            method hands the head its own feature (HST).
        wraps: The folder whose generated config of the same setting each of its configs
            inherits and wraps (``lines`` then says how: PACE's model wrapper over LoRA); its
            method, recipe and sizes are that config's.

    Examples:
        >>> Variant('vpt_deep', 'VPT-deep', 'VPT', dict(deep=True)).petl_source
        "dict(_delete_=True, type='VPT', deep=True)"
    """
    folder: str
    title: str
    petl: str
    kwargs: Dict[str, Any] = field(default_factory=dict)
    published: Optional[str] = None
    lines: str = ''
    matrices: Optional[Tuple[str, ...]] = None
    demo: str = ''
    demo_config: bool = False
    head: Dict[str, Any] = field(default_factory=dict)
    wraps: str = ''

    @property
    def petl_source(self) -> str:
        """The ``petl`` dict as config source, replacing the base config's placeholder."""
        args = ''.join(f', {k}={v!r}' for k, v in self.kwargs.items())
        return f"dict(_delete_=True, type='{self.petl}'{args})"

    @property
    def method(self) -> Type[BasePETLMethod]:
        """The registered class."""
        cls = PETL_METHODS.get(self.petl)
        if cls is None:
            raise KeyError(f'variant {self.folder!r}: no PETL method {self.petl!r} is '
                           f'registered; register it or fix VARIANTS in {__name__}.')
        return cls

    def supports(self, profile: str) -> bool:
        """Whether the variant's method runs on backbones of the named profile."""
        return self.method.supports(profile)

    def joins(self, matrix: str) -> bool:
        """Whether the variant is in the named generated matrix."""
        if self.matrices is not None:
            return matrix in self.matrices
        return any(self.supports(p) for p in MATRIX_PROFILES.get(matrix, ()))


# the base's hooks (configs/_base_/runtime/petl_hooks.py) with the calibration entry replaced
_GPS_HOOK = ("# GPS's selection pass: SupCon gradients on two contrastive views per image; the\n"
             "# other vpetl_mm hooks of the base (_base_/runtime/petl_hooks.py) stay as they are\n"
             "custom_hooks = [dict(type='vpetl_mm.PETLCalibrationHook', views=2,\n"
             "                     pipeline=_base_.gps_contrast_pipeline)\n"
             "                if h.type == 'vpetl_mm.PETLCalibrationHook' else h\n"
             "                for h in _base_.custom_hooks]\n")
# PACE's class defaults, lambda 1 and sigma 1.2: MaxwellYaoNi/PACE@9fee345 Vision/README.md's
# VTAB-1k example (vpetl_mm/methods/pace.py); `_base_.model` is the wrapped config's classifier
_PACE_WRAP = ("# PACE wraps the LoRA classifier of the inherited config: noise on the LoRA\n"
              "# updates, loss_pace between two perturbed passes (lambda 1, sigma 1.2:\n"
              "# MaxwellYaoNi/PACE@9fee345 Vision/README.md); optimiser, schedule and data are\n"
              "# the LoRA config's\n"
              "model = dict(_delete_=True, type='vpetl_mm.PACE', lambda_=1.0, sigma=1.2,\n"
              "             model=_base_.model)\n")
_IMAGE, _VIDEO, _BOTH, _NONE = ('image', ), ('video', ), ('image', 'video'), ()

#: The variants that need a word the class cannot give, in the published tables' order (the
#: report's row order). ``matrices`` pins today's config set: a row without it joins every
#: matrix its class supports.
VARIANTS: Tuple[Variant, ...] = (
    Variant('full', 'Full fine-tuning', 'Full', published='Full fine-tuning', matrices=_BOTH,
            demo='Full fine-tuning', demo_config=True),
    Variant('linear', 'Linear probing (frozen backbone)', 'Frozen', published='Linear probing',
            matrices=_IMAGE),
    Variant('frozen', 'Frozen backbone (linear probe)', 'Frozen', published='Frozen',
            matrices=_VIDEO, demo='Linear probe', demo_config=True),
    Variant('bitfit', 'BitFit (every bias)', 'BitFit', matrices=_IMAGE, demo='BitFit',
            demo_config=True),
    Variant('bitfit', 'BitFit (biases, incl. relative-position bias tables)', 'BitFit',
            matrices=_VIDEO),
    Variant('lntune', 'LN-tune (every LayerNorm)', 'LNTune', published='LN-Tune',
            matrices=_IMAGE, demo='LN-tune', demo_config=True),
    Variant('partial1', 'Partial-1 (the last block)', 'Partial', dict(k=1),
            published='Partial-1', matrices=_IMAGE, demo='Partial-1', demo_config=True),
    # init='trunc_normal': what V-PETL's timm init_weights leaves on the new layers (the docs)
    Variant('adapter', "Adapter (image defaults: bottleneck 8, after the MLP; V-PETL's init)",
            'Adapter', dict(init='trunc_normal'), matrices=_IMAGE, demo='Adapter',
            demo_config=True),
    Variant('lora', "LoRA (image defaults: q and v, rank 8; V-PETL's init)", 'LoRA',
            dict(init='trunc_normal'), matrices=_IMAGE, demo='LoRA', demo_config=True),
    Variant('lora', 'LoRA (video defaults: q and v, rank 16)', 'LoRA', matrices=_VIDEO),
    Variant('adaptformer', "AdaptFormer (image defaults: bottleneck 8, input LayerNorm; "
            "V-PETL's init)", 'AdaptFormer', dict(init='trunc_normal'), matrices=_IMAGE,
            demo='AdaptFormer', demo_config=True),
    Variant('adaptformer', 'AdaptFormer (video defaults: bottleneck 64, scale 0.1)',
            'AdaptFormer', matrices=_VIDEO),
    Variant('ssf', 'SSF (scale and shift after every operation, mergeable)', 'SSF',
            matrices=_IMAGE, demo='SSF', demo_config=True),
    Variant('repadapter', 'RepAdapter (repblock: hidden 8, groups 2, per-task scale; '
            'mergeable)', 'RepAdapter', matrices=_IMAGE, demo='RepAdapter', demo_config=True),
    Variant('hydra', 'Hydra (parallel + sequential rank-2 branches on proj and fc2; per-task '
            'scale; mergeable)', 'Hydra', matrices=_IMAGE, demo='Hydra', demo_config=True),
    Variant('fact', 'FacT (VTAB-1k: FacT-TK, per-task rank and scale; FGVC: FacT-TT rank 16; '
            'mergeable)', 'FacT', matrices=_IMAGE, demo='FacT-TT', demo_config=True),
    Variant('vpt_shallow', 'VPT-shallow (100 prompt tokens at the input)', 'VPT',
            published='VPT-Shallow', matrices=_IMAGE, demo='VPT-shallow', demo_config=True),
    Variant('vpt_deep', "VPT-deep (P prompts per layer: 50, or VPT's own P for the task; "
            'prompt dropout 0.1)', 'VPT', dict(length=50, deep=True, dropout=0.1),
            published='VPT-Deep', matrices=_IMAGE, demo='VPT-deep', demo_config=True),
    Variant('dtl', 'DTL (rank-2 side path, swish-gated into blocks 6-11; head: normed mean '
            'patch)', 'DTL', dict(pool='mean'), matrices=_IMAGE,
            demo='DTL', demo_config=True),
    # selection passes: PETLCalibrationHook (the setting bases declare it; GPS sets its views)
    Variant('sct', 'SCT (96 salient channels per block from a calibration pass)', 'SCT',
            matrices=_IMAGE, demo='SCT', demo_config=True),
    Variant('gps', 'GPS (k gradient-selected entries per weight row + biases, k per task; '
            'mergeable)', 'GPS', lines=_GPS_HOOK, matrices=_IMAGE, demo='GPS',
            demo_config=True),
    Variant('prefix', 'Prefix tuning (20 key/value prefixes per layer, MLP re-parameterised)',
            'PrefixTuning', published='Prefix tuning', matrices=_BOTH, demo='Prefix tuning',
            demo_config=True),
    Variant('utuning', 'U-Tuning (parallel prefix of 11 beside MHA, parallel adapter 8 beside '
            'FFN)', 'UTuning', published='U-Tuning', matrices=_IMAGE, demo='U-Tuning',
            demo_config=True),
    Variant('snf', 'SNF (affine + 6 planar layers on both shortcuts of every block)', 'SNF',
            matrices=_IMAGE, demo='SNF', demo_config=True),
    # NOAH's searched subnet of each VTAB-1k task (pertask.py); FGVC: its SVHN one (default)
    Variant('noah', "NOAH (Adapter + LoRA + VPT-deep per layer; NOAH's searched subnet of the "
            'task)', 'NOAH', matrices=_IMAGE, demo='NOAH', demo_config=True),
    # side networks (docs/image.md): LST and LAST run the backbone without autograd
    Variant('lst', 'LST (pruned ladder side transformer, width D/8, no-grad backbone)', 'LST',
            matrices=_IMAGE, demo='LST', demo_config=True),
    Variant('last', 'LAST (rank-32 low-rank self-attention side blocks, no-grad backbone)',
            'LAST', matrices=_IMAGE, demo='LAST', demo_config=True),
    Variant('hst', 'HST (meta-registers + bridges into a 4-stage side network; block norms; '
            '72-wide head)', 'HST', dict(head='side'),
            matrices=_IMAGE, demo='HST', demo_config=True,
            head=dict(in_channels=72)),
    # the dense benchmark's own methods: hand-written configs only (docs/dense.md)
    Variant('lorand', 'LoRand (low-rank-synthesised adapters)', 'LoRand', matrices=_NONE,
            demo='LoRand', demo_config=True),
    Variant('e3va', 'E3VA (low-rank side adapters, no-grad backbone)', 'E3VA',
            matrices=_NONE),
    Variant('mona', 'Mona (multi-cognitive visual adapters)', 'Mona', matrices=_NONE,
            demo='Mona', demo_config=True),
    Variant('bapat', 'BAPAT (PATT on k/v + AdaptFormer adapter; BAPAT README settings)',
            'BAPAT', matrices=_VIDEO, demo='BAPAT', demo_config=True),
    # HF peft's tuners by config (docs/peft.md): no published V-PETL row, the demo runs its
    # default (peft's LoRA, r 8, on the fused qkv)
    Variant('peft', "peft's LoRA through the Peft bridge (r 8 on the fused qkv)", 'Peft',
            matrices=_NONE, demo='Peft (peft LoRA)'),
    # after V-PETL Bench (2024): docs/methods-2024.md
    Variant('dora', "DoRA (LoRA's sites and ranks, plus a magnitude per adapted row; "
            'mergeable)', 'DoRA', demo='DoRA'),
    Variant('glora', 'GLoRA (one fixed subnet: rank-4 A, B, C and scalar D, E on every linear; '
            'mergeable)', 'GLoRA', demo='GLoRA'),
    Variant('adapter_plus', 'Adapter+ (post-adapter on every block output, bottleneck 8, '
            'channel scaling)', 'AdapterPlus', published='Adapter+', demo='Adapter+',
            demo_config=True),
    # PACE wraps the model (vpetl_mm.PACE): its generated configs inherit the LoRA config of
    # their setting and wrap its model; matrices=_NONE: only the backbones that name it
    # (matrices_foundation.py) run it
    Variant('pace_lora', 'PACE on LoRA (noise on the LoRA updates + consistency loss)', 'LoRA',
            published='PACE', matrices=_NONE, demo='PACE (LoRA)', demo_config=True,
            wraps='lora', lines=_PACE_WRAP),
)


def default_variant(cls: Type[BasePETLMethod], name: Optional[str] = None) -> Variant:
    """The variant of a registered method that :data:`VARIANTS` does not list.

    Folder: the lower-case class name; title: the docstring's first line; published name:
    the class name; matrices: every one whose backbones the class supports; the demo: when
    it runs on the demo's ViT, with a generated config (the class's defaults). ``name`` is its
    registered type name (default: the class name).
    """
    doc = (cls.__doc__ or cls.__name__).strip().splitlines()[0].strip()
    return Variant(cls.__name__.lower(), doc, name or cls.__name__, published=cls.__name__,
                   demo=cls.__name__ if cls.supports(DEMO_PROFILE) else '')


def variants() -> List[Variant]:
    """Every benchmark variant: :data:`VARIANTS`, then a default one per unlisted registered
    method (read from the registry at call time, so methods registered later count)."""
    listed = {v.method for v in VARIANTS}
    rows = [v if v.published else replace(v, published=v.petl) for v in VARIANTS]
    return rows + [default_variant(cls, name) for cls, name in _first_names().items()
                   if cls not in listed]


def _first_names() -> Dict[Type[BasePETLMethod], str]:
    """Registered class -> the first name it was registered under."""
    names: Dict[Type[BasePETLMethod], str] = {}
    for name, cls in PETL_METHODS.module_dict.items():
        names.setdefault(cls, name)
    return names


def registered() -> List[Type[BasePETLMethod]]:
    """Every registered PETL method class once (a class may be registered under aliases, e.g.
    ``LinearProbe`` for ``Frozen``), in registration order."""
    return list(_first_names())


def matrix_variants(matrix: str) -> List[Variant]:
    """The variants of a generated matrix (``'image'`` or ``'video'``), in table order."""
    return [v for v in variants() if v.joins(matrix)]


def published_names() -> Dict[str, str]:
    """Config folder -> the method's name in the published tables, in the tables' order."""
    names: Dict[str, str] = {}
    for v in variants():
        names.setdefault(v.folder, v.published or v.petl)
    return names


def demo_variants() -> List[Variant]:
    """The digits demo's variants (its zoo), in table order."""
    return [v for v in variants() if v.demo]
