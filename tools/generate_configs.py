"""Write the method x setting config matrices (``configs/<method>/<setting>.py``) from tables.

The tables live in ``vpetl_mm/benchmark/matrices.py``; each generated config inherits a backbone
base and a dataset base from ``configs/_base_/`` and sets only the PETL method, the class count
and the dataset-specific settings, so 25+ methods x many datasets stay consistent.
``tests/test_configs.py`` fails when a committed config differs from what this script writes.

Usage:
    python tools/generate_configs.py            # (re)write every generated config
    python tools/generate_configs.py --check    # list stale or missing files, exit 1 if any
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from vpetl_mm.benchmark.configgen import expected_files, stale_files  # noqa: E402


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true',
                        help='only report stale or missing configs (exit status 1 if any)')
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(ROOT)
        for path in stale:
            print(f'stale or missing: {path}')
        return 1 if stale else 0
    for path, text in expected_files().items():
        full = osp.join(ROOT, path)
        os.makedirs(osp.dirname(full), exist_ok=True)
        with open(full, 'w') as f:
            f.write(text)
    print(f'wrote {len(expected_files())} configs')
    return 0


if __name__ == '__main__':
    sys.exit(main())
