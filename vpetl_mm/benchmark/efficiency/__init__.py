"""Efficiency benchmark: training time, peak memory and inference cost of each PETL variant.

``tools/analysis/efficiency.py`` is the command line; this package holds what its worker
processes measure (:mod:`.measure`), the synthetic batches (:mod:`.synthetic`), the peer LoRA
variants (:mod:`.peers`), the compiled twins (:mod:`.compiled`), ATen call counts
(:mod:`.opcount`) and the ratios, targets and tables (:mod:`.report`).
"""
from .compiled import COMPILE_SUFFIX, compile_train_step, split_compiled
from .measure import (accounted_memory, build_cfg, measure_infer, measure_interleaved,
                      measure_train, parse_variant)
from .peers import PEERS
from .report import (TARGETS, add_ratios, check_targets, infer_markdown, interleaved_markdown,
                     machine, markdown, train_markdown)
from .synthetic import synthetic_batch

__all__ = [
    'COMPILE_SUFFIX', 'PEERS', 'TARGETS', 'compile_train_step', 'split_compiled', 'accounted_memory', 'add_ratios', 'build_cfg', 'check_targets',
    'infer_markdown', 'interleaved_markdown', 'machine', 'markdown', 'measure_infer',
    'measure_interleaved', 'measure_train', 'parse_variant', 'synthetic_batch', 'train_markdown'
]
