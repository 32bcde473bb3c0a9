"""timm ``Eva`` files (EVA-02, separate q/k/v) load into the fused attention PETL runs on.

EVA-02 B/L in timm (``eva02_base_patch14_224``, timm 1.0.31 ``timm/models/eva.py``) build
``EvaAttention(qkv_fused=False)``: ``q_proj`` (bias), ``k_proj`` (no bias), ``v_proj`` (bias),
and that is the layout of their hub files (``timm/eva02_base_patch14_224.mim_in22k``) and of
what timm's ``checkpoint_filter_fn`` makes of the original EVA-02 files. The
``'timm.Eva'`` profile's host patch (``eva_fused_qkv``) turns each attention into timm's own
fused form (``qkv_fused=True``: one bias-free ``qkv`` and ``q_bias`` / ``v_bias``), so the
``qkv`` site and its ``qkv.q`` / ``qkv.k`` / ``qkv.v`` slices exist for every method.
:class:`EvaKeyConverter` first converts as timm does (:class:`~vpetl_mm.compat.timm_weights.
TimmKeyConverter`), then stacks each block's ``q_proj`` / ``k_proj`` / ``v_proj`` weights into
``qkv.weight`` (q, k, v order, as timm's fused layout) and renames the biases.

Examples:
    >>> backbone = dict(type='TIMMBackbone', model_name='eva02_base_patch14_224',
    ...                 init_cfg=dict(type='Pretrained', checkpoint=
    ...                     'timm/eva02_base_patch14_224.mim_in22k/model.safetensors'))
"""
import re
from typing import Dict

import torch

from .timm_weights import TimmKeyConverter, TimmWeights

_SEPARATE = re.compile(r'^(.*\.attn\.)q_proj\.weight$')


def fuse_eva_qkv(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Separate ``attn.{q,k,v}_proj`` -> timm's fused ``attn.qkv.weight``, ``attn.q_bias``,
    ``attn.v_bias`` (``k_proj`` has no bias in EVA; a nonzero one could not be kept and is
    refused in one line). Other keys pass unchanged.

    Examples:
        >>> fuse_eva_qkv({'blocks.0.attn.q_proj.weight': q, 'blocks.0.attn.k_proj.weight': k,
        ...               'blocks.0.attn.v_proj.weight': v})
        {'blocks.0.attn.qkv.weight': torch.cat((q, k, v))}
    """
    out = dict(state)
    for key in [k for k in state if _SEPARATE.match(k)]:
        attn = _SEPARATE.match(key).group(1)
        k_bias = out.pop(attn + 'k_proj.bias', None)
        if k_bias is not None and k_bias.any():
            raise ValueError(f'{attn}k_proj.bias is nonzero: timm Eva has no key bias (the '
                             'fused layout keeps it at zero); this file is not an EVA layout.')
        out[attn + 'qkv.weight'] = torch.cat([out.pop(f'{attn}{p}_proj.weight') for p in 'qkv'])
        for p in 'qv':
            if attn + f'{p}_proj.bias' in out:
                out[attn + f'{p}_bias'] = out.pop(attn + f'{p}_proj.bias')
    return out


class EvaKeyConverter(TimmKeyConverter):
    """``load_state_dict`` pre-hook on a ``TIMMBackbone`` holding a timm ``Eva``: timm's own
    conversion, then :func:`fuse_eva_qkv` (host-named state dicts in the separate layout, e.g.
    saved from an unpatched host, are fused too).

    Examples:
        >>> EvaKeyConverter(host)
        >>> host.load_state_dict(timm.create_model('eva02_base_patch14_224').state_dict())
    """

    def _hook(self, state_dict: dict, prefix: str, *args) -> None:
        super()._hook(state_dict, prefix, *args)
        keys = [k for k in state_dict if k.startswith(prefix)]
        if any(_SEPARATE.match(k) for k in keys):
            fused = fuse_eva_qkv({k: state_dict.pop(k) for k in keys})
            state_dict.update(fused)


class EvaWeights(TimmWeights):
    """The ``weights`` of the ``'timm.Eva'`` profile (see the module docstring).

    Examples:
        >>> EvaWeights(host)  # what PETLBackbone does for timm Eva hosts
    """
    converter = EvaKeyConverter
