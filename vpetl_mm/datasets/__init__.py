import importlib.util

from .fgvc import FGVC, FGVC_NAMES, FGVC_SPLITS
from .recipes import (FGVC_DATASETS, FGVC_LR_WD, VTAB_AUGMENTED, VTAB_DATASETS, VTAB_GROUPS,
                      VTAB_LABEL_SMOOTHING, VTAB_LR_WD)
from .transforms import ColorJitter
from .vtab import SPLITS, VTAB_TASKS, VTAB1k
from .vtab_export import write_vtab1k

__all__ = ['ColorJitter', 'VTAB1k', 'VTAB_TASKS', 'SPLITS', 'write_vtab1k', 'FGVC', 'FGVC_NAMES', 'FGVC_SPLITS',
           'FGVC_DATASETS', 'FGVC_LR_WD', 'VTAB_AUGMENTED', 'VTAB_DATASETS',
           'VTAB_GROUPS', 'VTAB_LABEL_SMOOTHING', 'VTAB_LR_WD']

if importlib.util.find_spec('mmaction') is not None:  # mmaction2 is the optional 'action' extra
    from .video import VideoListDataset, detect_ann_format  # noqa: F401
    __all__ += ['VideoListDataset', 'detect_ann_format']
