"""Export a trained PETL model (``tools/export.py``).

Where every method of the ``PETLBackbone`` folds into the host weights (LoRA, SSF, RepAdapter,
Hydra, FacT, GPS, and the methods that only train host parameters: BitFit, LNTune, Partial,
Full, Frozen), the methods are merged and the wrapper is stripped: the result is a plain
checkpoint whose keys are exactly those of the stock OpenMMLab model, and a stock config that
builds that model without vpetl_mm. Otherwise (Adapter, VPT, side networks, PrefixTuning, ...)
the export is the adapter-only checkpoint and the full config that rebuilds the model with
vpetl_mm, with a manifest that says why it could not be merged.

Examples:
    >>> from vpetl_mm.apis import export_model
    >>> result = export_model('configs/lora/vit-b_vtab-cifar100.py', 'work/epoch_100.pth',
    ...                       'exported/')  # exported/vit-b_vtab-cifar100.{py,pth,json}
    >>> result.mode
    'merged'
"""
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
from mmengine.config import Config

from ..compat import encode_checkpoint, write_safetensors
from ..compat.keys import preview
from ..methods.base import BasePETLMethod
from ..utils import find_petl_backbone, merge_and_unload
from ..version import __version__
from .export_config import _get, _has_pretrained, find_petl_path, stock_config  # noqa: F401
from .peft_format import export_peft, import_peft
from .petl_checkpoint import load_petl_checkpoint, module_prefix, read_checkpoint  # noqa: F401
from .stock_check import build_model, compare, model_outputs

_STOCK_CHECK = osp.join(osp.dirname(osp.abspath(__file__)), 'stock_check.py')
#: ``tools/export.py --format``: the checkpoint file type, or peft's adapter folder
FORMATS = ('pth', 'safetensors', 'peft')


@dataclass
class ExportResult:
    """What :func:`export_model` wrote.

    Attributes:
        mode: ``'merged'`` (stock checkpoint + stock config), ``'adapter_only'`` (trainable
            PETL tensors, buffers, neck and head + the vpetl_mm config) or ``'full'`` (all
            tensors + the vpetl_mm config, when the config cannot restore the frozen weights).
        checkpoint: Path of the written checkpoint.
        config: Path of the written config.
        manifest: Path of the JSON manifest (its content is :attr:`info`).
        info: The manifest.
    """
    mode: str
    checkpoint: str
    config: str
    manifest: str
    info: Dict[str, Any] = field(default_factory=dict)


# -- export --------------------------------------------------------------------------------------
def folding_plan(wrapper) -> List[Dict[str, Any]]:
    """Per method, for the manifest: whether it folds into the host weights, and why (not).

    Whether the export merges is :meth:`~vpetl_mm.models.PETLBackbone.unfoldable`'s call (the
    same ``folds_into_host()`` of each method); this only explains it.

    Examples:
        >>> [p['why'] for p in folding_plan(model.backbone)]  # petl=dict(type='LoRA')
        ['merged into the host weights']
    """
    plan = []
    for method in wrapper.methods:
        folds = method.folds_into_host()
        if folds:
            why = ('merged into the host weights' if method.MERGEABLE else
                   'trains host parameters only: the host weights are the model')
        elif method.MERGEABLE:
            why = ('merge() keeps state outside the host weights (e.g. the folded prefixes of '
                   'PrefixTuning, which only vpetl_mm\'s patched attention reads)')
        elif method.DETACHES_BACKBONE or (
                type(method).transform_output is not BasePETLMethod.transform_output):
            why = 'a side network: its modules run next to the backbone at inference'
        else:
            kinds = sorted({type(inj.module).__name__ for inj in method.injected})
            why = (f'not mergeable: its injected modules ({", ".join(kinds) or "hooks"}) run at '
                   'inference and have no counterpart in the stock backbone')
        plan.append(dict(method=method.name, config=repr(method), mergeable=method.MERGEABLE,
                         folds_into_host=folds, why=why))
    return plan


def _plain(obj: Any) -> Any:
    """Plain Python (weights-only loadable, readable without vpetl_mm) copy of meta data."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def _run_stock_check(config: str, checkpoint: str, inputs: Optional[torch.Tensor],
                     reference: Optional[List[torch.Tensor]]) -> Dict[str, Any]:
    """Load the export into the stock model in a fresh interpreter without vpetl_mm."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, _STOCK_CHECK, config, checkpoint,
                '--report', osp.join(tmp, 'report.json')]
        if inputs is not None:
            torch.save(inputs, osp.join(tmp, 'inputs.pt'))
            args += ['--inputs', osp.join(tmp, 'inputs.pt'), '--outputs', osp.join(tmp, 'out.pt')]
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode:
            raise RuntimeError(f'The stock model (without vpetl_mm) did not load the export '
                               f'strictly:\n{proc.stdout[-4000:]}')
        with open(osp.join(tmp, 'report.json')) as f:
            report = json.load(f)
        if reference is not None:
            report['max_abs_diff'] = compare(
                reference, torch.load(osp.join(tmp, 'out.pt'), weights_only=True))
    return report


def _save(checkpoint: dict, path: str, encode: bool = True) -> None:
    """``torch.save`` (``encode``: vpetl_mm's weights-only meta encoding), or a
    ``.safetensors`` file (tensors without pickle, ``meta`` as JSON metadata)."""
    if path.endswith('.safetensors'):
        write_safetensors(checkpoint, path)
    else:
        torch.save(encode_checkpoint(checkpoint) if encode else checkpoint, path)


def _files(out_dir: str, name: str, fmt: str) -> Dict[str, str]:
    """The output paths (key ``'pth'``: the checkpoint, ``.pth`` or ``.safetensors``)."""
    if fmt not in FORMATS:
        raise ValueError(f'Unknown export format {fmt!r}; choose one of {FORMATS}.')
    os.makedirs(out_dir, exist_ok=True)
    exts = dict(pth='pth' if fmt == 'pth' else 'safetensors', py='py', json='json')
    return {key: osp.join(out_dir, f'{name}.{ext}') for key, ext in exts.items()}


def _write_config(cfg: Config, path: str, header: Sequence[str]) -> None:
    with open(path, 'w') as f:
        f.write(''.join(f'# {line}\n' for line in header) + cfg.pretty_text)


def _frozen_match_init(cfg: Config, state: Dict[str, torch.Tensor], frozen: Set[str]) -> bool:
    """Whether the config's pretrained init reproduces the frozen tensors of ``state``."""
    fresh = build_model(cfg)
    fresh.init_weights()
    reference = fresh.state_dict()
    return all(k in reference and torch.equal(reference[k], state[k]) for k in frozen)


def _export_config(config: str, cfg_options: Optional[dict]) -> Tuple[Config, Tuple]:
    """The training config (overrides merged) and the key path of its one PETLBackbone."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'Config {config!r} does not exist.')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    paths = find_petl_path(cfg.get('model'))
    if not paths:
        raise ValueError(f'{config!r} has no vpetl_mm.PETLBackbone in `model`: there is no PETL '
                         'method to merge or export. A stock config\'s checkpoints are stock '
                         'already.')
    if len(paths) > 1:
        raise ValueError(f'{config!r} has {len(paths)} PETLBackbones ({paths}); export handles '
                         'one.')
    return cfg, paths[0]


def _export_merged(cfg: Config, petl_path: Tuple, model: torch.nn.Module,
                   ctx: Dict[str, Any]) -> Dict[str, Any]:
    """Fold the methods into the host, write the stock checkpoint and config; manifest part."""
    files, meta = ctx['files'], ctx['meta']
    # The stock model's state: the methods folded, every PETL module and the wrapper gone.
    state = {k: v.detach().clone() for k, v in merge_and_unload(model).state_dict().items()}
    stock_cfg, notes = stock_config(cfg, petl_path)
    stock = build_model(stock_cfg)
    keys = set(stock.state_dict())
    if keys != set(state):
        raise RuntimeError(f'Merged keys differ from the stock model\'s: extra '
                           f'{preview(set(state) - keys)}; missing '
                           f'{preview(keys - set(state))}.')
    stock.load_state_dict(state, strict=True)
    _save(dict(state_dict=state, meta=dict(meta, merged=True)), files['pth'], encode=False)
    _write_config(stock_cfg, files['py'], (
        f'Stock model config exported by vpetl_mm tools/export.py from {ctx["config"]}',
        f'({", ".join(meta["methods"])} merged into the backbone). It needs no vpetl_mm;',
        f'load it with {osp.basename(files["pth"])}.'))
    info = dict(mode='merged', stock_config_changes=notes, tensors=len(state),
                usage=('Stock OpenMMLab model, no vpetl_mm: build it from the config and '
                       'load the checkpoint (e.g. the toolbox\'s tools/test.py '
                       f'{files["py"]} {files["pth"]}).'))
    if ctx['stock_check']:
        info['stock_check'] = _run_stock_check(files['py'], files['pth'], ctx['inputs'],
                                               ctx['reference'])
    elif ctx['reference'] is not None:
        info['max_abs_diff'] = compare(ctx['reference'], model_outputs(stock, ctx['inputs']))
    return info


def _restorable(cfg: Config, petl_path: Tuple, state: Dict[str, torch.Tensor],
                frozen: Set[str], adapter_only: bool) -> Tuple[bool, str]:
    """Whether the config's Pretrained init restores the frozen tensors, and why (not)."""
    host = _get(cfg.model, petl_path)['backbone']
    if adapter_only:
        return True, 'the source checkpoint was adapter-only'
    if not _has_pretrained(host.get('init_cfg')):
        return False, ('the host backbone has no Pretrained init_cfg that restores the frozen '
                       'weights')
    if _frozen_match_init(cfg, state, frozen):
        return True, 'the frozen weights equal the pretrained init_cfg file'
    return False, 'the frozen weights of the checkpoint differ from the pretrained init_cfg file'


def _export_petl(cfg: Config, petl_path: Tuple, model: torch.nn.Module, wrapper,
                 ctx: Dict[str, Any]) -> Dict[str, Any]:
    """Write the adapter-only (or full) checkpoint and the vpetl_mm config; manifest part."""
    files, meta = ctx['files'], ctx['meta']
    state = model.state_dict()
    frozen = {module_prefix(model, wrapper) + n for n in wrapper.frozen_param_names()}
    restorable, why = _restorable(cfg, petl_path, state, frozen, ctx['adapter_only'])
    mode = 'adapter_only' if restorable else 'full'
    kept = {k: v for k, v in state.items() if not (restorable and k in frozen)}
    petl_meta = dict(adapter_only=restorable, dropped_frozen=len(state) - len(kept),
                     methods=meta['methods'], profile=wrapper.profile.name)
    _save(dict(state_dict=kept, meta=dict(meta, petl=petl_meta)), files['pth'])
    _write_config(cfg, files['py'], (
        f'vpetl_mm config exported by tools/export.py from {ctx["config"]}: rebuild the PETL '
        'model',
        f'with vpetl_mm and load {osp.basename(files["pth"])} ({mode}).'))
    reasons = [f'{p["method"]}: {p["why"]}' for p in ctx['plan'] if not p['folds_into_host']]
    info = dict(mode=mode, tensors=len(kept), frozen_left_out=len(state) - len(kept),
                why_not_merged=reasons or ['merging was turned off (--no-merge)'],
                why_this_form=why,
                usage=('Rebuild with vpetl_mm: tools/test.py '
                       f'{files["py"]} {files["pth"]}' + (
                           ' (the frozen weights come from the backbone\'s Pretrained '
                           'init_cfg, which must be available)' if restorable else '')))
    if ctx['reference'] is not None:
        rebuilt = build_model(Config.fromfile(files['py']))
        load_petl_checkpoint(rebuilt, files['pth'])
        info['max_abs_diff'] = compare(ctx['reference'], model_outputs(rebuilt, ctx['inputs']))
    return info


def _manifest(config: str, checkpoint: str, wrapper, plan: List[Dict[str, Any]],
              load: Dict[str, Any], files: Dict[str, str]) -> Tuple[dict, Dict[str, Any]]:
    """The checkpoint's ``meta`` and the manifest's common part (methods, source, files)."""
    meta = dict(exported_by=f'vpetl_mm {__version__} tools/export.py',
                source_config=osp.abspath(config), source_checkpoint=osp.abspath(checkpoint),
                methods=[p['config'] for p in plan], profile=wrapper.profile.name)
    if load['meta'].get('dataset_meta'):
        meta['dataset_meta'] = _plain(load['meta']['dataset_meta'])
    info: Dict[str, Any] = dict(methods=plan, profile=wrapper.profile.name,
                                source=dict(config=meta['source_config'],
                                            checkpoint=meta['source_checkpoint'],
                                            adapter_only=load['adapter_only']),
                                files=dict(checkpoint=files['pth'], config=files['py']))
    return meta, info


def export_model(config: str, checkpoint: str, out_dir: str, name: Optional[str] = None,
                 cfg_options: Optional[dict] = None, merge: bool = True,
                 verify_shape: Optional[Sequence[int]] = None,
                 stock_check: bool = True, fmt: str = 'pth') -> ExportResult:
    """Export ``checkpoint`` of the PETL model of ``config`` to ``out_dir/<name>.{pth,py,json}``.

    Args:
        config: The training config (with ``vpetl_mm.PETLBackbone``).
        checkpoint: A checkpoint of it, full or adapter-only.
        out_dir: Output folder (created).
        name: File stem; default: the config's.
        cfg_options: Overrides merged into the config (as ``--cfg-options``).
        merge: Fold mergeable methods into a stock model; ``False`` always writes the
            adapter-only form (to continue training with vpetl_mm).
        verify_shape: An input shape, e.g. ``(1, 3, 224, 224)``: the export is run on a random
            input of this shape and must match the PETL model's outputs (stock model in a
            subprocess for merged exports; the rebuilt vpetl_mm model otherwise).
        stock_check: For merged exports, load the result into the stock model in a subprocess
            without vpetl_mm (strict), as the stock toolbox would.
        fmt: ``'pth'``; ``'safetensors'`` (the same export as ``<name>.safetensors``, no
            pickle); ``'peft'`` (``adapter_config.json`` + ``adapter_model.safetensors`` that
            ``peft.PeftModel.from_pretrained`` loads: LoRA / Peft on a timm host, see
            :mod:`.peft_format`).

    Returns:
        :class:`ExportResult`.

    Examples:
        >>> export_model('configs/lora/vit-b_vtab-cifar100.py', 'work/epoch_100.pth',
        ...              'exported/', verify_shape=(1, 3, 224, 224)).mode
        'merged'
    """
    cfg, petl_path = _export_config(config, cfg_options)
    source = read_checkpoint(checkpoint)  # a missing / unsafe file fails before the build
    name = name or osp.splitext(osp.basename(config))[0]
    files = _files(out_dir, name, fmt)

    model = build_model(cfg)
    wrapper = find_petl_backbone(model)
    load = load_petl_checkpoint(model, checkpoint, source)
    del source
    model.eval()
    if fmt == 'peft':
        return _write_result(export_peft(model, out_dir), files['json'])
    plan = folding_plan(wrapper)
    inputs = reference = None
    if verify_shape:
        inputs = torch.randn(*verify_shape, generator=torch.Generator().manual_seed(0))
        reference = model_outputs(model, inputs)
    meta, info = _manifest(config, checkpoint, wrapper, plan, load, files)
    ctx = dict(config=config, files=files, meta=meta, plan=plan, inputs=inputs,
               reference=reference, stock_check=stock_check, adapter_only=load['adapter_only'])
    if merge and not wrapper.unfoldable():
        info.update(_export_merged(cfg, petl_path, model, ctx))
    else:
        info.update(_export_petl(cfg, petl_path, model, wrapper, ctx))
    info['load'] = dict(adapter_only=load['adapter_only'], tensors=load['loaded'],
                        restored_from_init=load['restored_from_init'])
    return _write_result(info, files['json'], files['pth'], files['py'])


def _write_result(info: Dict[str, Any], manifest: str, checkpoint: str = '',
                  config: str = '') -> ExportResult:
    """Write the manifest; a peft export's checkpoint and config are its two files."""
    with open(manifest, 'w') as f:
        json.dump(info, f, indent=2)
    if info['mode'] == 'peft':
        config, checkpoint = info['files']
    return ExportResult(info['mode'], checkpoint, config, manifest, info)


def import_from_peft(config: str, peft_dir: str, out_dir: str, name: Optional[str] = None,
                     cfg_options: Optional[dict] = None, fmt: str = 'pth') -> ExportResult:
    """Import the peft adapter in ``peft_dir`` into the model of ``config``: writes its
    adapter-only checkpoint (``.pth`` / ``.safetensors``), config and manifest to ``out_dir``.

    The host's frozen weights come from the config's Pretrained init (as for any adapter-only
    checkpoint); the manifest's ``peft.max_abs_diff`` compares the model with
    ``PeftModel.from_pretrained`` on those weights.

    Examples:
        >>> import_from_peft('configs/my_timm_lora.py', 'hub/vit-lora', 'imported/').mode
        'adapter_only'
    """
    cfg, petl_path = _export_config(config, cfg_options)
    name = name or osp.splitext(osp.basename(config))[0]
    files = _files(out_dir, name, 'pth' if fmt == 'peft' else fmt)
    model = build_model(cfg)
    model.init_weights()  # the Pretrained init: the weights the adapter was trained on
    model.eval()
    wrapper = find_petl_backbone(model)
    peft_info = import_peft(model, peft_dir)
    plan = folding_plan(wrapper)
    meta = dict(exported_by=f'vpetl_mm {__version__} tools/export.py --from-peft',
                source_config=osp.abspath(config), source_peft=osp.abspath(peft_dir),
                methods=[p['config'] for p in plan], profile=wrapper.profile.name)
    ctx = dict(config=config, files=files, meta=meta, plan=plan, inputs=None, reference=None,
               stock_check=False, adapter_only=True)
    info: Dict[str, Any] = dict(methods=plan, profile=wrapper.profile.name, peft=peft_info,
                                source=dict(config=meta['source_config'], peft=meta['source_peft']))
    info.update(_export_petl(cfg, petl_path, model, wrapper, ctx))
    info['why_not_merged'] = ['imported from peft: written in the adapter-only form']
    return _write_result(info, files['json'], files['pth'], files['py'])
