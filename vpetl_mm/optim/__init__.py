from .constructor import PETLOptimWrapperConstructor

__all__ = ['PETLOptimWrapperConstructor']
