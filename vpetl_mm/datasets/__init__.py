from .vtab import SPLITS, VTAB_TASKS, VTAB1k
from .vtab_export import write_vtab1k

__all__ = ['VTAB1k', 'VTAB_TASKS', 'SPLITS', 'write_vtab1k']
