"""Per-iteration peak memory and throughput in the training log, and a run summary."""
import os.path as osp
import resource
import statistics
import time
from typing import List, Optional

import torch
from mmengine.hooks import Hook

from ..registry import HOOKS
from ..utils import dump_json_atomic


def peak_memory_mb() -> float:
    """Peak memory in MB: CUDA peak allocated if a GPU is used, else the process peak RSS."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.  # Linux: KiB


@HOOKS.register_module()
class EfficiencyHook(Hook):
    """Log ``peak_mem_mb`` and ``throughput`` (samples/s) every iteration; save a summary.

    On GPU the peak is ``torch.cuda.max_memory_allocated`` with the statistics reset when
    training starts (so it covers training steps only, as the benchmark protocol asks). On CPU
    it is the process's peak resident set size, which includes the framework's own memory.
    ``<work_dir>/efficiency.json`` gets the median time per iteration (first ``warmup``
    iterations excluded), throughput and the peak.

    Args:
        warmup: Iterations excluded from the summary timing.

    Examples:
        >>> custom_hooks = [dict(type='vpetl_mm.EfficiencyHook', warmup=5)]
    """
    priority = 'LOW'

    def __init__(self, warmup: int = 5) -> None:
        self.warmup = warmup
        self.times: List[float] = []
        self.samples = 0
        self._t0: Optional[float] = None

    def before_train(self, runner) -> None:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.reset_peak_memory_stats()

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._sync()
        self._t0 = time.perf_counter()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._sync()
        elapsed = time.perf_counter() - self._t0
        batch = _batch_size(data_batch)
        self.times.append(elapsed)
        self.samples = batch
        runner.message_hub.update_scalar('train/peak_mem_mb', peak_memory_mb())
        runner.message_hub.update_scalar('train/throughput', batch / max(elapsed, 1e-9))

    def after_train(self, runner) -> None:
        times = self.times[self.warmup:] or self.times
        if not times:
            return
        median = statistics.median(times)
        summary = dict(iters=len(self.times), time_per_iter_s=median, batch_size=self.samples,
                       throughput=self.samples / median, peak_mem_mb=peak_memory_mb(),
                       device='cuda' if torch.cuda.is_available() else 'cpu',
                       memory_kind='cuda_max_allocated' if torch.cuda.is_available()
                       else 'process_peak_rss')
        dump_json_atomic(summary, osp.join(runner.work_dir, 'efficiency.json'))

    @staticmethod
    def _sync() -> None:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()


def _batch_size(data_batch) -> int:
    if isinstance(data_batch, dict):
        inputs = data_batch.get('inputs')
        if isinstance(inputs, (list, tuple)):
            return len(inputs)
        if isinstance(inputs, torch.Tensor):
            return inputs.shape[0]
    if isinstance(data_batch, (list, tuple)):
        return len(data_batch)
    return 1
