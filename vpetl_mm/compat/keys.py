"""State-dict keys: short previews for log lines and error messages, and renaming.

One place for the two formats every loader, the load report and the export use: a sorted list
cut after ``limit`` keys (:func:`preview`), and keys grouped by their first component and
counted (:func:`summarise`); and the two steps every layout converter takes: regex renames
(:func:`rename_keys`) of the entries a pre-hook sees under its prefix (:func:`replace_prefixed`).
"""
import re
from typing import Any, Callable, Dict, Iterable, Sequence, Tuple


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


def rename_keys(state: Dict[str, Any], renames: Sequence[Tuple[str, str]]) -> Dict[str, Any]:
    """``state`` with each key renamed by the first ``(regex, replacement)`` of ``renames``
    that matches it (keys no rule matches are kept).

    Examples:
        >>> rename_keys({'blocks.0.norm1.weight': w},
        ...             [(r'^blocks\.(\d+)\.norm1\.', r'layers.\1.ln1.')])
        {'layers.0.ln1.weight': w}
    """
    out = {}
    for key, value in state.items():
        for pattern, repl in renames:
            key, n = re.subn(pattern, repl, key)
            if n:
                break
        out[key] = value
    return out


def replace_prefixed(state_dict: dict, prefix: str,
                     convert: Callable[[Dict[str, Any]], Dict[str, Any]]) -> None:
    """In a ``load_state_dict`` pre-hook: replace the entries under ``prefix`` (the hooked
    module's) with ``convert`` of them, named without the prefix.

    Examples:
        >>> replace_prefixed(state_dict, prefix, convert_dinov2)
    """
    keys = [k for k in state_dict if k.startswith(prefix)]
    converted = convert({k[len(prefix):]: state_dict.pop(k) for k in keys})
    state_dict.update({prefix + k: v for k, v in converted.items()})

