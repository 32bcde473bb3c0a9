"""Print the training recipe a config really runs (vpetl_mm/apis/recipe.py).

``python tools/analysis/recipe.py CONFIG [--json] [--no-build] [--cfg-options ...]``: the
recipe after inheritance and the optimizer constructor -- per parameter group the tensors,
parameters, lr and weight decay (the model is built on CPU, shapes only, no weights loaded),
batch size, epochs / iterations, schedule, warm-up, label smoothing, augmentation, drop path,
normalisation, head init, protocol and the recorded source of the recipe. Works on every
config under ``configs/``: the image benchmark (ViT-B/16 and the foundation backbones), PACE's
wrapped models, video, dense, examples, demo, benchmark configs and the runnable ``_base_``
settings; a ``_base_`` fragment that is no runnable config gets a one-line refusal (exit 2).
``--json`` prints
one JSON object (keys include ``groups``, ``batch_size``, ``max_epochs``, ``label_smoothing``,
``augmentation``, ``source``); ``--no-build`` skips the model (``groups`` is null).
"""
import argparse
import contextlib
import json
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from mmengine.config import DictAction  # noqa: E402

from vpetl_mm.apis.recipe import config_recipe, format_recipe  # noqa: E402
from vpetl_mm.apis.recipe_sources import NotRunnableConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description='The recipe a config runs (vpetl_mm)')
    parser.add_argument('config', help='a config file')
    parser.add_argument('--json', action='store_true', help='print machine-readable JSON')
    parser.add_argument('--no-build', action='store_true',
                        help='skip the model and optimizer build (no parameter groups)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    if not osp.isfile(args.config):
        raise SystemExit(f'tools/analysis/recipe.py: {args.config} not found; pass a config '
                         'file, e.g. configs/lora/vit-b_vtab-cifar100.py.')
    # the OpenMMLab log lines (registry warnings, the constructor's summary) go to stderr, so
    # that stdout holds only the recipe (one JSON object with --json)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            recipe = config_recipe(args.config, args.cfg_options, build=not args.no_build)
    except NotRunnableConfig as err:
        print(f'tools/analysis/recipe.py: {err}', file=sys.stderr)
        raise SystemExit(2)
    print(json.dumps(recipe, default=str) if args.json else format_recipe(recipe))


if __name__ == '__main__':
    main()
