"""mmaction2 1.2.0 ships without ``mmaction.models.localizers.drn``.

Both its wheel and its sdist lack the package, yet ``mmaction/models/localizers/__init__.py`` runs
``from .drn.drn import DRN``, so ``import mmaction.models`` fails with ``ModuleNotFoundError``. We
register a placeholder module for the missing package *before* mmaction is imported. The
placeholder ``DRN`` raises a clear error if anyone builds it; every other mmaction model works.
"""
import importlib.util
import os
import sys
import types

_DRN = 'mmaction.models.localizers.drn'


class _MissingDRN:
    """Stands in for the DRN localizer that mmaction2 1.2.0 does not ship."""

    def __init__(self, *args, **kwargs) -> None:
        raise ImportError(
            'mmaction2 1.2.0 was released without mmaction/models/localizers/drn, so the DRN '
            'localizer cannot be built. vpetl_mm only registers a placeholder so that the rest '
            'of mmaction.models imports; install mmaction2 from source to use DRN.')


def _drn_is_missing() -> bool:
    # find_spec on the top-level name does not import mmaction (a submodule spec would).
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return False
    root = list(spec.submodule_search_locations)[0]
    return not os.path.isdir(os.path.join(root, 'models', 'localizers', 'drn'))


def install_mmaction_drn_shim() -> bool:
    """Register the placeholder DRN modules if mmaction2 is installed without them.

    Returns:
        True if the placeholder was installed (now or earlier), False if not needed.
    """
    if _DRN in sys.modules:
        return getattr(sys.modules[_DRN], '__vpetl_placeholder__', False)
    if not _drn_is_missing():
        return False
    package = types.ModuleType(_DRN)
    package.__path__ = []  # a package, so that ``.drn.drn`` resolves
    package.__vpetl_placeholder__ = True
    module = types.ModuleType(f'{_DRN}.drn')
    module.DRN = _MissingDRN
    module.__vpetl_placeholder__ = True
    package.drn = module
    sys.modules[_DRN] = package
    sys.modules[f'{_DRN}.drn'] = module
    return True
