"""Short previews of state-dict key lists, for log lines and error messages.

One place for the two formats every loader, the load report and the export use: a sorted list
cut after ``limit`` keys (:func:`preview`), and keys grouped by their first component and
counted (:func:`summarise`).
"""
from typing import Dict, Iterable


def preview(keys: Iterable[str], limit: int = 6) -> str:
    """The first ``limit`` keys, sorted, and how many more there are.

    Examples:
        >>> preview({'c', 'a', 'b'}, limit=2)
        'a, b ... (+1 more)'
    """
    keys = sorted(keys)
    more = f' ... (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def summarise(keys: Iterable[str], limit: int = 6, sep: str = '.', strip: str = '') -> str:
    """Keys grouped by their first component (after the prefix ``strip``), counted.

    Args:
        keys: The keys, in the order the groups are listed.
        limit: Groups listed before ``(+N more)``.
        sep: Separator of key components (``'.'`` for torch, ``'/'`` for Google ``.npz``).
        strip: A prefix removed from each key first (e.g. ``'opt/target/'``).

    Examples:
        >>> summarise(['decoder.a', 'decoder.b', 'mask_token'])
        'decoder.* (2), mask_token'
    """
    groups: Dict[str, int] = {}
    for key in keys:
        key = key[len(strip):] if strip and key.startswith(strip) else key
        group = key.split(sep)[0] + (f'{sep}*' if sep in key else '')
        groups[group] = groups.get(group, 0) + 1
    items = [f'{g} ({n})' if n > 1 else g for g, n in groups.items()]
    return ', '.join(items[:limit]) + (f' (+{len(items) - limit} more)' * (len(items) > limit))
