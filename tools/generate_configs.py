"""Write the method x setting config matrices (``configs/<method>/<setting>.py``) from tables.

The variants live in ``vpetl_mm/benchmark/variants.py`` (plus every registered method), the
matrices in ``vpetl_mm/benchmark/matrices.py`` (the backbones after ViT-B/16:
``matrices_foundation.py``), the published figures in
``vpetl_mm/benchmark/published.py``. Written: one setting base per backbone x dataset
(``configs/_base_/<family>/<backbone>_<dataset>.py``: data, classes, loss, lr / wd), one thin
config per variant x setting that inherits it and names the method and its own recipe, one
``configs/<folder>/metafile.yml`` per folder with the published figures, and the digits demo's
config of a method without a hand-written one. ``tests/test_configs.py`` fails when a committed
file differs from what this script writes.

The image recipes follow ``vpetl_mm/benchmark/recipe_table.py``: each method's row is the source
of its published number (its own repository where V-PETL Bench ships no real code for it).
``--recipe vpetl`` writes the other choice, V-PETL Bench's common protocol for every method
(``--check`` then lists those configs as stale; rerun without it to go back).

Usage:
    python tools/generate_configs.py            # (re)write every generated config
    python tools/generate_configs.py --check    # list stale or missing files, exit 1 if any
    python tools/generate_configs.py --recipe vpetl  # V-PETL's protocol for every method
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from vpetl_mm.benchmark.configgen import MARK, META_MARK  # noqa: E402
from vpetl_mm.benchmark.matrices import expected_files, stale_files  # noqa: E402
from vpetl_mm.benchmark.recipe_resolve import CHOICES, recipe_choice  # noqa: E402


def _generated(path: str) -> bool:
    """Whether a file under the repository carries the generator's mark."""
    with open(osp.join(ROOT, path)) as f:
        head = f.read(2000)
    return MARK in head or META_MARK in head


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true',
                        help='only report stale, missing or orphaned files (exit status 1 if any)')
    parser.add_argument('--recipe', choices=CHOICES, default='published',
                        help='image recipes: the source of each published number (default) or '
                        "V-PETL Bench's common protocol for every method")
    args = parser.parse_args(argv)
    with recipe_choice(args.recipe):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.check:
        stale = stale_files(ROOT)
        for path in stale:
            print(f'stale or missing: {path}')
        return 1 if stale else 0
    files = expected_files()
    hand = [p for p in files if osp.isfile(osp.join(ROOT, p)) and not _generated(p)]
    if hand:
        raise SystemExit(f'tools/generate_configs.py: would overwrite hand-written {hand}; '
                         'rename the variant (its folder) in vpetl_mm/benchmark/variants.py '
                         'or mark its demo config as hand-written (demo_config=True).')
    for path, text in files.items():
        full = osp.join(ROOT, path)
        os.makedirs(osp.dirname(full), exist_ok=True)
        with open(full, 'w') as f:
            f.write(text)
    orphans = [p for p in stale_files(ROOT) if p not in files]
    for path in orphans:  # marked as generated, but no table writes it any more
        os.remove(osp.join(ROOT, path))
    print(f'wrote {len(files)} files' + (f', removed {len(orphans)}' if orphans else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
