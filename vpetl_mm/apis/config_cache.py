"""Read many configs that share ``_base_`` files without parsing the bases again each time.

``Config.fromfile`` parses a config's whole ``_base_`` chain anew (~0.3-0.8 s for a generated
image config: the mmpretrain bases are resolved through the package index); checking all the
generated configs would take minutes. Inside :func:`cached_base_configs`, mmengine's
``Config._file2dict`` keeps what it read for every file under a ``_base_`` folder and hands out
deep copies, so each config costs its own file and the merge (~0.04 s). Only the bases are
cached: a config file read twice is read twice.

Examples:
    >>> from mmengine.config import Config
    >>> with cached_base_configs():
    ...     cfgs = [Config.fromfile(f'configs/lora/vit-b_vtab-{t}.py') for t in ('dtd', 'svhn')]
    >>> [c.train_dataloader.dataset.task for c in cfgs]
    ['dtd', 'svhn']
"""
import contextlib
import copy
import os.path as osp
from typing import Any, Dict, Iterator, Tuple

from mmengine.config import Config


@contextlib.contextmanager
def cached_base_configs() -> Iterator[Dict[Tuple, Any]]:
    """Within the block, parse each ``_base_`` config file once (yields the cache)."""
    original = Config.__dict__['_file2dict']
    read = original.__func__
    cache: Dict[Tuple, Any] = {}

    def file2dict(filename, *args, **kwargs):
        if f'{osp.sep}_base_{osp.sep}' not in osp.abspath(filename):
            return read(filename, *args, **kwargs)
        key = (osp.abspath(filename), args, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = read(filename, *args, **kwargs)
        return copy.deepcopy(cache[key])

    Config._file2dict = staticmethod(file2dict)
    try:
        yield cache
    finally:
        Config._file2dict = original
