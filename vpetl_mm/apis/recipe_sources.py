"""The recorded source of any config file, and whether it is a runnable config at all.

:func:`vpetl_mm.benchmark.sources.recipe_sources` knows the benchmark settings by
``(method folder, file stem)``. The other files under ``configs/`` get their source here, by
path:

* a setting base ``configs/_base_/<kind>/<backbone base>_<setting>.py`` (what every method
  config of the setting inherits): the setting's rows for all methods (folder ``'*'``), the
  backbone base stem mapped to its matrix backbone key (``vit-b16`` -> ``vit-b``); a dense base
  (``_base_/dense/upernet_swin-l_ade20k.py``): the rows of the setting whose configs inherit it;
* any other config: the source of the first file it inherits that has one, a package config
  (``mmdet::swin/...``) being the official OpenMMLab config at the installed version, a local
  one found by the same rules (recursively); the text says which file it came through.

:func:`missing_parts` tells a runnable config (model, train loader, optimizer, loop) from a
``_base_`` fragment (a pipeline, a dataset, a schedule), which ``tools/analysis/recipe.py``
refuses with one line (:class:`NotRunnableConfig`).

Examples:
    >>> [s.text for s in config_sources('configs/examples/mask-rcnn_swin-t_lora_coco.py')]
    ... # doctest: +ELLIPSIS
    ['open-mmlab/mmdetection@v3.3.0 configs/swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py (...)']
"""
import dataclasses
import functools
import glob
import importlib
import os.path as osp
from typing import Dict, List

from mmengine.config import Config

from ..benchmark.matrices import MATRICES
from ..benchmark.recipe_table_dense import DENSE_ROWS
from ..benchmark.sources import RecipeSource, recipe_sources

#: toolbox scope -> its GitHub repository (package configs: ``scope::path``)
_REPOS = dict(mmdet='open-mmlab/mmdetection', mmseg='open-mmlab/mmsegmentation',
              mmpretrain='open-mmlab/mmpretrain', mmaction='open-mmlab/mmaction2')
_DEPTH = 8  # inheritance levels followed (the deepest local chain today: 3)


class NotRunnableConfig(ValueError):
    """A ``_base_`` fragment (no model, loader, optimizer or loop of its own)."""


def missing_parts(cfg: Config) -> List[str]:
    """What a config lacks to be trained (empty for a runnable config).

    Examples:
        >>> missing_parts(Config.fromfile('configs/_base_/image/pipelines.py'))
        ['model', 'train_dataloader.dataset', 'optim_wrapper.optimizer', 'train_cfg']
    """
    loader, wrapper = cfg.get('train_dataloader') or {}, cfg.get('optim_wrapper') or {}
    wanted = [('model', (cfg.get('model') or {}).get('type')),
              ('train_dataloader.dataset', loader.get('dataset')),
              ('optim_wrapper.optimizer', wrapper.get('optimizer')),
              ('train_cfg', cfg.get('train_cfg'))]
    return [name for name, value in wanted if not value]


def refusal(path: str, missing: List[str]) -> str:
    """The one-line refusal for a fragment."""
    return (f'{path} is a _base_ fragment, not a runnable config (it sets no '
            f"{', '.join(missing)}); pass a config that inherits it, e.g. "
            'configs/lora/vit-b_vtab-cifar100.py.')


def _backbone_keys() -> Dict[str, str]:
    """Backbone base file stem -> its matrix backbone key (``vit-b16`` -> ``vit-b``)."""
    return {osp.splitext(osp.basename(b.base))[0]: b.key
            for matrix in MATRICES for b in matrix.backbones}


@functools.lru_cache()
def _dense_settings(root: str) -> Dict[str, str]:
    """Dense base file -> the setting (a :data:`DENSE_ROWS` stem) of the configs that inherit
    it, read off the ``_base_`` lists of ``<root>/<method>/<setting>.py``."""
    found: Dict[str, str] = {}
    for setting in sorted({row.setting for row in DENSE_ROWS}):
        for leaf in sorted(glob.glob(osp.join(root, '*', f'{setting}.py'))):
            for base in Config._get_base_files(leaf):
                if '::' not in base:
                    found.setdefault(osp.normpath(osp.join(osp.dirname(leaf), base)), setting)
    return found


def setting_base_sources(path: str) -> List[RecipeSource]:
    """The sources of a setting base: the setting's rows for every method (folder ``'*'``).

    Examples:
        >>> setting_base_sources('configs/_base_/image/vit-b16_vtab-dtd.py')[0].text
        ... # doctest: +ELLIPSIS
        'synbol/...@c188fad ImageClassification/train/train_model_lora.py, ...'
        >>> setting_base_sources('configs/_base_/dense/upernet_swin-l_ade20k.py')[0].text
        ... # doctest: +ELLIPSIS
        'Leiyi-Hu/mona@5deeac9 .../ade20k_upernet_swin_large_160k_*.py, ...'
    """
    parts = path.split(osp.sep)
    if '_base_' not in parts:
        return []
    base, _, setting = osp.splitext(parts[-1])[0].partition('_')
    key = _backbone_keys().get(base)
    if key and setting:
        return recipe_sources('*', f'{key}_{setting}')
    root = osp.sep.join(parts[:len(parts) - 1 - parts[::-1].index('_base_')])
    dense = _dense_settings(root or '.').get(path)
    return recipe_sources('*', dense) if dense else []


def _package_source(base: str) -> RecipeSource:
    scope, rel = base.split('::', 1)
    try:
        version = f"@v{importlib.import_module(scope).__version__}"
    except ImportError:  # the toolbox is not installed: its name only
        version = ''
    return RecipeSource(('recipe', ), f'{_REPOS.get(scope, scope)}{version} configs/{rel} '
                                      '(the official config it inherits)')


def config_sources(path: str, depth: int = 0) -> List[RecipeSource]:
    """Every recorded source of a config file (module docstring), most specific first."""
    path = osp.normpath(path)
    folder, stem = osp.basename(osp.dirname(path)), osp.splitext(osp.basename(path))[0]
    found = recipe_sources(folder, stem) or setting_base_sources(path)
    if found or depth >= _DEPTH or not osp.isfile(path):
        return found
    for base in Config._get_base_files(path):
        if '::' in base:
            return [_package_source(base)]
        inherited = osp.normpath(osp.join(osp.dirname(path), base))
        found = config_sources(inherited, depth + 1)
        if found:
            via = inherited[inherited.find('configs' + osp.sep):]
            return [dataclasses.replace(s, text=f'{s.text} (through {via})')
                    if '(through ' not in s.text else s for s in found]
    return []
