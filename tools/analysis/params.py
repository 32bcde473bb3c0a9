"""Count parameters of one or more configs' models without loading weights.

``python tools/analysis/params.py CONFIG [CONFIG ...] [--json] [--cfg-options ...]`` prints the
trainable backbone parameters (head excluded: the published ``Params`` and the PPT input), all
trainable parameters and the total. With ``--json`` and one config:
``{"backbone_trainable", "trainable", "total"}``. With several configs, each is built on its own
(its own default scope, errors caught) and ``--json`` prints one line per config, in order, with
a ``"config"`` key added and, for a config that fails, ``"error"`` and ``"traceback"`` instead
of the counts; the exit status is 1 if any failed. One process for many configs saves the
~3 s import of the OpenMMLab stack per config (``tests/test_configs.py`` uses this).
"""
import argparse
import gc
import json
import os.path as osp
import sys
import traceback

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

import vpetl_mm  # noqa: E402,F401
from mmengine.config import DictAction  # noqa: E402

from vpetl_mm.apis.shapes import build_model_shapes, load_config  # noqa: E402
from vpetl_mm.utils import count_params, find_petl_backbone, petl_tree  # noqa: E402

def build_counts(path: str, cfg_options=None, tree: bool = False) -> dict:
    """Build ``path``'s model in its own default scope (no weights) and count its parameters."""
    model = build_model_shapes(load_config(path, cfg_options))
    counts = {k: v for k, v in count_params(model).items() if k != 'groups'}
    if tree:
        wrapper = find_petl_backbone(model)
        counts['tree'] = petl_tree(wrapper) if wrapper is not None else None
    return counts


def print_text(counts: dict) -> None:
    print(f'backbone trainable (head excluded): {counts["backbone_trainable"]:,} '
          f'({counts["backbone_trainable"] / 1e6:.2f}M)')
    print(f'trainable: {counts["trainable"]:,}')
    print(f'total: {counts["total"]:,}')
    if counts.get('tree'):
        print(counts['tree'])


def main() -> None:
    parser = argparse.ArgumentParser(description='Count model parameters (vpetl_mm)')
    parser.add_argument('config', nargs='+', help='one or more config files')
    parser.add_argument('--json', action='store_true', help='print machine-readable JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    if len(args.config) == 1:  # errors propagate with their full traceback
        counts = build_counts(args.config[0], args.cfg_options, tree=not args.json)
        if args.json:
            print(json.dumps(counts))
        else:
            print_text(counts)
        return
    failed = 0
    for path in args.config:
        try:
            result = dict(config=path, **build_counts(path, args.cfg_options,
                                                       tree=not args.json))
        except Exception as exc:  # noqa: BLE001 -- report it and go on to the next config
            failed += 1
            result = dict(config=path, error=f'{type(exc).__name__}: {exc}',
                          traceback=traceback.format_exc()[-3000:])
        gc.collect()  # the previous model (hundreds of MB for Swin-L) before the next build
        if args.json:
            print(json.dumps(result), flush=True)
        elif 'error' in result:
            print(f'== {path}\nFAILED: {result["error"]}', flush=True)
        else:
            print(f'== {path}')
            print_text(result)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
