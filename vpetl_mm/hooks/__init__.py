"""mmengine hooks: reports, adapter-only checkpoints, efficiency logging, PPT."""
from .calibration_hook import PETLCalibrationHook
from .checkpoint_hook import PETLCheckpointHook
from .efficiency_hook import EfficiencyHook, peak_memory_mb
from .noah_hook import NOAHSamplingHook
from .ppt_hook import PPTHook
from .report_hook import PETLReportHook

__all__ = ['PETLCalibrationHook', 'PETLCheckpointHook', 'EfficiencyHook', 'PPTHook', 'PETLReportHook', 'peak_memory_mb',
           'NOAHSamplingHook']
