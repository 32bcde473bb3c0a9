"""Load an exported checkpoint into the *stock* OpenMMLab model, without vpetl_mm.

Run as a script (``python vpetl_mm/apis/stock_check.py CONFIG CHECKPOINT``), this file imports
only torch, mmengine and the host toolbox named by the config, builds the model from the stock
config, loads the checkpoint ``weights_only=True`` with ``strict=True``, optionally runs it on
saved inputs, and fails if ``vpetl_mm`` got imported on the way. ``tools/export.py`` runs it in
a subprocess after a merged export; the tests run it too.

It is also imported by :mod:`vpetl_mm.apis.export` for :func:`build_model` and
:func:`model_outputs`, so the exported and the PETL model are built and run the same way.
Nothing here may import vpetl_mm.
"""
import argparse
import copy
import importlib.util
import json
import os.path as osp
import sys
from typing import Any, List, Optional

import torch


def _install_mmaction_shim() -> None:
    """mmaction2 1.2.0's wheel lacks ``mmaction.models.localizers.drn``, so ``import
    mmaction.models`` fails in this environment with or without vpetl_mm. Load vpetl_mm's
    stand-alone placeholder *by file* (it imports only the standard library), which keeps
    the ``vpetl_mm`` package out of ``sys.modules``."""
    path = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'compat', 'mmaction.py')
    spec = importlib.util.spec_from_file_location('_stock_check_drn_shim', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.install_mmaction_drn_shim()


def build_model(cfg) -> torch.nn.Module:
    """Build ``cfg.model`` as ``mmengine.runner.Runner`` does (custom imports, default scope,
    the top-level ``data_preprocessor``).

    The default scope is set only while building (not left behind as ``init_default_scope``
    would), so a caller's later builds resolve in their own scope.
    """
    from mmengine.registry import MODELS, DefaultScope
    from mmengine.utils import import_modules_from_strings
    if cfg.get('default_scope', None) == 'mmaction' and 'vpetl_mm' not in sys.modules:
        _install_mmaction_shim()
    if cfg.get('custom_imports', None):
        import_modules_from_strings(**cfg.custom_imports)
    model_cfg = copy.deepcopy(cfg.model)
    preprocessor = cfg.get('data_preprocessor', None)
    if preprocessor is not None and isinstance(model_cfg, dict):
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(preprocessor))
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        return MODELS.build(model_cfg)


def tensors(output: Any) -> List[torch.Tensor]:
    """Every tensor of a (nested) model output, in a fixed order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        return [t for key in sorted(output) for t in tensors(output[key])]
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in tensors(item)]
    return []


@torch.no_grad()
def model_outputs(model: torch.nn.Module, inputs: torch.Tensor) -> List[torch.Tensor]:
    """The network's outputs on already-preprocessed ``inputs`` (eval mode, no data
    preprocessor).

    * classifiers (mmpretrain) and segmentors (mmseg): ``mode='tensor'`` (logits);
    * recognizers (mmaction2): the head's scores (``extract_feat(stage='head')``);
    * detectors (mmdet): the neck's features and the dense head's raw outputs (RPN or
      one-stage head). Proposal sampling and NMS are left out: they are discrete functions of
      these outputs that float rounding could reorder, not weights.
    """
    model.eval()
    module = type(model).__module__
    if module.startswith('mmdet.'):
        feats = model.extract_feat(inputs)
        head = getattr(model, 'rpn_head', None) or getattr(model, 'bbox_head', None)
        return tensors(feats) + (tensors(head(feats)) if head is not None else [])
    if module.startswith('mmaction.'):
        scores, _ = model.extract_feat(inputs, stage='head')  # cls_head(neck(backbone))
        return tensors(scores)
    return tensors(model(inputs, mode='tensor'))


def compare(reference: List[torch.Tensor], outputs: List[torch.Tensor]) -> float:
    """Max absolute difference; raises ``AssertionError`` unless the outputs match
    (same shapes, ``allclose`` with a tolerance relative to the output scale)."""
    if len(reference) != len(outputs):
        raise AssertionError(f'{len(outputs)} output tensors, expected {len(reference)}.')
    worst = 0.
    for i, (a, b) in enumerate(zip(reference, outputs)):
        if a.shape != b.shape:
            raise AssertionError(f'output {i}: shape {tuple(b.shape)}, expected {tuple(a.shape)}')
        a, b = a.double(), b.double()
        diff = float((a - b).abs().max()) if a.numel() else 0.
        scale = float(a.abs().max()) if a.numel() else 0.
        if not torch.allclose(a, b, rtol=1e-4, atol=1e-5 * max(1., scale)):
            raise AssertionError(f'output {i} differs: max |diff| {diff:.3g} (max |value| '
                                 f'{scale:.3g}).')
        worst = max(worst, diff)
    return worst


def check(config: str, checkpoint: str, inputs: Optional[str] = None,
          outputs: Optional[str] = None) -> dict:
    """Build the stock model, load ``checkpoint`` strictly, optionally run it on ``inputs``."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    model = build_model(cfg)
    if checkpoint.endswith('.safetensors'):  # tools/export.py --format safetensors
        from safetensors.torch import load_file
        state = load_file(checkpoint)
    else:
        state = torch.load(checkpoint, map_location='cpu', weights_only=True)
        state = state.get('state_dict', state)
    model.load_state_dict(state, strict=True)  # raises on any missing / unexpected key
    report = dict(model=type(model).__name__, keys=len(state),
                  backbone=type(getattr(model, 'backbone', model)).__name__)
    if inputs is not None:
        result = model_outputs(model, torch.load(inputs, weights_only=True))
        if outputs is not None:
            torch.save(result, outputs)
        report['outputs'] = [list(t.shape) for t in result]
    report['vpetl_mm_imported'] = sorted(m for m in sys.modules if m.split('.')[0] == 'vpetl_mm')
    if report['vpetl_mm_imported']:
        raise RuntimeError(f'vpetl_mm was imported while building the stock model: '
                           f'{report["vpetl_mm_imported"][:5]}; the stock config still needs it.')
    return report


def main() -> None:
    # Run as a script, this file's folder (vpetl_mm/apis) is sys.path[0]: drop it, so no module
    # of the package can shadow a top-level one.
    if sys.path and osp.abspath(sys.path[0] or '.') == osp.dirname(osp.abspath(__file__)):
        sys.path.pop(0)
    parser = argparse.ArgumentParser(description='Load an exported checkpoint into the stock '
                                     'OpenMMLab model (strict, without vpetl_mm)')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--inputs', help='a torch file with an input batch to run')
    parser.add_argument('--outputs', help='save the output tensors here')
    parser.add_argument('--report', help='write the JSON report here')
    args = parser.parse_args()
    report = check(args.config, args.checkpoint, args.inputs, args.outputs)
    text = json.dumps(report, indent=2)
    if args.report:
        with open(args.report, 'w') as f:
            f.write(text)
    print(text)


if __name__ == '__main__':
    main()
