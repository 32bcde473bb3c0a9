"""Load VideoMAE and Video Swin checkpoints into PETL-wrapped mmaction2 backbones.

Layouts (backbone-relative, once the ``model``/``module``/``state_dict`` wrapper and the
``module.``/``backbone.`` prefixes are removed): the VideoMAE self-supervised pretrain
(``encoder.*`` with ``patch_embed.proj``, ``mlp.fc1``/``fc2``, ``norm``; plus ``decoder.*``,
``encoder_to_decoder``, ``mask_token``); AdaptFormer's ``convert.py`` output (``attn.{q,k,v}_proj``,
``fc1``/``fc2`` without ``mlp.``); fine-tuned VideoMAE (no ``encoder.``, ``fc_norm``, ``head``);
mmaction2 Recognizer3D files (host names, ``cls_head``); Video Swin K400 (mmaction's names but
the final ``norm``, which mmaction calls ``norm{last stage}``; ``cls_head``).

Natively (checked on mmaction2 1.2.0 / mmengine 0.10.7), ``VisionTransformer`` has no
``init_weights`` and ``SwinTransformer3D`` (``pretrained2d=False``) turns ``pretrained`` into a
``Pretrained`` init_cfg; both end in mmengine's ``load_checkpoint(strict=False)``, which unwraps
only ``state_dict``, strips only ``module.`` and relies on torch's default ``weights_only``: a
``{'model': ...}`` file (one key, ``model``) and a Recognizer3D file (``backbone.*``) load
nothing, silently. ``pretrained2d=True`` with ``pretrained=None`` raises ``TypeError``. Runner
``load_from`` loads the whole model alike: ``backbone.*`` keys reach ``PETLBackbone``, whose
prefix hooks hand them to the host; weights under ``model``/``module`` reach nothing.

Here :class:`VideoMAEWeights` / :class:`VideoSwinWeights` (the ``weights`` of the two mmaction2
profiles, see :mod:`vpetl_mm.compat.weights`) install a ``load_state_dict`` pre-hook on the host
(before the load reporter) that maps any layout to host names, whatever the route, and load a
Pretrained file ``weights_only=True``, unwrapped; :func:`move_weights_to_backbone` (run by
:class:`~vpetl_mm.hooks.PretrainedLoadFromHook`) lets ``load_from`` take ``{'model': ...}`` files.
"""
import re
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info

from .keys import summarise
from .swin_weights import load_weights_only
from .weights import HostWeights

PRETRAIN, ADAPTFORMER, FINETUNE, MMACTION = (
    'videomae_pretrain', 'adaptformer', 'videomae_finetune', 'mmaction')
_DESCRIBE = {PRETRAIN: 'VideoMAE pretrain (encoder.*)', FINETUNE: 'fine-tuned VideoMAE',
             ADAPTFORMER: 'AdaptFormer-converted pretrain (q/k/v_proj fused into qkv)'}
_WRAPPERS = ('state_dict', 'model', 'module')  # mm files; VideoMAE/AdaptFormer; VideoMAE fine-tuned
_QKV = re.compile(r'^(blocks\.\d+\.attn\.)([qkv])_proj\.(weight|bias)$')
_RENAMES = [(re.compile(r'^patch_embed\.proj\.'), 'patch_embed.projection.'),
            (re.compile(r'^(blocks\.\d+\.)(?:mlp\.)?fc1\.'), r'\1mlp.layers.0.0.'),
            (re.compile(r'^(blocks\.\d+\.)(?:mlp\.)?fc2\.'), r'\1mlp.layers.1.')]
_LAYOUTS = [(ADAPTFORMER, re.compile(r'^(encoder\.)?blocks\.\d+\.(attn\.[qkv]_proj|fc1)\.')),
            (PRETRAIN, re.compile(r'^encoder\.blocks\.')),
            (FINETUNE, re.compile(r'^blocks\.\d+\.mlp\.fc1\.')),
            (MMACTION, re.compile(r'^blocks\.\d+\.mlp\.layers\.0\.0\.'))]  # first match wins
_HEAD = re.compile(r'^(cls_head|head)\.')


def checkpoint_weights(checkpoint: dict) -> dict:
    """Return the tensors of a loaded checkpoint, unwrapping ``state_dict``/``model``/``module``."""
    return next((checkpoint[k] for k in _WRAPPERS if isinstance(checkpoint.get(k), dict)),
                checkpoint)


def _strip(key: str) -> str:
    # DataParallel files add 'module.'; Recognizer3D files given to the host add 'backbone.'.
    return re.sub(r'^(module\.)?(backbone\.)?', '', key)


def detect_videomae_layout(keys) -> Optional[str]:
    """Return :data:`PRETRAIN`, :data:`ADAPTFORMER`, :data:`FINETUNE`, :data:`MMACTION` or None."""
    return next((name for name, pattern in _LAYOUTS if any(pattern.match(k) for k in keys)), None)


def convert_videomae(state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Rename backbone-relative keys of any VideoMAE layout to mmaction2 names (idempotent).

    Returns the converted tensors and the keys that are no backbone weights (the pretrain's
    decoder, heads): those stay under their own names, so the non-strict load skips them and
    the load report lists them as unexpected.
    """
    encoder = any(k.startswith('encoder.') for k in state)
    out: Dict[str, torch.Tensor] = {}
    extra: List[str] = []
    split: Dict[str, Dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if encoder and not key.startswith('encoder.'):  # the decoder: only the encoder is ours
            extra.append(key)
            out[key] = value
            continue
        key = key[len('encoder.'):] if encoder else key
        match = _QKV.match(key)
        if match:
            split.setdefault(match.group(1), {})[match.group(2) + match.group(3)] = value
            continue
        if _HEAD.match(key):
            extra.append(key)
        for pattern, repl in _RENAMES:
            key = pattern.sub(repl, key)
        out[key] = value
    for attn, parts in split.items():
        if not {'qweight', 'kweight', 'vweight'} <= set(parts):
            raise ValueError(f'{attn}{{q,k,v}}_proj: the checkpoint holds only {sorted(parts)}; '
                             f'cannot fuse them into {attn}qkv.weight.')
        # mmaction's Attention has one fused projection, output rows in q, k, v order.
        out[attn + 'qkv.weight'] = torch.cat([parts[p + 'weight'] for p in 'qkv'])
        out.update({f'{attn}{p}_bias': parts[p + 'bias'] for p in 'qv' if p + 'bias' in parts})
        if 'kbias' in parts and parts['kbias'].any():  # the host's k bias is fixed at zero
            out[attn + 'k_proj.bias'] = parts['kbias']
            extra.append(attn + 'k_proj.bias')
    return out, extra


def interpolate_pos_embed(pos: torch.Tensor, frames: int, grid: Tuple[int, int]) -> torch.Tensor:
    """Resize a learnable VideoMAE ``pos_embed`` (1, T*H*W, C) to ``frames`` x ``grid`` tokens.

    One token count does not determine T, H and W: the file is taken to share the host's
    temporal token count (VideoMAE's own fine-tuning rule) or else its spatial grid. Space is
    resized bicubically per frame, as VideoMAE does, time linearly.
    """
    num, dims = pos.shape[1:]
    h, w = grid
    side = int(round((num / frames)**0.5))
    if side * side * frames == num:
        t1, h1, w1 = frames, side, side
    elif num % (h * w) == 0:
        t1, h1, w1 = num // (h * w), h, w
    else:
        raise ValueError(f'pos_embed: {num} tokens in the checkpoint fit neither {frames} '
                         f'temporal tokens nor a {h}x{w} grid; match num_frames/img_size.')
    x = pos.reshape(t1, h1, w1, dims).permute(0, 3, 1, 2)  # (T, C, H, W)
    if (h1, w1) != (h, w):
        x = F.interpolate(x, size=(h, w), mode='bicubic', align_corners=False)
    if t1 != frames:
        x = F.interpolate(x.permute(1, 2, 3, 0).reshape(1, dims * h * w, t1), size=frames,
                          mode='linear', align_corners=False)
        x = x.reshape(dims, h, w, frames).permute(3, 0, 1, 2)
    return x.permute(0, 2, 3, 1).reshape(1, frames * h * w, dims)


class _Converter:
    """``load_state_dict`` pre-hook on ``backbone``: strip prefixes, convert, log one line."""

    name = ''

    def __init__(self, backbone: nn.Module) -> None:
        self.backbone = backbone
        backbone._register_load_state_dict_pre_hook(self._hook)

    def _hook(self, state_dict: dict, prefix: str, *args) -> None:
        keys = [k for k in state_dict if k.startswith(prefix)]
        if not keys:  # e.g. a load_from file whose weights sit under 'model'
            return
        sub = {_strip(k[len(prefix):]): state_dict.pop(k) for k in keys}
        stripped = len(set(sub) - {k[len(prefix):] for k in keys})
        sub, notes, extra = self.convert(sub)
        state_dict.update({prefix + k: v for k, v in sub.items()})
        notes = ([f'prefix backbone./module. stripped from {stripped} keys'] * bool(stripped)
                 + notes + [f'not loaded, no counterpart: {summarise(extra)}'] * bool(extra))
        if notes:
            print_log(f'{self.name} weights: ' + '; '.join(notes) + '.', logger='current')

    def convert(self, state: dict) -> Tuple[dict, List[str], List[str]]:
        """Return the host-named state, notes for the log line, and keys that cannot load."""
        raise NotImplementedError


class VideoMAEWeightConverter(_Converter):
    """Pre-hook mapping every VideoMAE layout to an mmaction2 ``VisionTransformer``'s names."""

    name = 'VideoMAE'

    def convert(self, state: dict) -> Tuple[dict, List[str], List[str]]:
        layout = detect_videomae_layout(state)
        if layout is None:  # adapter-only checkpoints, or nothing we know: names as they are
            return state, self._fit_pos_embed(state, layout), []
        state, extra = convert_videomae(state)
        # mm files already have host names: log only what changes (not on every resume).
        notes = [] if layout == MMACTION else [
            f'{len(state) - len(extra)} tensors of the {_DESCRIBE[layout]} in mmaction2 names']
        if self.backbone.fc_norm is not None and 'fc_norm.weight' not in state:
            why = ('; norm.* not loaded: the backbone uses mean pooling (its norm is Identity)'
                   if 'norm.weight' in state else '')
            notes.append('fc_norm is new (keeps its init)' + why)
        return state, notes + self._fit_pos_embed(state, layout), extra

    def _fit_pos_embed(self, state: dict, layout: Optional[str]) -> List[str]:
        host = self.backbone.pos_embed
        learnable = isinstance(host, nn.Parameter)
        if 'pos_embed' not in state:
            return [] if learnable or layout is None else [
                'pos_embed not in the file: the backbone keeps its fixed sinusoid table']
        shape = tuple(state['pos_embed'].shape)
        if shape == host.shape:
            return []
        if not learnable:  # a constant of num_frames and img_size: the host's is the right one
            del state['pos_embed']
            return [f'pos_embed {shape} dropped: the backbone\'s {tuple(host.shape)} is a fixed '
                    'sinusoid table (use_learnable_pos_emb=False)']
        grid = self.backbone.grid_size
        frames = host.shape[1] // (grid[0] * grid[1])
        state['pos_embed'] = interpolate_pos_embed(state['pos_embed'], frames, grid)
        return [f'pos_embed interpolated {shape} -> {tuple(host.shape)}']


class VideoSwinWeightConverter(_Converter):
    """Pre-hook fitting Video Swin files to an mmaction2 ``SwinTransformer3D`` (norm, buffers)."""

    name = 'Video Swin'

    def convert(self, state: dict) -> Tuple[dict, List[str], List[str]]:
        host, notes = self.backbone.state_dict(), []
        extra = [k for k in state if _HEAD.match(k)]
        last = f'norm{self.backbone.num_layers - 1}'
        if 'norm.weight' in state:  # mmaction names output norms by stage (cf. inflate_weights)
            if host.get(f'{last}.weight', torch.empty(0)).shape == state['norm.weight'].shape:
                state.update({f'{last}.{p}': state.pop(f'norm.{p}') for p in ('weight', 'bias')
                              if f'norm.{p}' in state})
                notes.append(f'norm.* -> {last}.*')
            else:
                extra += [k for k in state if k.startswith('norm.')]
                notes.append(f'norm.* not loaded: out_indices={tuple(self.backbone.out_indices)} '
                             f'gives no {last}')
        for name, current in host.items():
            if name not in state:
                continue
            if name.endswith('relative_position_index'):  # a constant of window_size: the host's
                state[name] = current.clone()
            elif name.endswith('bias_table') and state[name].shape != current.shape:
                ws = tuple(self.backbone.window_size)
                why = ('heads differ: the file is for another Swin architecture (check arch)'
                       if state[name].shape[1:] != current.shape[1:] else
                       f'the file has another window size than window_size={ws}. Set '
                       'window_size to the checkpoint\'s, e.g. (8, 7, 7) for swin_base_patch244_'
                       'window877_kinetics400_22k.pth (3-D tables are not resized)')
                raise ValueError(f'{name}: the checkpoint has shape {tuple(state[name].shape)}, '
                                 f'the backbone {tuple(current.shape)}: {why}.')
        return state, notes, extra


def _load_pretrained(host: nn.Module, cfg: dict) -> None:
    """Load ``cfg['checkpoint']`` weights-only, unwrapped, ``prefix=`` applied as mmengine does."""
    print_log(f'load model from: {cfg["checkpoint"]} (weights-only)', logger='current')
    state = checkpoint_weights(load_weights_only(cfg['checkpoint']))
    if cfg.get('prefix'):
        prefix = cfg['prefix'].rstrip('.') + '.'
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise ValueError(f'init_cfg prefix={cfg["prefix"]!r}: no key of '
                             f'{cfg["checkpoint"]} starts with it.')
    host.load_state_dict(state, strict=False)  # the pre-hook converts; size mismatches raise
    update_init_info(host, f'PretrainedInit (weights-only): load from {cfg["checkpoint"]}')


def move_weights_to_backbone(checkpoint: dict, prefix: str = 'backbone.') -> bool:
    """Give a ``{'model'|'module': weights}`` file a ``state_dict`` under ``prefix``, in place.

    Runner ``load_from`` reads only ``state_dict`` (else the whole dict), so the weights of such
    a file reach no module. Of a VideoMAE pretrain only the encoder is kept: its decoder is no
    part of a recognizer. Files with a ``state_dict`` (mm checkpoints, resume) are left alone.
    Returns whether the checkpoint was changed.
    """
    weights = checkpoint_weights(checkpoint)
    if 'state_dict' in checkpoint or weights is checkpoint or not all(
            isinstance(v, torch.Tensor) for v in weights.values()):
        return False
    encoder = any(k.startswith('encoder.') for k in weights)
    checkpoint['state_dict'] = {prefix + k: v for k, v in weights.items()
                                if k.startswith('encoder.') or not encoder}
    dropped = [k for k in weights if encoder and not k.startswith('encoder.')]
    print_log(f'load_from: the file\'s weights go to {prefix}*' + (
        f'; not loaded, the VideoMAE decoder: {summarise(dropped)}' * bool(dropped)) + '.',
        logger='current')
    return True


class VideoWeights(HostWeights):
    """mmaction2 video hosts: Pretrained files load weights-only, unwrapped, then converted.

    The host's own init runs without the Pretrained entry (and, for ``SwinTransformer3D``,
    without ``pretrained=``), then :func:`_load_pretrained`; 2-D inflation
    (``pretrained2d=True``) stays the host's.
    """

    def accepts(self, cfg: dict) -> bool:
        host = self.backbone
        return not (getattr(host, 'pretrained2d', False) and host.pretrained)

    def host_options(self) -> dict:
        # Swin3D: pretrained2d=True would inflate None and fail; pretrained= is loaded here.
        return dict(pretrained=None, pretrained2d=False) if hasattr(
            self.backbone, 'pretrained2d') else {}

    def load_pretrained(self, cfg: dict) -> None:
        _load_pretrained(self.backbone, cfg)


class VideoMAEWeights(VideoWeights):
    """The ``weights`` of the mmaction2 ``VisionTransformer`` profile (VideoMAE layouts)."""
    converter = VideoMAEWeightConverter


class VideoSwinWeights(VideoWeights):
    """The ``weights`` of the mmaction2 ``SwinTransformer3D`` profile (Video Swin files)."""
    converter = VideoSwinWeightConverter
