"""The image benchmark as data: dataset keys, folders, groups and the reference recipe tables.

Keys are the config names (``configs/<method>/vit-b_<key>.py``); the values come from the
V-PETL Bench reference YAMLs and scripts (``../shared/reference/methods.md`` sections 3 to 5):
the common protocol that ``vpetl_mm/benchmark/recipe_table.py`` (the recipe table, with the
per-method rows and their sources) starts from.
"""
from typing import Dict, Tuple

# VTAB-1k: config key -> folder of NOAH's get_vtab1k.py export (in the published column order).
VTAB_DATASETS: Dict[str, str] = {
    'vtab-cifar100': 'cifar',
    'vtab-caltech101': 'caltech101',
    'vtab-dtd': 'dtd',
    'vtab-flowers102': 'oxford_flowers102',
    'vtab-pets': 'oxford_iiit_pet',
    'vtab-svhn': 'svhn',
    'vtab-sun397': 'sun397',
    'vtab-pcam': 'patch_camelyon',
    'vtab-eurosat': 'eurosat',
    'vtab-resisc45': 'resisc45',
    'vtab-retinopathy': 'diabetic_retinopathy',
    'vtab-clevr-count': 'clevr_count',
    'vtab-clevr-dist': 'clevr_dist',
    'vtab-dmlab': 'dmlab',
    'vtab-kitti': 'kitti',
    'vtab-dsprites-loc': 'dsprites_loc',
    'vtab-dsprites-ori': 'dsprites_ori',
    'vtab-smallnorb-azi': 'smallnorb_azi',
    'vtab-smallnorb-ele': 'smallnorb_ele',
}
_KEYS = list(VTAB_DATASETS)
# the three VTAB groups: 7 natural, 4 specialized, 8 structured
VTAB_GROUPS: Dict[str, str] = {
    **{k: 'natural' for k in _KEYS[:7]},
    **{k: 'specialized' for k in _KEYS[7:11]},
    **{k: 'structured' for k in _KEYS[11:]},
}
# tasks with `train_aug: True` in the reference YAMLs (RandAugment pipeline)
VTAB_AUGMENTED = frozenset([
    'vtab-dtd', 'vtab-flowers102', 'vtab-pets', 'vtab-svhn', 'vtab-sun397', 'vtab-pcam',
    'vtab-eurosat', 'vtab-resisc45', 'vtab-retinopathy', 'vtab-clevr-count', 'vtab-dmlab',
    'vtab-kitti'])
# label smoothing 0.1 on natural and specialized tasks and on KITTI (every model_* YAML of the
# reference has `labelsmoothing: 0.1` for kitti, a structured task), none on the other
# structured ones
VTAB_LABEL_SMOOTHING: Dict[str, float] = {
    k: 0. if group == 'structured' and k != 'vtab-kitti' else 0.1
    for k, group in VTAB_GROUPS.items()}
# the reference's per-task (lr, weight decay) for AdamW at batch 64
VTAB_LR_WD: Dict[str, Tuple[float, float]] = {
    'vtab-cifar100': (0.01, 1.0),
    'vtab-caltech101': (0.006, 0.35),
    'vtab-dtd': (0.0032, 0.04),
    'vtab-flowers102': (0.05, 0.11),
    'vtab-pets': (0.0007, 0.8),
    'vtab-svhn': (0.001, 0.005),
    'vtab-sun397': (0.0017, 0.01),
    'vtab-pcam': (0.0072, 0.002),
    'vtab-eurosat': (0.06, 0.001),
    'vtab-resisc45': (0.01, 0.01),
    'vtab-retinopathy': (0.004, 0.0003),
    'vtab-clevr-count': (0.0033, 0.01),
    'vtab-clevr-dist': (0.0018, 0.005),
    'vtab-dmlab': (0.009, 0.1),
    'vtab-kitti': (0.0072, 0.0001),
    'vtab-dsprites-loc': (0.003, 0.001),
    'vtab-dsprites-ori': (0.01, 0.05),
    'vtab-smallnorb-azi': (0.0062, 0.005),
    'vtab-smallnorb-ele': (0.0011, 0.0005),
}
# FGVC: config key -> (dataset name, folder under data/fgvc, classes, image sub-folder)
FGVC_DATASETS: Dict[str, Tuple[str, str, int, str]] = {
    'fgvc-cub': ('cub', 'CUB_200_2011', 200, 'images'),
    'fgvc-nabirds': ('nabirds', 'nabirds', 555, 'images'),
    'fgvc-flowers': ('flowers', 'OxfordFlower', 102, ''),
    'fgvc-dogs': ('dogs', 'StanfordDogs', 120, 'Images'),
    'fgvc-cars': ('cars', 'StanfordCars', 196, ''),
}
# the reference's FGVC (lr, weight decay): wd 0.05 everywhere
FGVC_LR_WD: Dict[str, Tuple[float, float]] = {
    'fgvc-cub': (1e-3, 0.05),
    'fgvc-nabirds': (2e-4, 0.05),
    'fgvc-flowers': (1e-3, 0.05),
    'fgvc-dogs': (2.5e-4, 0.05),
    'fgvc-cars': (2e-3, 0.05),
}
