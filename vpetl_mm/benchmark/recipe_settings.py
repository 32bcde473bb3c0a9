"""Recipe rows keyed by config setting, for the benchmarks outside VTAB-1k / FGVC.

The video and dense benchmarks train every method with one recipe per setting (V-PETL Bench's
one video script; the Mona release's one optimiser and schedule per dense task), so their rows
(:mod:`.recipe_table_video`, :mod:`.recipe_table_dense`) are keyed by the config's file stem
(``videoswin-b_ssv2``, ``swin-l_ade20k``; shell-style patterns allowed) and, for the few
method-specific values (Mona's ADE20K lr), by method folder. :func:`setting_sources` turns the
rows that apply to a config into :class:`~.sources.RecipeSource` entries, which
``tools/analysis/recipe.py`` compares with what the config runs (its ``deviations``).

Examples:
    >>> row = SettingRow('swin-l_*', 'org/repo@abc1234 configs/x.py', dict(lr=1e-4))
    >>> row.applies('mona', 'swin-l_voc'), row.applies('mona', 'swin-b_coco')
    (True, False)
"""
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence, Tuple


@dataclass(frozen=True)
class SettingRow:
    """The recipe of one setting (or one method on it), as its source records it.

    Args:
        setting: Config file stem or shell-style pattern (``'videomae-b_*'``).
        source: ``owner/repo@commit path`` where the values were read (``<method>`` stands for
            the source's per-method file where it has one per method: ``names``).
        values: Recipe keys the recipe tool reads off a config (``optimizer``, ``lr``,
            ``weight_decay``, ``batch_size``, ``max_epochs`` / ``max_iters``,
            ``label_smoothing``, ``augmentation``, ``drop_path_rate``) -> recorded value.
        folders: Method folders the row is for; empty: every method of the setting.
        schedule: The ``param_scheduler`` entries the source implies, each the subset of
            keys that must match (type first), in order.
        note: What else the source does that no key records, and where ours differs.
        names: Method folder -> its name in the source's file names; a folder without one
            (a method the source has no file for) reads ``*``: the shared recipe.

    Examples:
        >>> SettingRow('swin-l_ade20k', 'o/r@abc1234 x.py', folders=('mona', )).folders
        ('mona',)
    """
    setting: str
    source: str
    values: Mapping[str, Any] = field(default_factory=dict)
    folders: Tuple[str, ...] = ()
    schedule: Tuple[Mapping[str, Any], ...] = ()
    note: str = ''
    names: Mapping[str, str] = field(default_factory=dict)

    def applies(self, folder: str, stem: str) -> bool:
        """Whether the row is for ``configs/<folder>/<stem>.py``."""
        return fnmatch.fnmatchcase(stem, self.setting) and (
            not self.folders or folder in self.folders)


def matching_rows(rows: Sequence[SettingRow], folder: str, stem: str) -> Tuple[SettingRow, ...]:
    """The rows for a config, the method's own first (they override the setting's).

    Examples:
        >>> rows = [SettingRow('a_*', 's@abc1234 x'), SettingRow('a_b', 't@abc1234 y', {},
        ...                                                       ('m', ))]
        >>> [r.source for r in matching_rows(rows, 'm', 'a_b')]
        ['t@abc1234 y', 's@abc1234 x']
    """
    found = [row for row in rows if row.applies(folder, stem)]
    return tuple(sorted(found, key=lambda row: not row.folders))


def source_text(row: SettingRow, folder: str) -> str:
    """The row's source with ``<method>`` replaced by the folder's name in it.

    Examples:
        >>> row = SettingRow('*', 'o/r@abc1234 train_<method>.py', names=dict(lora='LoRA'))
        >>> source_text(row, 'lora'), source_text(row, 'dora')
        ('o/r@abc1234 train_LoRA.py', 'o/r@abc1234 train_*.py')
    """
    return row.source.replace('<method>', row.names.get(folder, '*'))
