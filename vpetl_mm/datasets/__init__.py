import importlib.util

from .vtab import SPLITS, VTAB_TASKS, VTAB1k
from .vtab_export import write_vtab1k

__all__ = ['VTAB1k', 'VTAB_TASKS', 'SPLITS', 'write_vtab1k']

if importlib.util.find_spec('mmaction') is not None:  # mmaction2 is the optional 'action' extra
    from .video import VideoListDataset, detect_ann_format  # noqa: F401
    __all__ += ['VideoListDataset', 'detect_ann_format']
