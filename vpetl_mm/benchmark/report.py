"""Benchmark tables from the results store, in the layouts of the published V-PETL Bench tables.

:func:`build_table` turns the store's records of one benchmark into a :class:`Table`:

* ``vtab``: one column per VTAB-1k task (published order and abbreviations), the Natural /
  Specialized / Structured group means, the VTAB-1k mean both ways -- ``Mean (19 tasks)``, the
  plain mean of the 19 (V-PETL Bench's, as published; PPT uses it) and ``Mean (groups)``, the
  mean of the three group means (the PETL papers') --, Params, PPT and the published mean;
* ``fgvc``: the five FGVC datasets, mean, Params, PPT, published mean;
* ``video``: per backbone, top-1 and PPT on SSv2 / HMDB51 (/ K400), published top-1;
* ``coco``: Params, memory, box AP / PPT, mask AP / PPT, published box / mask AP;
* ``voc`` / ``ade20k``: Params, memory, AP50 or mIoU, PPT, published figure.

Every cell is the mean ± sample standard deviation (n - 1) over the seeds; a mean over the
datasets gets its std from the per-seed means when every seed has every dataset. Rows are
(method, backbone, protocol); the protocol is named under the table (and is a column when the
table mixes protocols). Rendered as Markdown, CSV (mean and std in two columns) or LaTeX
(booktabs).

Examples:
    >>> table, points = build_table(ResultStore('results.db').records(benchmark='vtab'), 'vtab')
    >>> print(render(table, 'md'))
"""
import statistics
from collections import OrderedDict, defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..datasets import FGVC_DATASETS, VTAB_DATASETS, VTAB_GROUPS
from ..evaluation import ppt as ppt_score
from . import published as pub
from .record import to_percent
# the renderers are part of the report API (tools/report.py: build_table, then render)
from .render import (Column, Point, Stat, Table, render, to_csv, to_latex,  # noqa: F401
                     to_markdown)
from .variants import published_names

BENCHMARKS = ('vtab', 'fgvc', 'video', 'coco', 'voc', 'ade20k')
VTAB_SHORT = ('C100', 'Cal', 'DTD', 'Flw', 'Pet', 'SVHN', 'Sun', 'PCam', 'Euro', 'Res', 'Ret',
              'Cnt', 'Dist', 'DMLab', 'KITTI', 'dLoc', 'dOri', 'Azi', 'Ele')
FGVC_SHORT = ('CUB-200-2011', 'NABirds', 'Oxford Flowers', 'Stanford Dogs', 'Stanford Cars')
VIDEO_COLUMNS = OrderedDict(ssv2='SSv2', hmdb51='HMDB51', k400='K400')
# published set-up of each dense benchmark: (backbone, dataset key) of the matching configs
DENSE_SETUP = dict(coco=('swin-b', 'cascade-coco'), voc=('swin-l', 'voc'),
                   ade20k=('swin-l', 'ade20k'))


def display_name(method: str) -> str:
    """A method folder's name in the tables (its published name, :mod:`.variants`).

    Examples:
        >>> display_name('linear'), display_name('no-such-folder')
        ('Linear probing', 'no-such-folder')
    """
    return published_names().get(method, method)


def _order(names: Sequence[str]) -> List[str]:
    """Published order (the variants table's), then alphabetical."""
    rank = {n: i for i, n in enumerate(dict.fromkeys(published_names().values()))}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def _rows(records: Sequence[dict], by_dataset: bool = False) -> Dict[tuple, List[dict]]:
    """Records grouped into rows: (name, backbone, protocol[, dataset]) in published order."""
    groups: Dict[tuple, List[dict]] = defaultdict(list)
    for r in records:
        key = (display_name(r.get('method') or '?'), r.get('backbone') or '?', r['protocol'])
        groups[key + ((r.get('dataset') or '?', ) if by_dataset else ())].append(r)
    order = {n: i for i, n in enumerate(_order({k[0] for k in groups}))}
    return OrderedDict(sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1:])))


def _params(records: Sequence[dict]) -> Optional[float]:
    values = [r['params'] for r in records if r.get('params') is not None]
    return statistics.fmean(values) if values else None


def _ppt(metric_pct: Optional[float], params: Optional[float]) -> Optional[float]:
    if metric_pct is None or params is None or not 0 <= metric_pct <= 100:
        return None
    return ppt_score(metric_pct / 100., int(round(params)))


def _seed_std(cells: Dict[str, Dict[int, float]], datasets: Sequence[str],
              value: Callable[[Callable[[str], float]], float]) -> Tuple[Optional[float], int]:
    """Std over the seeds of ``value`` (a mean over ``datasets`` of one seed's numbers) and the
    seed count, if every seed has every dataset; else (None, 1)."""
    seeds = set.intersection(*(set(cells[k]) for k in datasets))
    if len(seeds) < 2 or any(set(cells[k]) != seeds for k in datasets):
        return None, 1
    return statistics.stdev([value(lambda k, s=s: cells[k][s]) for s in seeds]), len(seeds)


def _mean_over(cells: Dict[str, Dict[int, float]], keys: Sequence[str],
               expected: int) -> Optional[Stat]:
    """Mean over datasets ``keys`` of their seed means; std over per-seed means if every seed
    has every dataset; ``partial`` when fewer than ``expected`` datasets are present."""
    present = [k for k in keys if k in cells]
    if not present:
        return None

    def over(get: Callable[[str], float]) -> float:
        return statistics.fmean(get(k) for k in present)

    std, n = _seed_std(cells, present, over)
    return Stat(over(lambda k: statistics.fmean(cells[k].values())), std, n,
                len(present) < expected)


def _mean_of_groups(cells: Dict[str, Dict[int, float]],
                    group_keys: Sequence[Sequence[str]]) -> Optional[Stat]:
    """Mean of the group means (each over its datasets present), std as :func:`_mean_over`;
    ``partial`` when a group misses a dataset (or all of them)."""
    present = [[k for k in keys if k in cells] for keys in group_keys]
    partial = any(len(p) < len(keys) for p, keys in zip(present, group_keys))
    present = [p for p in present if p]
    if not present:
        return None

    def over(get: Callable[[str], float]) -> float:
        return statistics.fmean(statistics.fmean(get(k) for k in p) for p in present)

    std, n = _seed_std(cells, [k for p in present for k in p], over)
    return Stat(over(lambda k: statistics.fmean(cells[k].values())), std, n, partial)


def _notes(records: Sequence[dict], source: Optional[str], partial: bool) -> List[str]:
    labels = sorted({r.get('protocol_label') or r['protocol'] for r in records})
    counts = sorted({len(v) for v in _seed_counts(records).values()})
    n = f'{counts[0]}' if len(counts) == 1 else f'{counts[0]}-{counts[-1]}'
    notes = ['Protocol: ' + '; '.join(labels) + '.',
             f'Cells: mean ± sample std over seeds (n = {n} per cell).',
             'Params: trainable backbone parameters (head excluded), millions; PPT from the mean '
             'and Params.']
    if partial:
        notes.append('*: mean over the datasets present only (some are missing).')
    if source:
        notes.append(f'Published: {source}.')
    return notes


def _seed_counts(records: Sequence[dict]) -> Dict[tuple, set]:
    counts: Dict[tuple, set] = defaultdict(set)
    for r in records:
        counts[(r['config'], r['protocol'])].add(r['seed'])
    return counts


def _cells(records: Sequence[dict], metric: Optional[str] = None) -> Dict[str, Dict[int, float]]:
    """dataset -> seed -> metric in percent (the record's primary metric, or ``metric``)."""
    cells: Dict[str, Dict[int, float]] = defaultdict(dict)
    for r in records:
        if metric is None and r.get('value_pct') is not None:
            cells[r.get('dataset') or '?'][r['seed']] = float(r['value_pct'])
        elif metric is not None and metric in (r.get('metrics') or {}):
            cells[r.get('dataset') or '?'][r['seed']] = to_percent(metric, r['metrics'][metric])
    return cells


def per_dataset_table(records: Sequence[dict], benchmark: str, known: Sequence[str],
                      short: Sequence[str], groups: Optional[Dict[str, str]],
                      published: Dict[str, dict], title: str) -> Tuple[Table, List[Point]]:
    """The VTAB / FGVC layout (and the fallback for other image benchmarks)."""
    extras = sorted({r.get('dataset') or '?' for r in records} - set(known))
    rows = _rows(records)
    protocols = {k[2] for k in rows}
    group_names = list(OrderedDict.fromkeys(groups.values())) if groups else []
    columns = [Column('Method', 'text')] + [Column('Backbone', 'text')] * (
        len({k[1] for k in rows}) > 1) + [Column('Protocol', 'text')] * (len(protocols) > 1)
    columns += [Column(s) for s in short] + [Column(e) for e in extras]
    columns += [Column(g.capitalize()) for g in group_names]
    # with groups (VTAB-1k) the mean both ways: the plain one (V-PETL Bench's, the published
    # column's and the PPT's) and the mean of the group means (most PETL papers')
    columns += [Column(f'Mean ({len(known)} tasks)'), Column('Mean (groups)')] if groups \
        else [Column('Mean')]
    columns += [Column('Params (M)', 'params'), Column('PPT', 'num', 2),
                Column('Published mean', 'num', 2), Column('Seeds', 'text')]
    table, points, partial = Table(title, columns), [], False
    for (name, backbone, protocol), runs in rows.items():
        cells = _cells(runs)
        row: list = [name] + [backbone] * (len({k[1] for k in rows}) > 1)
        row += [protocol] * (len(protocols) > 1)
        row += [Stat.of(cells[k].values()) if k in cells else None for k in list(known) + extras]
        group_keys = [[k for k in known if groups[k] == g] for g in group_names]
        row += [_mean_over(cells, keys, len(keys)) for keys in group_keys]
        mean = _mean_over(cells, list(known) + extras, len(known))
        row += [mean] + ([_mean_of_groups(cells, group_keys)] if groups else [])
        params = _params(runs)
        score = _ppt(mean.mean if mean else None, params)
        entry = published.get(name) if backbone == 'vit-b' else None
        row += [params / 1e6 if params is not None else None, score,
                entry['mean'] if entry else None,
                ','.join(str(s) for s in sorted({r['seed'] for r in runs}))]
        partial |= any(isinstance(c, Stat) and c.partial for c in row)
        table.rows.append(row)
        points.append(Point(name if len(protocols) == 1 else f'{name} ({protocol})', params,
                            mean.mean if mean else None, score))
    table.notes = _notes(records, pub.SOURCES.get(benchmark), partial)
    if groups:
        table.notes.insert(3, f'Mean ({len(known)} tasks): the plain mean over the tasks, as '
                              'V-PETL Bench reports it (the Published mean and the PPT use it); '
                              'Mean (groups): the mean of the ' + ' / '.join(
                                  g.capitalize() for g in group_names) + ' means, as the PETL '
                              'papers (VPT, NOAH, ...) report it.')
    if benchmark == 'vtab':  # methods published outside V-PETL Bench, on their own protocols
        later = [pub.later_note(n) for n in dict.fromkeys(k[0] for k in rows)]
        table.notes += ['Published elsewhere: ' + line for line in later if line]
    return table, points


def video_table(records: Sequence[dict]) -> Tuple[Table, List[Point]]:
    datasets = [d for d in VIDEO_COLUMNS if any(r.get('dataset') == d for r in records)]
    datasets += sorted({r.get('dataset') or '?' for r in records} - set(VIDEO_COLUMNS))
    rows = _rows(records)
    mixed = len({k[2] for k in rows}) > 1
    columns = [Column('Method', 'text'), Column('Backbone', 'text')]
    columns += [Column('Protocol', 'text')] * mixed + [Column('Params (M)', 'params')]
    for d in datasets:
        title = VIDEO_COLUMNS.get(d, d)
        columns += [Column(f'{title} top-1'), Column(f'{title} PPT', 'num', 2)]
    columns += [Column(f'Published {VIDEO_COLUMNS.get(d, d)}', 'num', 2) for d in datasets]
    table, points = Table('Video: top-1 (%)', columns), []
    for (name, backbone, protocol), runs in rows.items():
        cells, params = _cells(runs), _params(runs)
        row: list = [name, backbone] + [protocol] * mixed
        row.append(params / 1e6 if params is not None else None)
        for d in datasets:
            stat = Stat.of(cells[d].values()) if d in cells else None
            row += [stat, _ppt(stat.mean if stat else None, params)]
            if stat:
                points.append(Point(f'{name} / {backbone} / {d}', params, stat.mean, row[-1]))
        entry = pub.VIDEO.get((name, backbone))
        row += [entry[1].get(d) if entry else None for d in datasets]
        table.rows.append(row)
    table.notes = _notes(records, pub.SOURCES['video'], False)
    return table, points


def dense_table(records: Sequence[dict], benchmark: str) -> Tuple[Table, List[Point]]:
    """COCO (box and mask AP), VOC (AP50 or mIoU) or ADE20K (mIoU): one row per method and
    setting (dataset key), with the peak training memory."""
    metrics = [('coco/bbox_mAP', 'box AP', 'box'), ('coco/segm_mAP', 'mask AP', 'mask')] \
        if benchmark == 'coco' else [(None, dict(voc='VOC (%)', ade20k='mIoU (%)')[benchmark],
                                      benchmark)]
    rows = _rows(records, by_dataset=True)
    mixed = len({k[2] for k in rows}) > 1
    settings = len({k[3] for k in rows}) > 1 or len({k[1] for k in rows}) > 1
    columns = [Column('Method', 'text')] + [Column('Setting', 'text')] * settings
    columns += [Column('Protocol', 'text')] * mixed
    columns += [Column('Params (M)', 'params'), Column('Memory (MB)', 'stat', 0)]
    for _, title, _ in metrics:
        columns += [Column(title), Column(f'{title.split(" (")[0]} PPT', 'num', 2)]
    columns += [Column(f'Published {title}', 'num', 2) for _, title, _ in metrics]
    table = Table({'coco': 'COCO', 'voc': 'Pascal VOC', 'ade20k': 'ADE20K'}[benchmark], columns)
    points: List[Point] = []
    table_pub = pub.COCO if benchmark == 'coco' else pub.VOC_ADE20K
    for (name, backbone, protocol, dataset), runs in rows.items():
        params = _params(runs)
        memory = [r['peak_mem_mb'] for r in runs if r.get('peak_mem_mb') is not None]
        row: list = [name] + [f'{backbone}_{dataset}'] * settings + [protocol] * mixed
        row += [params / 1e6 if params is not None else None,
                Stat.of(memory) if memory else None]
        stats = []
        for metric, _, _ in metrics:
            cells = _cells(runs, metric)
            stats.append(Stat.of(cells[dataset].values()) if dataset in cells else None)
            row += [stats[-1], _ppt(stats[-1].mean if stats[-1] else None, params)]
        if stats[0] is not None:  # the plots show the first metric (box AP on COCO)
            points.append(Point(name + (f' ({backbone}_{dataset})' if settings else ''),
                                params, stats[0].mean, _ppt(stats[0].mean, params),
                                statistics.fmean(memory) if memory else None))
        entry = table_pub.get(name) if (backbone, dataset) == DENSE_SETUP[benchmark] else None
        row += [entry[key] if entry else None for _, _, key in metrics]
        table.rows.append(row)
    table.notes = _notes(records, pub.SOURCES[benchmark], False)
    table.notes.insert(2, 'Memory: peak training memory per run (CUDA max allocated; process '
                          'peak RSS on CPU), MB.')
    if benchmark != 'coco':  # VOC holds detection (AP50) and segmentation (mIoU) settings
        used = sorted({f"{r.get('backbone')}_{r.get('dataset')}: {r.get('metric')}"
                       for r in records})
        table.notes.insert(0, 'Metric: ' + '; '.join(used) + '.')
    return table, points


def build_table(records: Sequence[dict], benchmark: str) -> Tuple[Table, List[Point]]:
    """The table of one benchmark from its ``done`` records, and the plot points."""
    records = [r for r in records if r.get('status', 'done') == 'done']
    if not records:
        raise ValueError(f'No finished run of benchmark {benchmark!r} in the store; run '
                         'tools/benchmark.py first (or check --benchmark).')
    if benchmark == 'vtab':
        return per_dataset_table(records, 'vtab', list(VTAB_DATASETS), VTAB_SHORT, VTAB_GROUPS,
                                 pub.VTAB, 'VTAB-1k: top-1 (%)')
    if benchmark == 'fgvc':
        return per_dataset_table(records, 'fgvc', list(FGVC_DATASETS), FGVC_SHORT, None,
                                 pub.FGVC, 'FGVC: top-1 (%)')
    if benchmark == 'video':
        return video_table(records)
    if benchmark in DENSE_SETUP:
        return dense_table(records, benchmark)
    return per_dataset_table(records, benchmark, [], [], None, {}, f'{benchmark}: metric (%)')
