"""Files several processes may write and read at once (the ranks of a distributed run)."""
import json
import os
from typing import Any


def dump_json_atomic(obj: Any, path: str) -> str:
    """Write ``obj`` as JSON to ``path`` through a per-process temporary file and a rename.

    Every rank of a distributed run writes its hooks' summaries, and a rank may read one while
    another writes it: with the rename a reader sees the old file or the new one, never half.

    Examples:
        >>> dump_json_atomic(dict(iters=10), 'work_dirs/run/efficiency.json')
        'work_dirs/run/efficiency.json'
    """
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)
    return path
