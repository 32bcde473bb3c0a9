"""The benchmark tables' data model and renderers: Markdown, CSV and LaTeX (booktabs).

:mod:`.report` builds a :class:`Table` from the results store; :func:`render` writes it.

Examples:
    >>> table = Table('VTAB-1k', [Column('Method', 'text'), Column('Mean')],
    ...               rows=[['LoRA', Stat.of([72.1, 72.5])]])
    >>> print(render(table, 'md'))
"""
import csv
import io
import statistics
from dataclasses import dataclass, field
from typing import List, Optional, Sequence


@dataclass
class Stat:
    """A mean over runs, its sample std (None for one run) and the number of runs."""
    mean: float
    std: Optional[float] = None
    n: int = 1
    partial: bool = False  # a mean over only some of the datasets it should cover

    @classmethod
    def of(cls, values: Sequence[float], partial: bool = False) -> 'Stat':
        values = list(values)
        std = statistics.stdev(values) if len(values) > 1 else None
        return cls(statistics.fmean(values), std, len(values), partial)


@dataclass
class Column:
    name: str
    kind: str = 'stat'  # 'text', 'stat' (mean ± std), 'num', 'params' (millions)
    digits: int = 2


@dataclass
class Table:
    title: str
    columns: List[Column]
    rows: List[list] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


@dataclass
class Point:
    """One row's summary, for the plots."""
    label: str
    params: Optional[float]
    metric: Optional[float]  # percent
    ppt: Optional[float]
    memory_mb: Optional[float] = None


def _text(value, column: Column, latex: bool = False) -> str:
    if value is None:
        return '-'
    if isinstance(value, Stat):
        pm = r' $\pm$ ' if latex else ' ± '
        out = f'{value.mean:.{column.digits}f}'
        if value.std is not None:
            out += f'{pm}{value.std:.{column.digits}f}'
        return out + (('$^*$' if latex else '*') if value.partial else '')
    if column.kind == 'params':  # 2 decimals, as published; 2 digits for tiny counts
        return f'{value:.2f}' if value == 0 or value >= 0.01 else f'{value:.2g}'
    if isinstance(value, float) or (column.kind == 'num' and isinstance(value, int)):
        return f'{value:.{column.digits}f}'
    return str(value)


def to_markdown(table: Table) -> str:
    cells = [[c.name for c in table.columns]] + [
        [_text(v, c) for v, c in zip(row, table.columns)] for row in table.rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(table.columns))]
    right = [c.kind != 'text' for c in table.columns]

    def line(row):
        return '| ' + ' | '.join(v.rjust(w) if r else v.ljust(w)
                                 for v, w, r in zip(row, widths, right)) + ' |'

    sep = '|' + '|'.join(('-' * (w + 1) + ':') if r else (':' + '-' * (w + 1))
                         for w, r in zip(widths, right)) + '|'
    lines = [f'### {table.title}', '', line(cells[0]), sep] + [line(r) for r in cells[1:]]
    return '\n'.join(lines + [''] + table.notes) + '\n'


def to_csv(table: Table) -> str:
    """One header row; a ``stat`` column becomes ``<name>`` and ``<name> std``; the notes
    follow as ``#`` lines (``pandas.read_csv(..., comment='#')``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    header = []
    for c in table.columns:
        header += [c.name, f'{c.name} std'] if c.kind == 'stat' else [c.name]
    writer.writerow(header)
    for row in table.rows:
        values = []
        for v, c in zip(row, table.columns):
            if c.kind == 'stat':
                values += ['' if v is None else round(v.mean, 4),
                           '' if v is None or v.std is None else round(v.std, 4)]
            else:
                values.append('' if v is None else (round(v, 6) if isinstance(v, float) else v))
        writer.writerow(values)
    for note in table.notes:
        out.write(f'# {note}\n')
    return out.getvalue()


def _tex(text: str) -> str:
    for a, b in (('\\', r'\textbackslash{}'), ('&', r'\&'), ('%', r'\%'), ('_', r'\_'),
                 ('#', r'\#'), ('±', r'$\pm$'), ('*', r'$^*$')):
        text = text.replace(a, b)
    return text


def to_latex(table: Table) -> str:
    """A booktabs ``table`` with the notes in the caption."""
    spec = ''.join('l' if c.kind == 'text' else 'r' for c in table.columns)
    lines = [r'\begin{table}[t]', r'\centering', r'\resizebox{\linewidth}{!}{%',
             rf'\begin{{tabular}}{{{spec}}}', r'\toprule',
             ' & '.join(_tex(c.name) for c in table.columns) + r' \\', r'\midrule']
    for row in table.rows:
        cells = [_text(v, c, latex=True) if isinstance(v, Stat) else _tex(_text(v, c))
                 for v, c in zip(row, table.columns)]
        lines.append(' & '.join(cells) + r' \\')
    lines += [r'\bottomrule', r'\end{tabular}}',
              rf'\caption{{{_tex(table.title)}. ' + _tex(' '.join(table.notes)) + '}',
              r'\end{table}']
    return '\n'.join(lines) + '\n'


def render(table: Table, fmt: str) -> str:
    """``fmt``: ``'md'``, ``'csv'`` or ``'latex'``."""
    renderers = dict(md=to_markdown, csv=to_csv, latex=to_latex)
    if fmt not in renderers:
        raise ValueError(f'format must be one of {sorted(renderers)}, got {fmt!r}.')
    return renderers[fmt](table)
