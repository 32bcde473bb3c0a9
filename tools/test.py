"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] ...``.

Adapter-only checkpoints work: the frozen backbone is first initialised from the config's
pretrained ``init_cfg`` (PETLCheckpointHook), then the trained tensors are loaded. Any
checkpoint OpenMMLab writes loads weights-only (stock mmengine ones included), as does a
``.safetensors`` file; a file that is not a checkpoint, is truncated, or belongs to another
model ends the run with one line that names the file, the problem and the fix.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.config import Config  # noqa: E402

from vpetl_mm.apis import add_common_args, build_runner, hook_name, load_config  # noqa: E402
from vpetl_mm.compat import CheckpointError  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model (vpetl_mm)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the evaluation metrics to this JSON file')
    add_common_args(parser)
    return parser.parse_args()


def strict_checkpoint_hook(cfg: Config) -> Config:
    """Make PETLCheckpointHook refuse a checkpoint of another model (mm only warns)."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    ours = [h for h in hooks if hook_name(h) == 'PETLCheckpointHook']
    for hook in ours:
        hook['strict_load'] = True
    if not ours:
        hooks.append(dict(type='vpetl_mm.PETLCheckpointHook', strict_load=True))
    cfg.custom_hooks = hooks
    return cfg


def main() -> None:
    args = parse_args()
    cfg = strict_checkpoint_hook(load_config(args.config, args, load_from=args.checkpoint))
    try:
        metrics = build_runner(cfg).test()
    except (CheckpointError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}') from None
    if args.out:
        with open(args.out, 'w') as f:
            json.dump({k: float(v) if isinstance(v, (int, float)) else str(v)
                       for k, v in metrics.items()}, f, indent=2)


if __name__ == '__main__':
    main()
