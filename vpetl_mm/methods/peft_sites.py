"""peft's side of the ``Peft`` bridge: configs from options, layers lifted out of the host.

peft builds a tuner by replacing each target module with its own layer that wraps the host
module as ``base_layer``. vpetl_mm never renames a host parameter (pretrained files, host
patches and adapter-only checkpoints rely on the host keys), so :func:`lift_tuner_layers` puts
every host module back and keeps peft's layer beside it: :class:`PeftSite` runs the layer in
the host's place from a forward hook, with the host as its (unregistered) ``base_layer``.
"""
import dataclasses
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

try:  # an optional dependency (setup.py extras 'peft'): only the Peft method needs it
    from peft import PeftType
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING
    from peft.tuners.tuners_utils import BaseTunerLayer
except ImportError:  # pragma: no cover - the project venv has peft
    PeftType = None

#: Options the bridge sets itself (the targets, what trains); users pass ``targets`` /
#: ``PETLBackbone(trainable=...)`` instead
OWNED_OPTIONS = ('target_modules', 'modules_to_save', 'peft_type', 'task_type',
                 'inference_mode', 'target_parameters')
ADAPTER = 'default'  # peft's default adapter name (the only one a Peft method holds)


def peft_type_name(name: Any) -> str:
    """The ``peft.PeftType`` name of ``name`` (any case, ``_`` / ``-`` ignored), or one line
    naming the layer tuners peft has."""
    if PeftType is None:
        raise ImportError("Peft needs HuggingFace peft: pip install 'vpetl_mm[peft]' "
                          '(peft>=0.21).')
    key = str(name).upper().replace('_', '').replace('-', '')
    tuners = {t.name.replace('_', ''): t.name for t in PeftType
              if t in PEFT_TYPE_TO_TUNER_MAPPING and not _is_prompt(t)}
    if key not in tuners:
        raise ValueError(f'Peft: unknown peft_type {name!r}; peft\'s layer tuners are '
                         f'{sorted(tuners.values())} (prompt tuners: use VPT / PrefixTuning).')
    return tuners[key]


def _is_prompt(peft_type: PeftType) -> bool:
    """Whether the tuner adds tokens rather than adapting layers (no ``target_modules``)."""
    config = PEFT_TYPE_TO_CONFIG_MAPPING.get(peft_type)
    return config is None or 'target_modules' not in {f.name for f in dataclasses.fields(config)}


def build_peft_config(peft_type: str, options: Dict[str, Any], target_modules: List[str]):
    """peft's ``*Config`` of ``peft_type`` with ``options`` on ``target_modules``.

    Raises:
        ValueError: one line for an option the config does not have, one the bridge owns, or a
            value peft refuses.
    """
    config_cls = PEFT_TYPE_TO_CONFIG_MAPPING[PeftType[peft_type]]
    fields = {f.name for f in dataclasses.fields(config_cls) if f.init}
    owned = sorted(set(options) & set(OWNED_OPTIONS))
    if owned:
        raise ValueError(f'Peft({peft_type}): {owned} are set by the bridge; use targets=[sites] '
                         'for target_modules and PETLBackbone(trainable=...) for what else trains.')
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(f'Peft({peft_type}) got unknown option(s) {unknown}; {config_cls.__name__}'
                         f' takes {sorted(fields - set(OWNED_OPTIONS))}.')
    try:
        return config_cls(target_modules=list(target_modules), **options)
    except (TypeError, ValueError) as err:
        raise ValueError(f'Peft({peft_type}): peft refuses the options {options}: '
                         f'{_first_line(err)}') from None


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _layer_shapes(backbone: nn.Module, paths: List[str]) -> str:
    """``'attn.qkv 32->96, mlp.fc2 85->32, ...'``: the distinct targeted layers (the last two
    names of each path) with their in / out features, for an error line."""
    shapes = {}
    for path in paths:
        layer = backbone.get_submodule(path)
        shape = (getattr(layer, 'in_features', '?'), getattr(layer, 'out_features', '?'))
        shapes.setdefault(('.'.join(path.split('.')[-2:]), shape), None)
    return ', '.join(f'{name} {i}->{o}' for name, (i, o) in shapes)


def lift_tuner_layers(backbone: nn.Module, config, paths: List[str]
                      ) -> Dict[str, Tuple[nn.Module, nn.Module]]:
    """Let peft's tuner class inject its layers at ``paths``, then put the host modules back.

    Returns:
        Host path -> ``(host module, peft layer)``; the layer's ``base_layer`` is the host
        module, held as a plain attribute (not a submodule: its weights stay the host's keys).
    """
    tuner_cls = PEFT_TYPE_TO_TUNER_MAPPING[config.peft_type]
    try:
        tuner_cls(backbone, config, adapter_name=ADAPTER)
    except (TypeError, ValueError, RuntimeError, NotImplementedError) as err:
        raise ValueError(f'peft\'s {config.peft_type.value} cannot adapt the targets '
                         f'{_layer_shapes(backbone, paths)}: {_first_line(err)} Choose options '
                         'that fit every targeted layer, or leave the misfits out of targets.'
                         ) from None
    finally:
        vars(backbone).pop('peft_config', None)  # the attribute peft leaves on the model
    layers = {}
    for path in paths:
        layer = backbone.get_submodule(path)
        if not isinstance(layer, BaseTunerLayer):
            raise ValueError(f'peft\'s {config.peft_type.value} left {path} '
                             f'({type(layer).__name__}) unadapted.')
        host = layer.get_base_layer()
        parent, _, attr = path.rpartition('.')
        setattr(backbone.get_submodule(parent) if parent else backbone, attr, host)
        del layer._modules['base_layer']
        object.__setattr__(layer, 'base_layer', host)  # peft reads it; not a submodule
        layers[path] = (host, layer)
    return layers


class PeftSite(nn.Module):
    """One peft layer beside its host module, run in the host's place by :meth:`hook`.

    Args:
        layer: peft's layer (e.g. ``peft.tuners.lora.Linear``) whose ``base_layer`` is the
            host module.

    Examples:
        >>> site = PeftSite(lora_layer)           # lora_layer.base_layer is the host qkv
        >>> qkv.register_forward_hook(site.hook)  # qkv(x) now returns lora_layer(x)
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer
        self.running = False  # inside layer(x), whose base_layer call re-enters the host

    def hook(self, host: nn.Module, args: tuple, output: Any) -> Any:
        """The peft layer's output in place of the host's (the host's own while merged).

        The host output is computed once more inside the layer (peft calls its base layer,
        sometimes on a transformed input: OFT), the price of not renaming host keys.
        """
        if self.running or self.layer.merged or self.layer.disable_adapters:
            return None
        self.running = True
        try:
            x, *rest = args
            if x.dim() <= 3 or not isinstance(host, nn.Linear):
                return self.layer(*args)
            # channels-last maps (ConvNeXt's pointwise layers, SAM: (B, H, W, C)) as tokens
            # (B, HW, C), the same arithmetic for a linear layer: peft's OFT reads any 4-d
            # input as a Conv2d input and unfolds it (peft@v0.21.2 tuners/oft/layer.py,
            # OFTRotationModule.forward)
            out = self.layer(x.reshape(x.shape[0], -1, x.shape[-1]), *rest)
            return out.reshape(*x.shape[:-1], out.shape[-1])
        finally:
            self.running = False

    def merge(self) -> None:
        if not self.layer.merged:
            self.layer.merge(adapter_names=[ADAPTER])

    def unmerge(self) -> None:
        if self.layer.merged:
            self.layer.unmerge()

    def reinit(self, lora_init: Any, host_init: Optional[str]) -> None:
        """Re-initialise after the host's ``init_weights`` (pretrained weights just loaded).

        Host inits that walk every ``nn.Linear`` of the backbone (mmdet / mmseg Swin, mmaction,
        timm) re-draw peft's ``lora_A`` / ``lora_B`` layers too: LoRA gets peft's own init back
        (``lora_init``: its ``init_lora_weights``, ``True`` for host-reading ones). ``host_init``:
        peft's ``'pissa'`` / ``'pissa_niter_K'`` / ``'olora'`` (moves part of the host weight
        into the adapter) or None. DoRA's magnitude (the column norms of ``W + s B A``) is
        recomputed in place, so the parameter an optimiser may hold stays the same object.
        """
        layer = self.layer
        if hasattr(layer, 'reset_lora_parameters') and lora_init is not None:
            layer.reset_lora_parameters(ADAPTER, lora_init)
        if host_init == 'olora':
            layer.olora_init(ADAPTER)
        elif host_init is not None:
            layer.pissa_init(ADAPTER, host_init)
        magnitude = getattr(layer, 'lora_magnitude_vector', {})
        if ADAPTER in magnitude:
            base = layer.get_base_layer().weight
            with torch.no_grad():
                delta = layer.lora_B[ADAPTER].weight @ layer.lora_A[ADAPTER].weight
                magnitude[ADAPTER].weight.copy_(magnitude[ADAPTER].get_weight_norm(
                    base, delta.to(base.dtype), layer.scaling[ADAPTER]))
