"""vpetl_mm registries.

Every registry is a child of the matching mmengine root registry with the scope ``vpetl_mm``, so a
config of any OpenMMLab toolbox (default scope ``mmdet``, ``mmseg``, ``mmpretrain`` or
``mmaction``) reaches our classes as ``'vpetl_mm.<Name>'``. ``PETL_METHODS`` is our own root
registry: PETL methods are not models and must never be built by a toolbox's ``MODELS``.

Examples:
    >>> from vpetl_mm.registry import PETL_METHODS
    >>> sorted(PETL_METHODS.module_dict)[:3]
    ['AdaptFormer', 'Adapter', 'BitFit']
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='vpetl_mm', locations=['vpetl_mm.models'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='vpetl_mm', locations=['vpetl_mm.hooks'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='vpetl_mm',
                    locations=['vpetl_mm.datasets'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='vpetl_mm',
                      locations=['vpetl_mm.datasets'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope='vpetl_mm',
                   locations=['vpetl_mm.evaluation'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optimizer wrapper constructor',
                                      parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, scope='vpetl_mm',
                                      locations=['vpetl_mm.optim'])
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS,
                            scope='vpetl_mm', locations=['vpetl_mm.optim'])
PETL_METHODS = Registry('petl method', scope='vpetl_mm', locations=['vpetl_mm.methods'])
