"""Adapters in HuggingFace peft's format: ``tools/export.py --format peft`` and ``--from-peft``.

A LoRA (vpetl_mm's own) or any ``Peft`` tuner trained on a timm ViT host (profile
``timm.VisionTransformer``) is written as ``adapter_config.json`` +
``adapter_model.safetensors`` by peft's own ``save_pretrained``, so that
``peft.PeftModel.from_pretrained(timm_model, dir)`` loads it and gives the same outputs; the
reverse imports such a folder into a vpetl_mm model. peft names modules of the model it wraps,
so the host must be that model: OpenMMLab backbones are refused (they are not what peft users
load), as is a method peft has no equivalent of.

vpetl_mm's LoRA on q and v of a fused qkv (``targets=['qkv.q', 'qkv.v']``, the V-PETL default)
is exactly peft's LoRA of rank ``2r`` on the whole ``qkv`` whose ``B`` is zero in the k rows and
block-diagonal (``LoRALinear.up``): it exports to that, for inference and further loading. peft
cannot *train* q and v only (it adapts whole modules), so a peft adapter whose ``B`` has
left that shape imports only into ``Peft`` (or LoRA on the whole ``qkv``).

Examples:
    >>> export_peft(model, 'exported/peft')          # model: an ImageClassifier, LoRA on timm
    {'files': [...adapter_config.json, ...adapter_model.safetensors], 'max_abs_diff': 0.0, ...}
    >>> import_peft(model, 'exported/peft')['max_abs_diff']
    0.0
"""
import copy
import os
import os.path as osp
from typing import Any, Dict, List, Tuple

import torch
import torch.nn as nn

from ..methods.lora import LoRA, LoRALinear
from ..methods.peft_bridge import Peft
from ..methods.peft_sites import ADAPTER, PeftSite
from ..utils import find_petl_backbone

#: profiles whose host is the model peft users load (peft names its modules)
PEFT_HOSTS = ('timm.VisionTransformer', )


def _exportable(wrapper) -> Tuple[Any, nn.Module]:
    """The one LoRA / Peft method and the timm host, or one line saying why not."""
    profile = wrapper.profile.name
    if profile not in PEFT_HOSTS:
        raise ValueError(f'peft format: the host is {profile!r}, an OpenMMLab backbone; peft '
                         f'adapters name the modules of the model peft wraps, and only '
                         f'{list(PEFT_HOSTS)} hosts are models peft users load. Export '
                         '--format pth / safetensors instead.')
    methods = wrapper.methods
    if len(methods) != 1 or not isinstance(methods[0], (LoRA, Peft)):
        raise ValueError(f'peft format: peft has no equivalent of {[m.name for m in methods]}; '
                         'only one LoRA or Peft method exports to it. Export --format pth / '
                         'safetensors instead.')
    method = methods[0]
    if isinstance(method, Peft) and method.host_init:
        raise ValueError(f'peft format: init_lora_weights={method.host_init!r} moved part of the '
                         'host weights into the adapter, so the adapter does not apply to the '
                         'pretrained timm model. Export the merged model (--format pth) instead.')
    if wrapper.merged:
        raise ValueError('peft format: the model is merged; export it unmerged.')
    return method, wrapper.backbone.get_submodule(wrapper.profile.root)


def clean_host(host: nn.Module) -> nn.Module:
    """A copy of the timm host without vpetl_mm's modules and hooks: the stock timm model."""
    clean = copy.deepcopy(host)
    for module in clean.modules():
        for attr in [n for n in module._modules if n.startswith('petl_')]:
            del module._modules[attr]
        for hooks in (module._forward_hooks, module._forward_pre_hooks):
            for key in [k for k, h in hooks.items()
                        if isinstance(getattr(h, '__self__', None), (PeftSite, LoRALinear))]:
                del hooks[key]
    return clean


def _lora_config(method: LoRA, layers: Dict[str, LoRALinear]):
    """peft's LoraConfig equal to vpetl_mm's LoRA: a sliced qkv is rank ``n * r``, alpha
    ``n * alpha`` (the same scale ``alpha / r``) on the whole layer."""
    from peft import LoraConfig  # optional dependency (setup.py extra 'peft'): here only
    ranks = {path: layer.lora_A.shape[0] for path, layer in layers.items()}
    pattern = {p: r for p, r in ranks.items() if r != method.rank}
    return LoraConfig(r=method.rank, lora_alpha=method.alpha, lora_dropout=method.dropout,
                      target_modules=sorted(layers), rank_pattern=pattern,
                      alpha_pattern={p: r * method.alpha / method.rank
                                     for p, r in pattern.items()})


def _our_layers(wrapper, method) -> Dict[str, nn.Module]:
    """timm-relative host path -> the method's module for it (LoRALinear or the peft layer)."""
    root = wrapper.profile.root
    strip = len(root) + 1 if root else 0
    if isinstance(method, Peft):
        return {path[strip:]: site.layer for path, site in zip(method.paths.values(),
                                                               method.sites)}
    sites = wrapper.profile.sites
    return {f'{inj.path}.{sites[inj.site]}'[strip:]: inj.module for inj in method.injected}


def _peft_layers(peft_model) -> Dict[str, nn.Module]:
    from peft.tuners.tuners_utils import BaseTunerLayer
    base = peft_model.base_model.model
    return {name: module for name, module in base.named_modules()
            if isinstance(module, BaseTunerLayer)}


def _copy_in(method, ours: Dict[str, nn.Module], theirs: Dict[str, nn.Module],
             to_peft: bool) -> None:
    if set(ours) != set(theirs):
        raise ValueError(f'peft adapter targets {sorted(theirs)[:4]}... but the vpetl_mm model '
                         f'adapts {sorted(ours)[:4]}...; set the method\'s targets to match.')
    with torch.no_grad():
        for path, layer in ours.items():
            peft_layer = theirs[path]
            if isinstance(layer, LoRALinear):
                _copy_lora(layer, peft_layer, path, to_peft)
                continue
            src, dst = (layer, peft_layer) if to_peft else (peft_layer, layer)
            state = {k: v for k, v in src.state_dict().items()
                     if not k.startswith('base_layer.')}
            try:
                missing, unexpected = dst.load_state_dict(state, strict=False)
            except RuntimeError as err:
                raise ValueError(f'peft adapter at {path} does not fit the vpetl_mm tuner '
                                 f'(other options?): {str(err).splitlines()[-1].strip()}') from None
            missing = [k for k in missing if not k.startswith('base_layer.')]
            if missing or unexpected:
                raise ValueError(f'peft adapter at {path}: tensors {missing or unexpected} do '
                                 'not match the vpetl_mm tuner (another peft_type or options?).')


def _copy_lora(layer: LoRALinear, peft_layer: nn.Module, path: str, to_peft: bool) -> None:
    a, b = peft_layer.lora_A[ADAPTER].weight, peft_layer.lora_B[ADAPTER].weight
    scaling = peft_layer.scaling[ADAPTER]
    if to_peft:
        a.copy_(layer.lora_A)
        b.copy_(layer.up() * (layer.scale / scaling))
        return
    if a.shape != layer.lora_A.shape:
        raise ValueError(f'peft adapter at {path} has rank {a.shape[0]}; the vpetl_mm LoRA there '
                         f'has {layer.lora_A.shape[0]} (rank x slices): set LoRA rank to match.')
    up = b * (scaling / layer.scale)
    n, r = len(layer.slices), layer.rank
    blocks = up.view(layer.parts, layer.part_size, n, r)
    mask = torch.zeros(layer.parts, n, dtype=torch.bool)
    mask[list(layer.slices), list(range(n))] = True
    if blocks.permute(0, 2, 1, 3)[~mask].abs().max().item() if (~mask).any() else 0.:
        raise ValueError(f'peft adapter at {path} updates q, k and v of the fused layer together; '
                         'vpetl_mm\'s LoRA on slices of it cannot hold that. Import it into '
                         "petl=dict(type='Peft', peft_type='LORA', targets=['qkv'], ...).")
    layer.lora_A.copy_(a)
    layer.lora_B.copy_(blocks[list(layer.slices), :, list(range(n)), :])


def _outputs_diff(model: nn.Module, peft_model, shape: Tuple[int, ...]) -> float:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return (model(x) - peft_model(x)).abs().max().item()


def _input_shape(host: nn.Module) -> Tuple[int, ...]:
    size = getattr(getattr(host, 'patch_embed', None), 'img_size', None) or (224, 224)
    return (1, 3, *size)


def export_peft(model: nn.Module, out_dir: str) -> Dict[str, Any]:
    """Write the LoRA / Peft adapter of ``model`` (timm host) in peft's format to ``out_dir``.

    Returns:
        ``files`` written, the ``peft_type``, and ``max_abs_diff`` between the vpetl_mm host
        and ``PeftModel.from_pretrained(stock timm model, out_dir)`` on a random input.
    """
    from peft import PeftModel, get_peft_model
    wrapper = find_petl_backbone(model)
    method, host = _exportable(wrapper)
    ours = _our_layers(wrapper, method)
    config = (method.peft_config(wrapper.profile.root) if isinstance(method, Peft)
              else _lora_config(method, ours))
    peft_model = get_peft_model(clean_host(host), config)
    _copy_in(method, ours, _peft_layers(peft_model), to_peft=True)
    os.makedirs(out_dir, exist_ok=True)
    peft_model.save_pretrained(out_dir)
    loaded = PeftModel.from_pretrained(clean_host(host), out_dir).eval()
    return dict(mode='peft', files=peft_files(out_dir), peft_type=config.peft_type.value,
                target_modules=sorted(config.target_modules),
                max_abs_diff=_outputs_diff(host.eval(), loaded, _input_shape(host)))


def import_peft(model: nn.Module, peft_dir: str) -> Dict[str, Any]:
    """Load the peft adapter in ``peft_dir`` into the LoRA / Peft method of ``model``.

    The vpetl_mm model's method must target the same modules (same ``peft_type`` and options
    for ``Peft``; for LoRA, a rank that holds the adapter).

    Returns:
        ``max_abs_diff`` between the vpetl_mm host and ``PeftModel.from_pretrained`` of its
        stock timm model, and the adapter's ``peft_type`` and targets.
    """
    from peft import PeftModel
    if not osp.isfile(osp.join(peft_dir, 'adapter_config.json')):
        raise FileNotFoundError(f'{peft_dir}: no adapter_config.json; pass the folder peft\'s '
                                'save_pretrained wrote.')
    wrapper = find_petl_backbone(model)
    method, host = _exportable(wrapper)
    loaded = PeftModel.from_pretrained(clean_host(host), peft_dir).eval()
    config = loaded.peft_config[ADAPTER]
    theirs = _peft_layers(loaded)
    expected = 'LORA' if isinstance(method, LoRA) else method.peft_type
    if config.peft_type.value != expected:
        raise ValueError(f'{peft_dir} holds a {config.peft_type.value} adapter; the vpetl_mm model '
                         f'has {expected}: set petl=dict(type=\'Peft\', '
                         f'peft_type=\'{config.peft_type.value}\', ...).')
    _copy_in(method, _our_layers(wrapper, method), theirs, to_peft=False)
    return dict(peft_type=config.peft_type.value, target_modules=sorted(theirs),
                max_abs_diff=_outputs_diff(host.eval(), loaded, _input_shape(host)))


def peft_files(out_dir: str) -> List[str]:
    """The two files of a peft adapter folder."""
    return [osp.join(out_dir, f) for f in ('adapter_config.json', 'adapter_model.safetensors')]
