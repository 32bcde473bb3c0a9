from .runtime import (DEFAULT_PETL_HOOKS, add_common_args, add_petl_hooks, build_runner,
                      declared_hooks, hook_name, load_config, setup_distributed_cpu)

__all__ = ['DEFAULT_PETL_HOOKS', 'add_common_args', 'add_petl_hooks', 'build_runner',
           'declared_hooks', 'hook_name', 'load_config', 'setup_distributed_cpu']
from .export import ExportResult, export_model  # noqa: E402
from .petl_checkpoint import load_petl_checkpoint  # noqa: E402

__all__ += ['ExportResult', 'export_model', 'load_petl_checkpoint']
