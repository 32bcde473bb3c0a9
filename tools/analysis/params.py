"""Count parameters of a config's model without loading weights.

``python tools/analysis/params.py CONFIG [--json] [--cfg-options ...]`` prints the trainable
backbone parameters (head excluded: the published ``Params`` and the PPT input), all trainable
parameters and the total. With ``--json``: ``{"backbone_trainable", "trainable", "total"}``.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

import vpetl_mm  # noqa: E402,F401
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import MODELS, init_default_scope  # noqa: E402

from vpetl_mm.utils import count_params, find_petl_backbone, petl_tree  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description='Count model parameters (vpetl_mm)')
    parser.add_argument('config')
    parser.add_argument('--json', action='store_true', help='print machine-readable JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(cfg.model)  # no init_weights: nothing is loaded or downloaded
    counts = count_params(model)
    if args.json:
        print(json.dumps({k: counts[k] for k in ('backbone_trainable', 'trainable', 'total')}))
        return
    print(f'backbone trainable (head excluded): {counts["backbone_trainable"]:,} '
          f'({counts["backbone_trainable"] / 1e6:.2f}M)')
    print(f'trainable: {counts["trainable"]:,}')
    print(f'total: {counts["total"]:,}')
    wrapper = find_petl_backbone(model)
    if wrapper is not None:
        print(petl_tree(wrapper))


if __name__ == '__main__':
    main()
