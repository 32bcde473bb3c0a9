"""Record every validation and test metric of a run (the protocols of :mod:`vpetl_mm.apis`)."""
import json
from typing import Dict, List, Optional

from mmengine.hooks import Hook

from ..registry import HOOKS


def jsonable(value: object) -> object:
    """``json.dump(default=...)`` for metric values: numbers (numpy, tensors) as floats."""
    return float(value) if hasattr(value, '__float__') else str(value)


@HOOKS.register_module()
class MetricRecorderHook(Hook):
    """Keeps every validation and test metric dict of a run, in order (``self.records``).

    Args:
        path: Also append each record to this JSON-lines file, so that a resumed stage keeps
            the evaluations it made before the interruption.

    Examples:
        >>> recorder = MetricRecorderHook('work_dirs/run/stage_metrics.jsonl')
        >>> runner.register_hook(recorder)
        >>> runner.train()
        >>> recorder.records[-1]['accuracy/top1']
    """
    priority = 'VERY_LOW'

    def __init__(self, path: Optional[str] = None) -> None:
        self.records: List[dict] = []
        self.path = path  # a JSON-lines copy, so a resumed stage keeps its earlier evaluations

    def _add(self, record: dict) -> None:
        self.records.append(record)
        if self.path:
            with open(self.path, 'a') as f:
                f.write(json.dumps(record, default=jsonable) + '\n')

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self._add(dict(mode='val', epoch=runner.epoch, **(metrics or {})))

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self._add(dict(mode='test', epoch=runner.epoch, **(metrics or {})))
