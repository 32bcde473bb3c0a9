"""Per-key digests of every config under ``configs/``, as mmengine resolves them.

Each config file is loaded with ``mmengine.config.Config.fromfile`` (bases merged, ``{{_base_.x}}``
substituted) and each top-level key of the resolved dict is written as canonical JSON (sorted
keys, tuples kept apart from lists) and hashed: path -> {key: the first 12 hex digits of its
sha256}. ``tests/data/config_digests.json`` (force-added: ``.gitignore`` ignores ``data/``)
holds the digests of the configs as they were before the leaves became thin layers over setting
bases (commit 3d710a9); ``tests/test_configs.py``
checks that every one of those paths still exists and resolves to the same digests, key by key
(so the same model and the same recipe).

Regenerate it only on purpose (a deliberate change of a model or recipe), from the repository
root::

    python tests/config_digests.py --write            # this checkout's configs
    python tests/config_digests.py --root OLD --write # another checkout's (e.g. git archive)
    python tests/config_digests.py --write --keys custom_hooks  # only these keys, the same
                                                     # configs; fails if any other key changed
"""
import argparse
import glob
import hashlib
import json
import os.path as osp
import sys
from typing import Any, Dict, List

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SNAPSHOT = osp.join(ROOT, 'tests', 'data', 'config_digests.json')


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data: dicts sorted by key, tuples tagged (a tuple and a list
    of the same items differ)."""
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, tuple):
        return {'__tuple__': [canonical(v) for v in value]}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {'__repr__': repr(value)}


def config_digests(path: str) -> Dict[str, str]:
    """{top-level key: digest} of one config file, resolved by mmengine."""
    try:
        cfg = Config.fromfile(path, import_custom_modules=False).to_dict()
    except Exception as error:  # a config that does not load is recorded as such
        return {'__error__': type(error).__name__}
    return {key: hashlib.sha256(json.dumps(canonical(value), sort_keys=True).encode())
            .hexdigest()[:12] for key, value in cfg.items()}


def config_paths(root: str) -> List[str]:
    """Every config file under ``<root>/configs``, relative to ``root``, sorted."""
    return sorted(osp.relpath(p, root)
                  for p in glob.glob(osp.join(root, 'configs', '**', '*.py'), recursive=True))


def snapshot(root: str) -> Dict[str, Dict[str, str]]:
    """path (relative to ``root``) -> {key: digest} for every config under ``root``."""
    return {path: config_digests(osp.join(root, path)) for path in config_paths(root)}


def differences(expected: Dict[str, str], actual: Dict[str, str]) -> List[str]:
    """The keys whose digest differs, is missing or is new, as words."""
    out = [f'{k} differs' for k in sorted(set(expected) & set(actual)) if expected[k] != actual[k]]
    out += [f'{k} missing' for k in sorted(set(expected) - set(actual))]
    return out + [f'{k} added' for k in sorted(set(actual) - set(expected))]


def update_keys(snap: Dict[str, Dict[str, str]], root: str,
                keys: List[str]) -> Dict[str, List[str]]:
    """Re-digest the snapshot's configs and take the new digests of ``keys`` only (in place).

    Returns path -> the differences in any OTHER key (empty when only ``keys`` changed): the
    check that a deliberate change of, e.g., the hooks left every model and recipe as it was.
    """
    others = {}
    for path, old in snap.items():
        new = config_digests(osp.join(root, path))
        diff = differences({k: v for k, v in old.items() if k not in keys},
                           {k: v for k, v in new.items() if k not in keys})
        if diff:
            others[path] = diff
        snap[path] = dict({k: v for k, v in old.items() if k not in keys},
                          **{k: v for k, v in new.items() if k in keys})
    return others


def write_snapshot(digests: Dict[str, Dict[str, str]]) -> None:
    with open(SNAPSHOT, 'w') as f:  # one config a line: reviewable diffs
        f.write('{\n' + ',\n'.join(f'{json.dumps(p)}: {json.dumps(d, sort_keys=True)}'
                                    for p, d in sorted(digests.items())) + '\n}\n')


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default=ROOT, help='the checkout whose configs to digest')
    parser.add_argument('--write', action='store_true', help=f'write {SNAPSHOT}')
    parser.add_argument('--keys', nargs='+', metavar='KEY',
                        help="with --write: keep the snapshot's configs and update only these "
                        'top-level keys; fail, writing nothing, if any other key changed')
    args = parser.parse_args(argv)
    if not args.write:
        parser.error('nothing to do: --write rewrites the committed snapshot (on purpose only)')
    if args.keys:
        with open(SNAPSHOT) as f:
            before = json.load(f)
        digests = {path: dict(d) for path, d in before.items()}
        others = update_keys(digests, osp.abspath(args.root), args.keys)
        if others:
            for path, diff in sorted(others.items()):
                print(f'{path}: {", ".join(diff)}')
            print(f'{len(others)} configs changed outside {args.keys}: nothing written')
            return 1
        for key in args.keys:
            count = sum(before[p].get(key) != d.get(key) for p, d in digests.items())
            print(f'{key}: changed in {count} configs')
    else:
        digests = snapshot(osp.abspath(args.root))
    write_snapshot(digests)
    print(f'{len(digests)} configs -> {SNAPSHOT}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
