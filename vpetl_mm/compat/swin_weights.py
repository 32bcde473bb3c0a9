"""Load Microsoft's original Swin checkpoints and OpenMMLab-converted ones into mmdet/mmseg Swin.

Swin pretrained weights come in two layouts:

* **Microsoft** (``swin_{base,large}_patch4_window7_224_22k.pth``, ``{'model': state_dict}``):
  ``layers.i.blocks.j.attn.qkv``, ``mlp.fc1``, ``patch_embed.proj``,
  ``layers.i.downsample.reduction``, plus the classifier (``norm``, ``head``) and buffers
  (``relative_position_index``, ``attn_mask``).
* **OpenMMLab** (mmseg's ``swin2mmseg`` output, mm training checkpoints):
  ``stages.i.blocks.j.attn.w_msa.qkv``, ``ffn.layers.0.0``, ``patch_embed.projection``,
  often under ``state_dict`` and/or a ``backbone.`` prefix.

What the pinned hosts do natively (loading is non-strict, so failures are often silent):

* mmseg 1.2.2 strips ``backbone.`` and loads OpenMMLab files, but loads *nothing* from a
  Microsoft file (no converter), silently.
* mmdet 3.3.0 only works for two of four cases: ``convert_weights=True`` + a Microsoft file
  without prefix, and ``convert_weights=False`` + an OpenMMLab file with a ``backbone.`` prefix.
  Otherwise it raises ``IndexError``/``KeyError`` (it keeps only ``backbone.`` keys, and indexes
  its own state dict with prefixed keys), or, for an unprefixed OpenMMLab file with
  ``convert_weights=True``, converts twice and silently skips ``patch_embed.projection``
  (renamed ``projectionection``). It also needs ``init_cfg`` to be a ``ConfigDict``.

:class:`SwinWeights` and :class:`MMDetSwinWeights` (the ``weights`` of the mmseg / mmdet Swin
profiles, see :mod:`vpetl_mm.compat.weights`) fix this for PETL-wrapped mmdet/mmseg Swin: a
``load_state_dict`` pre-hook on the host backbone detects the layout of whatever is loaded
(``init_cfg`` Pretrained, Runner ``load_from``, direct loads), converts Microsoft keys exactly once,
and fits the window-size dependent tensors to the host. For mmdet, the ``Pretrained`` branch of
``init_weights`` behaves as mmseg's (keep every key, strip ``backbone.``), so
``convert_weights`` no longer matters and both layouts load.
"""
import logging
import os.path as osp
import pickle
import re
from typing import Dict, List, Optional, Set, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.runner import CheckpointLoader

from .keys import preview
from .weights import HostWeights

MICROSOFT = 'microsoft'
OPENMMLAB = 'openmmlab'

_MS_KEY = re.compile(r'^(layers\.\d+\.(blocks|downsample)\.|patch_embed\.proj\.)')
_MM_KEY = re.compile(r'^(stages\.\d+\.(blocks|downsample)\.|patch_embed\.projection\.)')
# Microsoft keys with no counterpart in the mm backbone: the classifier and the shift masks
# (mm recomputes the mask per forward from the padded input size).
_MS_ONLY = re.compile(r'^(head\.|norm\.|layers\.\d+\.blocks\.\d+\.attn_mask$)')
# mm's PatchMerging samples the 2x2 neighbourhood with nn.Unfold, which orders the 4C inputs
# channel-major with kernel positions (0,0),(0,1),(1,0),(1,1); Microsoft concatenates x0..x3 =
# positions (0,0),(1,0),(0,1),(1,1) position-major. Unfold position j is Microsoft block _ORDER[j].
_ORDER = [0, 2, 1, 3]


def detect_swin_layout(keys: Set[str]) -> Optional[str]:
    """Return :data:`MICROSOFT`, :data:`OPENMMLAB`, ``'mixed'`` or None for backbone-relative keys.

    Args:
        keys: State-dict keys relative to the Swin backbone (no ``backbone.`` prefix).
    """
    ms = any(_MS_KEY.match(k) for k in keys)
    mm = any(_MM_KEY.match(k) for k in keys)
    if ms and mm:
        return 'mixed'
    return MICROSOFT if ms else OPENMMLAB if mm else None


def unfold_order_reduction(weight: torch.Tensor) -> torch.Tensor:
    """Re-order a Microsoft PatchMerging ``reduction.weight`` (out, 4C) for mm's nn.Unfold."""
    out_ch, in_ch = weight.shape
    blocks = weight.reshape(out_ch, 4, in_ch // 4)[:, _ORDER, :]  # (out, unfold pos j, C)
    return blocks.transpose(1, 2).reshape(out_ch, in_ch)  # index c * 4 + j, as Unfold emits


def unfold_order_norm(vector: torch.Tensor) -> torch.Tensor:
    """Re-order a Microsoft PatchMerging ``norm.weight``/``norm.bias`` (4C,) for mm's nn.Unfold."""
    in_ch = vector.shape[0]
    return vector.reshape(4, in_ch // 4)[_ORDER, :].transpose(0, 1).reshape(in_ch)


def convert_microsoft_swin(
        state_dict: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Rename a Microsoft-layout Swin state dict to mmdet/mmseg names.

    Args:
        state_dict: Backbone-relative Microsoft keys.

    Returns:
        The converted tensors, and the sorted keys with no mm counterpart (``head.*``, ``norm.*``,
        ``attn_mask``), which are not converted.
    """
    converted, skipped = {}, []
    for key, value in state_dict.items():
        if _MS_ONLY.match(key):
            skipped.append(key)
            continue
        new = key
        if key.startswith('layers.'):
            new = new.replace('layers.', 'stages.', 1)
            if '.downsample.reduction.' in key:
                value = unfold_order_reduction(value)
            elif '.downsample.norm.' in key:
                value = unfold_order_norm(value)
            new = (new.replace('.attn.', '.attn.w_msa.', 1)
                   .replace('.mlp.fc1.', '.ffn.layers.0.0.', 1)
                   .replace('.mlp.fc2.', '.ffn.layers.1.', 1))
        elif key.startswith('patch_embed.proj.'):
            new = 'patch_embed.projection.' + key[len('patch_embed.proj.'):]
        converted[new] = value
    return converted, sorted(skipped)


def interpolate_bias_table(table: torch.Tensor, length: int) -> torch.Tensor:
    """Resize a ``relative_position_bias_table`` (L, heads) to ``length`` rows, bicubically.

    The same arithmetic as mmdet/mmseg ``init_weights`` (and Microsoft's fine-tuning code), so a
    file loads identically whichever of them resizes it.
    """
    old_side, new_side = int(table.shape[0]**0.5), int(length**0.5)
    heads = table.shape[1]
    grid = table.permute(1, 0).reshape(1, heads, old_side, old_side)
    resized = F.interpolate(grid, size=(new_side, new_side), mode='bicubic')
    return resized.view(heads, length).permute(1, 0).contiguous()


class SwinWeightConverter:
    """``load_state_dict`` pre-hook: make any Swin layout loadable into an mm Swin backbone.

    Registered on the host backbone *before* the load reporter, so the report describes the
    converted keys. Microsoft-only keys are left in the state dict under their own names: the
    non-strict load ignores them and the load report lists them as unexpected.

    Args:
        backbone: The mmdet/mmseg ``SwinTransformer``.
    """

    def __init__(self, backbone: nn.Module) -> None:
        self.backbone = backbone
        backbone._register_load_state_dict_pre_hook(self._hook)

    def _hook(self, state_dict: dict, prefix: str, *args) -> None:
        keys = [k for k in state_dict if k.startswith(prefix)]
        rel = {k[len(prefix):] for k in keys}
        host = self.backbone.state_dict()
        layout = detect_swin_layout(rel)
        if not rel:  # e.g. an adapter-only checkpoint of another method, or no backbone keys
            return
        if layout == 'mixed':
            print_log('Swin weights: the checkpoint mixes Microsoft (layers.i...) and OpenMMLab '
                      '(stages.i...) keys; it is loaded as is, without conversion.',
                      logger='current', level=logging.WARNING)
        elif layout is None and not rel & set(host):
            print_log(f'Swin weights: none of the {len(rel)} keys offered to '
                      f'{type(self.backbone).__name__} is a Swin key in Microsoft layout '
                      '(layers.i.blocks.j..., patch_embed.proj) or OpenMMLab layout '
                      '(stages.i.blocks.j..., patch_embed.projection), so nothing loads. Is it '
                      'the right file, with the right prefix? Keys: '
                      f'{preview(sorted(rel))}', logger='current', level=logging.WARNING)
        elif layout == MICROSOFT:
            sub = {k: state_dict.pop(prefix + k) for k in rel}
            converted, skipped = convert_microsoft_swin(sub)
            for key, value in converted.items():
                state_dict[prefix + key] = value
            for key in skipped:  # kept, unconverted: the report lists them as unexpected
                state_dict[prefix + key] = sub[key]
            print_log(f'Swin weights: converted {len(converted)} tensors from Microsoft layout '
                      'to OpenMMLab names (PatchMerging reduction/norm re-ordered for '
                      f'nn.Unfold); not loaded, no counterpart in the backbone: '
                      f'{preview(skipped)}', logger='current')
        self._fit_to_host(state_dict, prefix, host)

    def _fit_to_host(self, state_dict: dict, prefix: str, host: Dict[str, torch.Tensor]) -> None:
        """Adapt the window-size dependent tensors to the host's window size."""
        resized = []
        for name, current in host.items():
            key = prefix + name
            if key not in state_dict:
                continue
            if name.endswith('relative_position_index'):
                # A constant of the window size, never learned (Microsoft's formula and mm's
                # give the same values): always take the host's, so a file with another
                # window size cannot corrupt it or fail with a size mismatch.
                if not torch.equal(state_dict[key], current):
                    resized.append(name)
                state_dict[key] = current.clone()
            elif name.endswith('relative_position_bias_table') \
                    and state_dict[key].shape != current.shape:
                table = state_dict[key]
                if table.dim() != 2 or table.shape[1] != current.shape[1]:
                    raise ValueError(
                        f'{name}: the checkpoint has shape {tuple(table.shape)}, the backbone '
                        f'{tuple(current.shape)} (heads differ): the file is for another Swin '
                        'architecture (check embed_dims / num_heads / depths).')
                state_dict[key] = interpolate_bias_table(table, current.shape[0])
                resized.append(name)
        if resized:
            print_log(f'Swin weights: the checkpoint was trained with another window size; '
                      f'{len(resized)} relative-position tensors fitted to the backbone '
                      '(bias tables resized bicubically, indices recomputed): '
                      f'{preview(resized)}', logger='current')


def load_weights_only(path: str) -> dict:
    """Load a checkpoint refusing pickled objects (``torch.load(weights_only=True)``).

    Remote URIs go through mmengine's ``CheckpointLoader``, which relies on torch's default
    (weights-only since torch 2.6); local files pass ``weights_only=True`` explicitly.

    Raises:
        ValueError: The file pickles objects besides tensors (e.g. the ``args`` Namespace of the
            original VideoMAE checkpoints); the message says how to re-save its weights.
    """
    if osp.isfile(osp.expanduser(path)):
        try:
            return torch.load(osp.expanduser(path), map_location='cpu', weights_only=True)
        except pickle.UnpicklingError as err:
            raise ValueError(
                f'{path} holds pickled Python objects besides tensors, which weights-only '
                'loading refuses (loading them could run arbitrary code). If you trust the '
                'file, keep only its weights once: python -c "import torch; c = torch.load('
                f"'{path}', weights_only=False); torch.save({{'model': c.get('model', c)}}, "
                f"'{path}.weights.pth')\" and point the config at {path}.weights.pth. "
                f'({str(err).splitlines()[0]})') from None
    return CheckpointLoader.load_checkpoint(path, map_location='cpu')


class SwinWeights(HostWeights):
    """mmseg Swin (profile ``weights``): the converter only; mmseg's own Pretrained init strips
    ``backbone.`` and keeps every key, and the converter maps what it loads."""
    converter = SwinWeightConverter


class MMDetSwinWeights(SwinWeights):
    """mmdet Swin (profile ``weights``): the converter, and a Pretrained init like mmseg's.

    mmdet keeps only ``backbone.``-prefixed keys (or converts everything, OpenMMLab files
    included); here every key is kept and the pre-hook converts exactly what needs it, so
    ``convert_weights`` no longer matters and both layouts load. As mmdet, the Pretrained
    branch replaces the random init.
    """
    host_init_first = False

    def accepts(self, cfg: dict) -> bool:
        if 'checkpoint' not in cfg:
            raise ValueError(f'{type(self.backbone).__name__} supports only init_cfg=dict(type='
                             f"'Pretrained', checkpoint=...), got {self.backbone.init_cfg}.")
        return True

    def load_pretrained(self, cfg: dict) -> None:
        ckpt = load_weights_only(cfg['checkpoint'])
        state = ckpt.get('state_dict', ckpt.get('model', ckpt))
        state = {(k[len('backbone.'):] if k.startswith('backbone.') else k): v
                 for k, v in state.items()}
        if state and next(iter(state)).startswith('module.'):  # DataParallel-saved files
            state = {k[len('module.'):]: v for k, v in state.items()}
        self.backbone.load_state_dict(state, strict=False)
