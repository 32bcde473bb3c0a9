"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] ...``.

Adapter-only checkpoints work: the frozen backbone is first initialised from the config's
pretrained ``init_cfg`` (PETLCheckpointHook), then the trained tensors are loaded.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from vpetl_mm.apis import add_common_args, build_runner, load_config  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model (vpetl_mm)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the evaluation metrics to this JSON file')
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args, load_from=args.checkpoint)
    metrics = build_runner(cfg).test()
    if args.out:
        with open(args.out, 'w') as f:
            json.dump({k: float(v) if isinstance(v, (int, float)) else str(v)
                       for k, v in metrics.items()}, f, indent=2)


if __name__ == '__main__':
    main()
