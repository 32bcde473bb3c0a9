"""Parameter accounting with the published convention: ``Params`` = trainable backbone
parameters, the classification head (and any neck) excluded."""
import re
from collections import OrderedDict
from typing import Dict, List, Optional

import torch.nn as nn
from mmengine.model import is_model_wrapper

from ..models.petl_backbone import PETLBackbone


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP / FSDP wrapper, or ``model`` itself.

    Examples:
        >>> unwrap(runner.model) is runner.model.module  # under MMDistributedDataParallel
        True
    """
    return model.module if is_model_wrapper(model) else model


def find_petl_backbone(model: nn.Module) -> Optional[PETLBackbone]:
    """The first :class:`~vpetl_mm.models.PETLBackbone` inside ``model`` (wrappers unwrapped).

    Examples:
        >>> find_petl_backbone(runner.model).num_trainable()
        294912
    """
    for module in unwrap(model).modules():
        if isinstance(module, PETLBackbone):
            return module
    return None


def merge_and_unload(model: nn.Module) -> nn.Module:
    """Merge the model's ``PETLBackbone`` and put the plain host backbone in its place.

    :meth:`~vpetl_mm.models.PETLBackbone.merge_and_unload` folds the methods and strips every
    PETL hook and module; here the wrapper itself leaves the model too, so what remains is the
    stock model (stock state-dict keys, the host's own forward).

    Returns:
        The model (wrappers unwrapped), or the host if ``model`` is the ``PETLBackbone``.

    Raises:
        ValueError: ``model`` has no ``PETLBackbone``, or a method does not fold into the host.

    Examples:
        >>> stock = merge_and_unload(model)  # petl=dict(type='LoRA')
        >>> type(stock.backbone).__name__
        'VisionTransformer'
    """
    model = unwrap(model)
    wrapper = find_petl_backbone(model)
    if wrapper is None:
        raise ValueError(f'{type(model).__name__} has no vpetl_mm.PETLBackbone to merge.')
    host = wrapper.merge_and_unload()
    name = next(n for n, m in model.named_modules() if m is wrapper)
    if not name:
        return host
    parent, _, attr = name.rpartition('.')
    setattr(model.get_submodule(parent) if parent else model, attr, host)
    return model


def count_params(model: nn.Module) -> Dict[str, object]:
    """Count parameters of a built model.

    Returns:
        ``backbone_trainable`` (the published Params and the PPT input), ``trainable``,
        ``total``, and ``groups``: top-level child -> ``[trainable, total]``.
    """
    model = unwrap(model)
    groups: Dict[str, List[int]] = OrderedDict()
    for name, param in model.named_parameters():
        group = groups.setdefault(name.split('.', 1)[0], [0, 0])
        group[1] += param.numel()
        group[0] += param.numel() if param.requires_grad else 0
    backbone = getattr(model, 'backbone', None)
    if backbone is None:  # the model *is* a backbone
        backbone = model
    return dict(
        backbone_trainable=sum(p.numel() for p in backbone.parameters() if p.requires_grad),
        trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        total=sum(p.numel() for p in model.parameters()),
        groups={k: list(v) for k, v in groups.items()})


def petl_tree(wrapper: nn.Module) -> str:
    """A compact tree of where each method injected modules, blocks with equal layout merged.

    Example output::

        mmdet.SwinTransformer (24 blocks) + LoRA(rank=64, ...)
          stages.{0-3}.blocks.{0-17}
            petl_lora_qkv  LoRALinear  -> qkv  (x24, 3,080,192 params)
    """
    lines = [f'{wrapper.profile.name} ({len(wrapper.anatomy.blocks)} blocks) + '
             + ' + '.join(repr(m) for m in wrapper.methods)]
    groups: Dict[tuple, list] = OrderedDict()
    for method in wrapper.methods:
        for inj in method.injected:
            key = (re.sub(r'\d+', '*', inj.path), inj.attr, type(inj.module).__name__, inj.site)
            groups.setdefault(key, []).append(inj)
    if not groups:
        trainable = wrapper.num_trainable()
        lines.append(f'  no injected modules; {trainable:,} host parameters train')
    for (pattern, attr, kind, site), injs in groups.items():
        numbers = [re.findall(r'\d+', inj.path) for inj in injs]
        path = pattern
        for column in zip(*numbers):
            values = sorted({int(v) for v in column})
            span = f'{{{values[0]}-{values[-1]}}}' if len(values) > 1 else str(values[0])
            path = path.replace('*', span, 1)
        count = sum(p.numel() for inj in injs for p in inj.module.parameters())
        lines.append(f'  {path + "." if path else ""}{attr}  {kind} -> {site}  '
                     f'(x{len(injs)}, {count:,} params)')
    return '\n'.join(lines)
