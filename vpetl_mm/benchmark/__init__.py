"""Results tables in the published V-PETL Bench layout, and the accuracy-vs-params plot."""
from .table import (COLUMNS, MethodResult, load_result, load_seeds_result,
                    plot_accuracy_vs_params, to_markdown, to_rows)

__all__ = ['COLUMNS', 'MethodResult', 'load_result', 'load_seeds_result',
           'plot_accuracy_vs_params', 'to_markdown', 'to_rows']
