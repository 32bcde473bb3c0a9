"""mmengine hooks: reports, adapter-only checkpoints, efficiency logging, PPT, ``load_from`` of
plain backbone files, metric recording for the protocols."""
from .calibration_hook import PETLCalibrationHook
from .checkpoint_hook import PETLCheckpointHook
from .efficiency_hook import EfficiencyHook, peak_memory_mb
from .load_from_hook import PretrainedLoadFromHook
from .metric_recorder_hook import MetricRecorderHook
from .noah_hook import NOAHSamplingHook
from .ppt_hook import PPTHook
from .report_hook import PETLReportHook

__all__ = ['PETLCalibrationHook', 'PETLCheckpointHook', 'EfficiencyHook', 'MetricRecorderHook',
           'NOAHSamplingHook', 'PPTHook', 'PETLReportHook', 'PretrainedLoadFromHook',
           'peak_memory_mb']
