"""Benchmark plots from the table rows (:func:`vpetl_mm.benchmark.report.build_table` points),
each saved as PNG and SVG:

* ``<benchmark>_accuracy_vs_params``: the metric against trainable backbone parameters (log x;
  0 parameters on a tick of its own), one labelled point per row;
* ``<benchmark>_ppt``: PPT bars, best first;
* ``<benchmark>_memory_vs_accuracy`` (COCO, VOC, ADE20K): the metric against peak training
  memory.

Examples:
    >>> table, points = build_table(store.records(benchmark='coco'), 'coco')
    >>> make_plots('coco', points, 'work_dirs/report')   # 6 files
"""
import os
import os.path as osp
from typing import List, Sequence

from .render import Point
from .table import MethodResult, _place_labels, plot_accuracy_vs_params

FORMATS = ('png', 'svg')
METRIC_NAMES = dict(vtab='Mean top-1 over the tasks (%)', fgvc='Mean top-1 (%)',
                    video='Top-1 (%)', coco='Box AP (%)', voc='VOC AP50 / mIoU (%)',
                    ade20k='mIoU (%)')
DENSE = ('coco', 'voc', 'ade20k')


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def accuracy_vs_params(points: Sequence[Point], stem: str, title: str,
                       ylabel: str) -> List[str]:
    """The metric against trainable parameters (log x); ``stem`` + ``.png`` / ``.svg``."""
    results = [MethodResult(p.label, top1=p.metric, params=int(round(p.params)))
               for p in points if p.metric is not None and p.params is not None]
    if not results:
        return []
    return [plot_accuracy_vs_params(results, f'{stem}.{ext}', title=title, ylabel=ylabel)
            for ext in FORMATS]


def ppt_bars(points: Sequence[Point], stem: str, title: str) -> List[str]:
    """Horizontal PPT bars, highest on top."""
    shown = sorted((p for p in points if p.ppt is not None), key=lambda p: p.ppt)
    if not shown:
        return []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.35 * len(shown)), dpi=120)
    bars = ax.barh([p.label for p in shown], [p.ppt for p in shown], color='tab:blue')
    for bar, p in zip(bars, shown):
        ax.text(bar.get_width() + 0.005, bar.get_y() + bar.get_height() / 2, f'{p.ppt:.2f}',
                va='center', fontsize=8)
    ax.set_xlim(0, max(1.0, max(p.ppt for p in shown) * 1.12))
    ax.set_xlabel('PPT = M exp(-log10(P / 1e7 + 1))')
    ax.set_title(title)
    ax.grid(True, axis='x', alpha=0.3)
    fig.tight_layout()
    paths = [f'{stem}.{ext}' for ext in FORMATS]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths


def memory_vs_accuracy(points: Sequence[Point], stem: str, title: str,
                       ylabel: str) -> List[str]:
    """The metric against peak training memory (MB), one labelled point per row."""
    shown = [p for p in points if p.metric is not None and p.memory_mb is not None]
    if not shown:
        return []
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    xs, ys = [p.memory_mb for p in shown], [p.metric for p in shown]
    colors = plt.get_cmap('tab10').colors
    for i, (x, y) in enumerate(zip(xs, ys)):
        ax.scatter(x, y, s=60, color=colors[i % len(colors)], zorder=3, edgecolors='black',
                   linewidths=0.5)
    xspan, yspan = max(xs) - min(xs) or max(xs) * 0.1 or 1., max(ys) - min(ys) or 1.
    ax.set_xlim(min(xs) - 0.1 * xspan, max(xs) + 0.45 * xspan)
    ax.set_ylim(min(ys) - 0.2 * yspan - 0.5, max(ys) + 0.2 * yspan + 0.5)
    ax.set_xlabel('Peak training memory (MB)')
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    _place_labels(fig, ax, [p.label for p in shown], xs, ys)
    paths = [f'{stem}.{ext}' for ext in FORMATS]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths


def make_plots(benchmark: str, points: Sequence[Point], out_dir: str) -> List[str]:
    """Every plot of a benchmark into ``out_dir``; returns the files written."""
    os.makedirs(out_dir, exist_ok=True)
    stem = osp.join(out_dir, benchmark)
    ylabel = METRIC_NAMES.get(benchmark, 'Metric (%)')
    name = benchmark.upper() if benchmark in ('vtab', 'fgvc', 'coco', 'voc') else benchmark
    paths = accuracy_vs_params(points, f'{stem}_accuracy_vs_params',
                               f'{name}: {ylabel} vs trainable parameters', ylabel)
    paths += ppt_bars(points, f'{stem}_ppt', f'{name}: PPT')
    if benchmark in DENSE:
        paths += memory_vs_accuracy(points, f'{stem}_memory_vs_accuracy',
                                    f'{name}: {ylabel} vs peak training memory', ylabel)
    return paths
