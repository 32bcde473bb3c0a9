"""Build, render and plot a results table in the published V-PETL Bench layout.

One row per method: ``Method | Top-1 | Params | PPT | Peak memory (MB) | Time / iter (ms)``.
``Params`` are the trainable backbone parameters with the head excluded (the published
convention and the PPT input). A row is usually read from one run's work dir with
:func:`load_result`: ``petl_report.json`` (PETLReportHook), ``efficiency.json``
(EfficiencyHook) and the metrics JSON that ``tools/test.py --out`` writes.

Examples:
    >>> rows = [MethodResult('LoRA', top1=91.5, params=4096),
    ...         MethodResult('Linear probe', top1=80.0, params=0)]
    >>> print(to_markdown(rows, params_unit='raw'))
    | Method       | Top-1 (%) | Params |    PPT | Peak memory (MB) | Time / iter (ms) |
    |:-------------|----------:|-------:|-------:|-----------------:|-----------------:|
    | LoRA         |     91.50 |  4,096 | 0.9148 |                - |                - |
    | Linear probe |     80.00 |      0 | 0.8000 |                - |                - |
"""
import json
import math
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from ..evaluation import ppt as ppt_score

COLUMNS = ('Method', 'Top-1 (%)', 'Params', 'PPT', 'Peak memory (MB)', 'Time / iter (ms)')
_PARAM_UNITS = {'M': 1e6, 'K': 1e3, 'raw': 1.}


@dataclass
class MethodResult:
    """One method's numbers.

    Attributes:
        method: Display name.
        top1: Top-1 accuracy in percent.
        params: Trainable backbone parameters, head excluded (raw count).
        ppt: PPT score; computed from ``top1`` and ``params`` when None.
        peak_mem_mb: Peak memory during training (CUDA peak allocated, or process peak RSS on
            CPU), in MB.
        time_per_iter_ms: Median training time per iteration in ms.
        top1_std: Standard deviation of ``top1`` over seeds (``top1`` is then their mean);
            shown as ``mean ± std``.
        protocol: The protocol label of the numbers (``protocol_record.json``'s ``label``);
            :func:`to_markdown` names it under the table.
    """
    method: str
    top1: float
    params: int
    ppt: Optional[float] = None
    peak_mem_mb: Optional[float] = None
    time_per_iter_ms: Optional[float] = None
    top1_std: Optional[float] = None
    protocol: Optional[str] = None

    def __post_init__(self) -> None:
        if self.ppt is None:
            self.ppt = ppt_score(self.top1 / 100., self.params)


def _read_json(path: str) -> Dict:
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found: did the run finish (train with the vpetl_mm '
                                'hooks, test with tools/test.py --out)?')
    with open(path) as f:
        return json.load(f)


def load_result(method: str, work_dir: str, metrics_file: Optional[str] = None,
                metric: str = 'accuracy/top1') -> MethodResult:
    """Read one run's row from its work dir.

    Args:
        method: Display name of the row.
        work_dir: The training work dir (holds ``petl_report.json`` and ``efficiency.json``).
        metrics_file: JSON written by ``tools/test.py --out``; defaults to
            ``<work_dir>/test_metrics.json``.
        metric: Key of the top-1 metric in percent (mmpretrain's ``Accuracy``).
    """
    report = _read_json(osp.join(work_dir, 'petl_report.json'))
    eff = _read_json(osp.join(work_dir, 'efficiency.json'))
    metrics = _read_json(metrics_file or osp.join(work_dir, 'test_metrics.json'))
    if metric not in metrics:
        raise KeyError(f'{metric!r} not in {metrics_file}: found {sorted(metrics)}.')
    top1, params = float(metrics[metric]), int(report['backbone_trainable'])
    ppt = metrics.get(f'{metric}_ppt')  # written by PPTHook; recomputed if absent
    return MethodResult(method=method, top1=top1, params=params,
                        ppt=float(ppt) if ppt is not None else None,
                        peak_mem_mb=float(eff['peak_mem_mb']),
                        time_per_iter_ms=1e3 * float(eff['time_per_iter_s']))


def load_seeds_result(method: str, summary_file: str, params: int) -> MethodResult:
    """A row from ``tools/train.py --seeds`` (``protocol_summary.json``): mean ± std of top-1.

    Args:
        method: Display name of the row.
        summary_file: The ``protocol_summary.json`` of the run.
        params: Trainable backbone parameters (``tools/analysis/params.py``).
    """
    summary = _read_json(summary_file)
    return MethodResult(method=method, top1=float(summary['mean']), params=int(params),
                        top1_std=float(summary['std']), protocol=summary['label'])


def _fmt(value: Optional[float], digits: int) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


def _fmt_params(params: int, unit: str) -> str:
    if unit == 'raw':
        return f'{params:,}'
    value = params / _PARAM_UNITS[unit]
    # published tables print 2 decimals; keep 2 significant digits for very small counts
    return f'{value:.2f}' if value == 0 or value >= 0.01 else f'{value:.2g}'


def to_rows(results: Sequence[MethodResult], params_unit: str = 'M') -> List[List[str]]:
    """The table as rows of strings, header first, in the order given."""
    if params_unit not in _PARAM_UNITS:
        raise ValueError(f'params_unit must be one of {sorted(_PARAM_UNITS)}, got '
                         f'{params_unit!r}.')
    header = list(COLUMNS)
    header[2] = 'Params' if params_unit == 'raw' else f'Params ({params_unit})'
    rows = [header]
    for r in results:
        top1 = _fmt(r.top1, 2) + ('' if r.top1_std is None else f' ± {r.top1_std:.2f}')
        rows.append([r.method, top1, _fmt_params(r.params, params_unit),
                     _fmt(r.ppt, 4), _fmt(r.peak_mem_mb, 0), _fmt(r.time_per_iter_ms, 1)])
    return rows


def to_markdown(results: Sequence[MethodResult], params_unit: str = 'M') -> str:
    """Render the table as GitHub Markdown (text left, numbers right aligned)."""
    rows = to_rows(results, params_unit)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: Sequence[str]) -> str:
        out = [c.ljust(w) if i == 0 else c.rjust(w)
               for i, (c, w) in enumerate(zip(cells, widths))]
        return '| ' + ' | '.join(out) + ' |'

    sep = '|' + '|'.join([':' + '-' * (widths[0] + 1)] +
                         ['-' * (w + 1) + ':' for w in widths[1:]]) + '|'
    table = '\n'.join([line(rows[0]), sep] + [line(r) for r in rows[1:]])
    protocols = sorted({r.protocol for r in results if r.protocol})
    if protocols:  # numbers of different protocols are not comparable: say which is which
        table += '\n\nProtocol: ' + '; '.join(protocols) + '.'
    return table


def plot_accuracy_vs_params(results: Sequence[MethodResult], path: str,
                            title: str = 'Top-1 vs trainable backbone parameters',
                            ylabel: str = 'Top-1 accuracy (%)') -> str:
    """Save a plot (PNG, SVG ...: the extension of ``path``) of top-1 against trainable
    backbone parameters (log x), one labelled point per method. Methods with 0 trainable
    backbone parameters (linear probing) are drawn at a floor below the smallest non-zero count,
    on an axis tick labelled ``0``. ``ylabel`` names the metric (``top1`` holds it, in percent).

    Returns:
        ``path``.
    """
    import matplotlib
    import matplotlib.ticker
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError('plot_accuracy_vs_params needs at least one result.')
    nonzero = [r.params for r in results if r.params > 0] or [1]
    floor = 10 ** (math.floor(math.log10(min(nonzero))) - 1)
    xs = [r.params if r.params > 0 else floor for r in results]
    ys = [r.top1 for r in results]

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    colors = plt.get_cmap('tab10').colors
    for i, (x, y) in enumerate(zip(xs, ys)):
        ax.scatter(x, y, s=60, color=colors[i % len(colors)], zorder=3,
                   edgecolors='black', linewidths=0.5)
    ax.set_xscale('log')
    lo, hi = min(xs), max(xs)
    ax.set_xlim(lo / 2.5, hi * 6)  # room for the labels of the rightmost point
    span = max(ys) - min(ys)
    ax.set_ylim(min(ys) - max(2., 0.15 * span), max(ys) + max(2., 0.15 * span))
    if any(r.params == 0 for r in results):
        ticks = [t for t in ax.get_xticks() if lo < t <= hi * 6]
        ax.set_xticks([floor] + ticks)
        ax.set_xticklabels(['0'] + [f'$10^{{{int(round(math.log10(t)))}}}$' for t in ticks])
        ax.axvline(floor * 2.2, color='grey', lw=0.8, ls=':')
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel('Trainable backbone parameters (head excluded, log scale)')
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which='major', alpha=0.3)
    fig.tight_layout()  # before placing labels: their overlap test uses final positions
    _place_labels(fig, ax, [r.method for r in results], xs, ys)
    fig.savefig(path)
    plt.close(fig)
    return path


# label offsets (points) tried in order: right-above, right-below, left-above, left-below, ...
_OFFSETS = ((7, 5, 'left'), (7, -13, 'left'), (-7, 5, 'right'), (-7, -13, 'right'),
            (7, 15, 'left'), (7, -23, 'left'))


def _place_labels(fig, ax, labels: Sequence[str], xs: Sequence[float],
                  ys: Sequence[float]) -> None:
    """Annotate each point, trying offsets until its label overlaps no earlier label and no
    marker."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    half = 6.  # marker half-size in pixels (s=60 at dpi 120)
    placed = [Bbox.from_extents(px - half, py - half, px + half, py + half)
              for px, py in ax.transData.transform(list(zip(xs, ys)))]
    for label, x, y in zip(labels, xs, ys):
        for dx, dy, ha in _OFFSETS:
            text = ax.annotate(label, (x, y), textcoords='offset points', xytext=(dx, dy),
                               ha=ha, fontsize=9)
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(other) for other in placed):
                break
            text.remove()
        else:  # every offset collides: keep the first one
            text = ax.annotate(label, (x, y), textcoords='offset points',
                               xytext=_OFFSETS[0][:2], ha='left', fontsize=9)
            box = text.get_window_extent(renderer)
        placed.append(box)
