"""vpetl_mm: parameter-efficient transfer learning for OpenMMLab backbones, by config.

Importing the package registers everything (methods, the ``PETLBackbone`` wrapper, hooks, the
optimizer constructor, datasets) and applies the stack work-arounds of :mod:`vpetl_mm.compat`,
so configs only need ``custom_imports=dict(imports=['vpetl_mm'])``.
"""
from .compat import (install_drop_path_float, install_mmaction_drn_shim,
                     install_safe_checkpoint_loader, install_traceable_one_hot)

install_mmaction_drn_shim()  # before anything can import mmaction.models
install_safe_checkpoint_loader()  # stock mmengine checkpoints load (and resume) weights-only
install_drop_path_float()  # before any host is built: no numpy drop_prob (graph breaks)
install_traceable_one_hot()  # mmpretrain's one-hot losses: no .item() under compile

from . import datasets, evaluation, hooks, methods, models, optim  # noqa: E402,F401
from .evaluation import ppt  # noqa: E402
from .models import PETLBackbone  # noqa: E402
from .registry import PETL_METHODS  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = ['PETLBackbone', 'PETL_METHODS', 'ppt', '__version__']
