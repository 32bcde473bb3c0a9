from .runtime import DEFAULT_PETL_HOOKS, add_petl_hooks, setup_distributed_cpu

__all__ = ['DEFAULT_PETL_HOOKS', 'add_petl_hooks', 'setup_distributed_cpu']
