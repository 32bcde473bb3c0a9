"""Report PPT next to the task metric in every validation and test evaluation."""
from typing import Dict, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log

from ..evaluation import PRIMARY_METRICS, ppt
from ..registry import HOOKS
from ..utils import count_params


@HOOKS.register_module()
class PPTHook(Hook):
    """Add ``<metric>_ppt`` for each primary metric found in the evaluation results.

    Runs before the logger hook, so the PPT values are logged and saved with the metrics.

    Args:
        metrics: Metric key -> factor dividing it into a fraction. Defaults to the primary
            metrics of the four toolboxes (:data:`vpetl_mm.evaluation.PRIMARY_METRICS`).

    Examples:
        >>> custom_hooks = [dict(type='vpetl_mm.PPTHook', metrics={'accuracy/top1': 100})]
    """
    priority = 'NORMAL'

    def __init__(self, metrics: Optional[Dict[str, float]] = None) -> None:
        self.metrics = dict(metrics or PRIMARY_METRICS)

    def _add(self, runner, metrics: Optional[dict], mode: str) -> None:
        if not metrics:
            return
        params = count_params(runner.model)['backbone_trainable']
        found = False
        for key, factor in self.metrics.items():
            if key in metrics:
                value = round(ppt(float(metrics[key]) / factor, params), 4)
                metrics[f'{key}_ppt'] = value
                # RuntimeInfoHook (VERY_HIGH) already copied the metrics into the message hub,
                # which is what LoggerHook logs and saves: add the PPT value there as well.
                runner.message_hub.update_scalar(f'{mode}/{key}_ppt', value)
                found = True
        if not found:
            print_log(f'PPTHook: none of {sorted(self.metrics)} is among the metrics '
                      f'{sorted(metrics)}; pass metrics={{key: factor}} to PPTHook.',
                      logger='current', level=30)

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._add(runner, metrics, 'val')

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._add(runner, metrics, 'test')
