"""Load Google's JAX ViT ``.npz`` checkpoints into mmpretrain's ``VisionTransformer``.

V-PETL's image backbone is the original ImageNet-21K release (``ViT-B_16.npz``; also ``ViT-L_16``,
``ViT-H_14``), which the reference loads with timm's ``_load_weights``; mmengine's
``CheckpointLoader`` reads only torch files. :class:`GoogleViTNpzLoader` (the ``weights`` of the
'mmpretrain.VisionTransformer' profile, installed by ``PETLBackbone``; see
:mod:`vpetl_mm.compat.weights`) replaces that instance's ``init_weights``: for an ``.npz`` it runs the host's random init, then loads the file read with
``numpy.load(allow_pickle=False)`` and converted by :func:`convert_google_vit` through
``load_state_dict``, so the load report lists what loaded, what the file lacks and its keys with
no counterpart (``head/*``, ``pre_logits/*``). Other routes to an ``.npz`` (``load_from``,
``load_checkpoint``) raise a ``ValueError`` that says how to load it instead.

Position embeddings of another grid are resized like the reference (timm 0.6.5) and
mmpretrain: CLS row kept, the grid interpolated with the host's ``interpolate_mode`` (default
``'bicubic'``, ``align_corners=False``, no antialiasing). timm >= 0.9 resizes Google files
bilinearly; set ``interpolate_mode='bilinear'`` on the host to match it.

Examples:
    >>> model = dict(
    ...     backbone=dict(
    ...         type='vpetl_mm.PETLBackbone',
    ...         backbone=dict(type='VisionTransformer', arch='b', img_size=224, patch_size=16,
    ...                       init_cfg=dict(type='Pretrained', checkpoint='ViT-B_16.npz')),
    ...         petl=dict(type='LoRA')))
"""
import logging
import os.path as osp
import re
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from mmengine.runner import CheckpointLoader

from .keys import summarise
from .weights import HostWeights

GOOGLE_PREFIXES = ('opt/target/', '')  # the original release stores some files under opt/target/
_ANCHOR = 'embedding/kernel'
_BLOCK = re.compile(r'^Transformer/encoderblock_(\d+)/')
_MHA = 'MultiHeadDotProductAttention_1/'
# Per-block (Google sub-path, mmpretrain sub-path, kind); kind says how the array is reshaped.
_BLOCK_PARAMS = [('LayerNorm_0/scale', 'ln1.weight', 'vector'),
                 ('LayerNorm_0/bias', 'ln1.bias', 'vector'),
                 (_MHA + 'out/kernel', 'attn.proj.weight', 'out'),
                 (_MHA + 'out/bias', 'attn.proj.bias', 'vector'),
                 ('LayerNorm_2/scale', 'ln2.weight', 'vector'),
                 ('LayerNorm_2/bias', 'ln2.bias', 'vector'),
                 ('MlpBlock_3/Dense_0/kernel', 'ffn.layers.0.0.weight', 'dense'),
                 ('MlpBlock_3/Dense_0/bias', 'ffn.layers.0.0.bias', 'vector'),
                 ('MlpBlock_3/Dense_1/kernel', 'ffn.layers.1.weight', 'dense'),
                 ('MlpBlock_3/Dense_1/bias', 'ffn.layers.1.bias', 'vector')]


def load_npz(path: str) -> Dict[str, np.ndarray]:
    """Every array of a local Google ViT ``.npz`` by key, read with ``allow_pickle=False``.

    Raises ``ValueError`` for no ``.npz`` archive, pickled objects, or no ``embedding/kernel``
    (optionally under ``opt/target/``): not the Google ViT layout.
    """
    if '://' in str(path):
        raise ValueError(f'{path}: Google .npz checkpoints are read from local files only; '
                         'download it and point checkpoint= at the local copy.')
    try:
        archive = np.load(osp.expanduser(path), allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f'{path} is not a NumPy .npz archive; a Google ViT checkpoint (e.g. '
                         f'ViT-B_16.npz) was expected. ({err})') from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a bare .npy array
        raise ValueError(f'{path} holds one array, not the keyed .npz archive of a Google ViT '
                         'checkpoint (e.g. ViT-B_16.npz).')
    with archive:
        names = list(archive.files)
        if any(n.endswith('data.pkl') for n in names):  # torch.save also writes zip archives
            raise ValueError(f'{path} is a PyTorch checkpoint (a zip holding data.pkl), not a '
                             'Google .npz: give it a .pth name so that mmengine loads it.')
        try:
            google_prefix(names)
        except ValueError as err:
            raise ValueError(f'{path} is an .npz archive but {err}') from None
        try:
            return {name: archive[name] for name in names}
        except ValueError as err:  # an object array: reading it would need pickle
            raise ValueError(f'{path} holds pickled objects, which a weights-only load '
                             f'refuses. ({err})') from None


def _summarise(keys) -> str:
    """``head/* (2), pre_logits/* (2)``: file keys grouped by their first component."""
    return summarise(keys, sep='/', strip=GOOGLE_PREFIXES[0])


def google_prefix(keys) -> str:
    """Return the key prefix (``'opt/target/'`` or ``''``) of a Google ViT checkpoint's keys.

    Raises:
        ValueError: The keys are no original Google ViT layout (the message says which).
    """
    keys = list(keys)
    if any(k.startswith('params/') or k.endswith(('Transformer/encoderblock/LayerNorm_0/scale',
                                                    'conv_root/kernel')) for k in keys):
        # big_vision stacks the blocks in one scanned tensor; hybrids add a ResNet stem.
        raise ValueError('this .npz is a big_vision (params/, stacked encoderblock/) or hybrid '
                         '(R50+ViT) checkpoint; only the original Google ViT layout '
                         '(Transformer/encoderblock_{i}/..., e.g. ViT-B_16.npz) is supported.')
    prefix = next((p for p in GOOGLE_PREFIXES if p + _ANCHOR in keys), None)
    if prefix is None:
        raise ValueError(f'not a Google ViT checkpoint: expected the key {_ANCHOR!r} (optionally '
                         f'under opt/target/), found {_summarise(keys)}.')
    return prefix


def _strip_prefix(npz: Mapping[str, np.ndarray]) -> Tuple[str, Dict[str, np.ndarray]]:
    prefix = google_prefix(npz)
    return prefix, {k[len(prefix):]: v for k, v in npz.items() if k.startswith(prefix)}


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32))  # a copy: npz arrays are read-only


def split_google_vit(npz: Mapping[str, np.ndarray], num_layers: Optional[int] = None
                     ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Convert a Google ViT checkpoint to mmpretrain names, and list what has no counterpart.

    Args:
        npz: The arrays of the file (see :func:`load_npz`).
        num_layers: Convert blocks ``0..num_layers-1``; further blocks are left unused. By
            default every block of the file.

    Returns:
        The converted tensors (float32), and the sorted file keys not converted (``head/*``,
        ``pre_logits/*``, blocks beyond ``num_layers``) under their own names.
    """
    prefix, w = _strip_prefix(npz)
    blocks = sorted({int(m.group(1)) for m in map(_BLOCK.match, w) if m})
    layers = len(blocks) if num_layers is None else num_layers
    out: Dict[str, torch.Tensor] = {}
    used = set()

    def take(key: str) -> np.ndarray:
        if key not in w:
            raise ValueError(f'Google ViT checkpoint: {prefix + key!r} is missing, although '
                             f'block/embedding keys are there (a truncated file?).')
        used.add(key)
        return w[key]

    # JAX kernels are (in, out) [Dense] / HWIO [Conv]; torch wants (out, in) / OIHW.
    out['patch_embed.projection.weight'] = _tensor(take(_ANCHOR).transpose(3, 2, 0, 1))
    out['patch_embed.projection.bias'] = _tensor(take('embedding/bias'))
    if 'cls' in w:  # GAP-pooled variants have no class token
        out['cls_token'] = _tensor(take('cls'))
    out['pos_embed'] = _tensor(take('Transformer/posembed_input/pos_embedding'))
    out['ln1.weight'] = _tensor(take('Transformer/encoder_norm/scale'))  # mmpretrain's final norm
    out['ln1.bias'] = _tensor(take('Transformer/encoder_norm/bias'))
    for i in range(min(layers, len(blocks))):
        bp, mp = f'Transformer/encoderblock_{i}/', f'layers.{i}.'
        # q, k, v kernels are (D, heads, head_dim): flatten heads (head-major, as torch's
        # reshape into heads expects), transpose, and stack the rows in q, k, v order.
        kernels = [take(f'{bp}{_MHA}{n}/kernel') for n in ('query', 'key', 'value')]
        out[mp + 'attn.qkv.weight'] = torch.cat(
            [_tensor(k.reshape(k.shape[0], -1).T) for k in kernels])
        out[mp + 'attn.qkv.bias'] = torch.cat([
            _tensor(take(f'{bp}{_MHA}{n}/bias').reshape(-1)) for n in ('query', 'key', 'value')])
        for google, mm, kind in _BLOCK_PARAMS:
            array = take(bp + google)
            if kind == 'out':  # (heads, head_dim, D) -> (D_in, D_out) -> (D_out, D_in)
                array = array.reshape(-1, array.shape[-1]).T
            elif kind == 'dense':
                array = array.T
            out[mp + mm] = _tensor(array)
    unused = sorted(prefix + k for k in w if k not in used)
    unused += sorted(k for k in npz if not k.startswith(prefix))  # '' prefix: none
    return out, unused


def convert_google_vit(npz: Mapping[str, np.ndarray],
                       num_layers: Optional[int] = None) -> Dict[str, torch.Tensor]:
    """Map a Google ViT checkpoint to mmpretrain ``VisionTransformer`` keys (no resizing).

    Args:
        npz: The arrays of the file (see :func:`load_npz`).
        num_layers: Convert only the first ``num_layers`` blocks (default: all).

    Returns:
        ``{'patch_embed.projection.weight': ..., 'layers.0.attn.qkv.weight': ..., 'ln1.weight':
        ...}``; ``head/*`` and ``pre_logits/*`` are dropped (see :func:`split_google_vit`).

    Examples:
        >>> state = convert_google_vit(load_npz('ViT-B_16.npz'))
        >>> torch.save({'state_dict': state}, 'ViT-B_16_mmpretrain.pth')  # a torch copy
    """
    return split_google_vit(npz, num_layers)[0]


def resize_pos_embed_grid(pos: torch.Tensor, new_grid: Tuple[int, int], num_prefix: int = 1,
                          mode: str = 'bicubic', antialias: bool = False) -> torch.Tensor:
    """Resize a ``(1, num_prefix + g*g, D)`` position embedding to ``new_grid``, prefix rows kept.

    The reference's rule (timm 0.6.5 ``resize_pos_embed``, mmpretrain ``resize_pos_embed``):
    ``align_corners=False``, computed in float32, no antialiasing by default. timm >= 0.9 loads
    Google files with ``mode='bilinear'`` (also without antialiasing).
    """
    prefix, grid = pos[:, :num_prefix], pos[:, num_prefix:]
    side = int(round(grid.shape[1]**0.5))
    if side * side != grid.shape[1]:
        raise ValueError(f'pos_embed: {grid.shape[1]} patch positions are no square grid '
                         f'({tuple(pos.shape)} with {num_prefix} prefix token(s)).')
    dims = grid.shape[-1]
    grid = grid.reshape(1, side, side, dims).permute(0, 3, 1, 2).float()
    corners = False if mode in ('linear', 'bilinear', 'bicubic', 'trilinear') else None
    grid = F.interpolate(grid, size=tuple(new_grid), mode=mode, align_corners=corners,
                         antialias=antialias)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dims).to(pos.dtype)
    return torch.cat([prefix, grid], dim=1)


def fit_to_host(state: Dict[str, torch.Tensor], host: nn.Module, heads: Optional[int] = None,
                blocks: Optional[int] = None) -> List[str]:
    """Fit converted tensors to ``host`` in place: resize ``pos_embed``, check every shape.

    Args:
        state: Output of :func:`convert_google_vit`.
        host: The mmpretrain ``VisionTransformer``.
        heads: The file's attention heads (a head count that differs with the same width would
            load without a shape error but compute another function).
        blocks: The file's block count (for the error message).

    Returns:
        Notes for the log line (e.g. the resize).

    Raises:
        ValueError: The file is for another architecture (width, depth, patch size, heads).
    """
    notes: List[str] = []
    current = host.state_dict()
    host_heads = host.layers[0].attn.num_heads if len(host.layers) else heads
    file_prefix = int('cls_token' in state)
    if 'pos_embed' in state and state['pos_embed'].shape != current['pos_embed'].shape:
        pos, extra = state['pos_embed'], host.num_extra_tokens
        if extra < file_prefix:  # with_cls_token=False: the class position is of no use
            pos, file_prefix = pos[:, file_prefix - extra:], extra
        elif extra > file_prefix:
            raise ValueError(f'pos_embed: the backbone has {extra} extra tokens, the Google file '
                             f'{file_prefix}; it cannot provide their positions.')
        old, width = tuple(state['pos_embed'].shape), current['pos_embed'].shape[-1]
        grid = tuple(host.patch_embed.init_out_size)
        mode = getattr(host, 'interpolate_mode', 'bicubic')
        if pos.shape[1] != extra + grid[0] * grid[1] and pos.shape[-1] == width:
            pos = resize_pos_embed_grid(pos, grid, extra, mode)
            notes.append(f'pos_embed resized {old} -> {tuple(pos.shape)} ({mode}, '
                         f'{"class position kept" if extra else "class position dropped"})')
        elif pos.shape[1] != old[1]:
            notes.append('pos_embed: class position dropped (with_cls_token=False)')
        state['pos_embed'] = pos  # another width: reported by the check below
    wrong = [f'{k}: file {tuple(v.shape)}, backbone {tuple(current[k].shape)}'
             for k, v in state.items() if k in current and v.shape != current[k].shape]
    if wrong or (heads is not None and heads != host_heads):
        conv = state['patch_embed.projection.weight']
        raise ValueError(
            f'The Google ViT checkpoint is for another architecture: width {conv.shape[0]}, '
            f'{blocks} blocks, {heads} heads, patch {conv.shape[-1]}; the backbone has width '
            f'{host.embed_dims}, {host.num_layers} blocks, {host_heads} heads, patch '
            f'{host.patch_embed.projection.kernel_size[0]}. Set arch/patch_size to match '
            f'(ViT-B/16: arch="b", patch_size=16). Mismatches: '
            f'{"; ".join(wrong[:4]) or "the head count"}.')
    return notes


class GoogleViTNpzLoader(HostWeights):
    """Loads Google ``.npz`` checkpoints into one mmpretrain ``VisionTransformer`` instance.

    The ``weights`` of the 'mmpretrain.VisionTransformer' profile (see
    :mod:`vpetl_mm.compat.weights`): a Pretrained ``init_cfg`` naming an ``.npz`` runs the host's
    random init, then :meth:`load`; ``.pth`` files load as the host loads them.

    Args:
        backbone: The host backbone; its ``init_weights`` is replaced on this instance only.

    Attributes:
        last: After a load: ``dict(path, loaded, unused, notes)`` (converted host keys, file keys
            with no counterpart, resize notes).

    Examples:
        >>> # what PETLBackbone does for every 'mmpretrain.VisionTransformer' host; then
        >>> # init_cfg=dict(type='Pretrained', checkpoint='ViT-B_16.npz') loads through it
        >>> loader = GoogleViTNpzLoader(host)
        >>> loader.load('ViT-B_16.npz')['unused']  # also callable directly
        ['head/bias', 'head/kernel', 'pre_logits/bias', 'pre_logits/kernel']
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__(backbone)
        self.last: Optional[dict] = None

    def accepts(self, cfg: dict) -> bool:
        if not str(cfg.get('checkpoint', '')).lower().endswith('.npz'):
            return False  # .pth files: the host's own Pretrained init
        if cfg.get('prefix'):
            raise ValueError(f'init_cfg prefix={cfg["prefix"]!r} does not apply to Google .npz '
                             'files (their opt/target/ prefix is detected); remove prefix=.')
        return True

    def load_pretrained(self, cfg: dict) -> None:
        print_log(f'load model from: {cfg["checkpoint"]} (Google .npz, no pickle)',
                  logger='current')
        self.load(cfg['checkpoint'])
        update_init_info(self.backbone, f'Google ViT .npz: load from {cfg["checkpoint"]}')

    def load(self, path: str) -> dict:
        """Load ``path`` into the backbone (non-strict, through ``load_state_dict``)."""
        npz = load_npz(path)
        host = self.backbone
        stripped = _strip_prefix(npz)[1]
        query = stripped.get(f'Transformer/encoderblock_0/{_MHA}query/kernel')
        blocks = len({m.group(1) for m in map(_BLOCK.match, stripped) if m})
        state, unused = split_google_vit(npz, num_layers=len(host.layers))
        try:
            notes = fit_to_host(state, host, None if query is None else query.shape[1], blocks)
        except ValueError as err:
            raise ValueError(f'{path}: {err}') from None
        if blocks != len(host.layers):  # loads partly: worth more than the report's INFO line
            print_log(f'Google ViT weights: {path} has {blocks} blocks, the backbone '
                      f'{len(host.layers)}; only the first {min(blocks, len(host.layers))} '
                      'load.', logger='current', level=logging.WARNING)
        self.last = dict(path=path, loaded=sorted(state), unused=unused, notes=notes)
        print_log(f'Google ViT weights ({osp.basename(path)}): {len(state)} tensors converted '
                  'to mmpretrain names' + ''.join(f'; {n}' for n in notes)
                  + (f'; not loaded, no counterpart: {_summarise(unused)}' if unused else '')
                  + '.', logger='current')
        # Unused arrays are offered under their own names: the non-strict load skips them and
        # the load report lists them as unexpected keys.
        state.update({k: _tensor(npz[k]) for k in unused})
        host.load_state_dict(state, strict=False)
        return self.last


def load_from_npz(filename: str, map_location=None) -> dict:
    """mmengine checkpoint-loader backend for local ``.npz`` paths: a clear error, no load."""
    raise ValueError(
        f'{filename} is a Google JAX .npz checkpoint, which mmengine\'s checkpoint loader '
        '(load_from, load_checkpoint, other backbones\' Pretrained init) cannot read. Give it to '
        'the mmpretrain VisionTransformer inside vpetl_mm.PETLBackbone as init_cfg=dict('
        "type='Pretrained', checkpoint=...), or convert it once to a .pth: python -c \"import "
        'torch; from vpetl_mm.compat.vit_npz import load_npz, convert_google_vit; torch.save('
        f"{{'state_dict': convert_google_vit(load_npz('{filename}'))}}, '{filename}.pth')\"")


# Local .npz paths only (longer/other schemes such as http:// are matched before this one);
# without it they would reach torch.load and fail with a zip-format RuntimeError.
CheckpointLoader.register_scheme(prefixes=r'(?i)(?!\w+://).*\.npz$', loader=load_from_npz,
                                 force=True)
