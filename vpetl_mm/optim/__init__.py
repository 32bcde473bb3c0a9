from .constructor import PETLOptimWrapperConstructor
from .scheduler import TimmCosineLR

__all__ = ['PETLOptimWrapperConstructor', 'TimmCosineLR']
