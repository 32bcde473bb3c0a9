"""Per-task hyper-parameters of the image method zoo, as data, from the methods' own repositories.

Some methods tune a hyper-parameter per task (an output scale, a rank, a prompt length ...) and
publish the chosen values in their repositories. Each table here maps a config key of the image
benchmark (``vpetl_mm.datasets.VTAB_DATASETS`` / ``FGVC_DATASETS``) to the values the source
publishes for that task; a task a source does not cover keeps the method's row in
``vpetl_mm/benchmark/variants.py`` (its defaults) and the common lr / wd table. Keys that are
arguments of the method go into its ``petl`` dict; :data:`RECIPE_KEYS` override the training
recipe (AdamW lr and weight decay, training batch size, the backbone's drop-path rate).
``matrices.py`` writes them into ``configs/<method>/vit-b_<dataset>.py`` (the method's own
recipe over the setting base) with a comment naming the source. Only values read in the
sources are here (docs/image.md, "Per-task settings").
"""
import ast
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from ..datasets import VTAB_DATASETS

# keys of a task's entry that change the recipe, not the method
RECIPE_KEYS = ('lr', 'weight_decay', 'batch_size', 'drop_path_rate')


@dataclass(frozen=True)
class Source:
    """Where a table's values were read: repository, commit of the snapshot read, file(s)."""
    repo: str
    commit: str
    path: str  # the file pattern, ``<task>`` standing for the source's task name


@dataclass(frozen=True)
class PerTaskTable:
    source: Source
    values: Dict[str, Dict[str, Any]]  # config key -> method arguments and RECIPE_KEYS
    # config key -> the source's task name in ``source.path`` (default: the NOAH VTAB folder)
    tasks: Optional[Dict[str, str]] = None

    def cite(self, dataset: str) -> str:
        """The file a task's values come from: ``repo@commit path``."""
        task = (self.tasks or VTAB_DATASETS).get(dataset, dataset)
        path = self.source.path.replace('<task>', task)
        return f'{self.source.repo}@{self.source.commit[:7]} {path}'


# Hydra, `hydra_both` (rank 2 on proj and fc2): scale, dropout and its own AdamW lr / weight
# decay / batch size per VTAB-1k task (its train.py reads them from the YAML; 100 epochs). Hydra
# publishes no FGVC settings.
HYDRA = PerTaskTable(
    Source('extremebird/Hydra', '4138457859666d49b9ca9e45473d8570586670bb',
           'vtab1k/configs/hydra_both/<task>.yaml'),
    {
        'vtab-cifar100': dict(scale=0.1, dropout=0.2, lr=0.0005, weight_decay=0.0001,
                              batch_size=16),
        'vtab-caltech101': dict(scale=4.0, dropout=0.1, lr=0.001, weight_decay=0.0001,
                                batch_size=32),
        'vtab-dtd': dict(scale=0.1, dropout=0.2, lr=0.001, weight_decay=0.0001, batch_size=32),
        'vtab-flowers102': dict(scale=0.1, dropout=0.0, lr=0.005, weight_decay=0.0001,
                                batch_size=64),
        'vtab-pets': dict(scale=0.1, dropout=0.0, lr=0.001, weight_decay=0.0001, batch_size=32),
        'vtab-svhn': dict(scale=3.0, dropout=0.0, lr=0.001, weight_decay=0.0001, batch_size=16),
        'vtab-sun397': dict(scale=0.1, dropout=0.2, lr=0.001, weight_decay=0.0001,
                            batch_size=64),
        'vtab-pcam': dict(scale=0.1, dropout=0.2, lr=0.005, weight_decay=0.0001, batch_size=64),
        'vtab-eurosat': dict(scale=0.1, dropout=0.2, lr=0.0005, weight_decay=0.0001,
                             batch_size=64),
        'vtab-resisc45': dict(scale=0.1, dropout=0.2, lr=0.005, weight_decay=0.0001,
                              batch_size=64),
        'vtab-retinopathy': dict(scale=4.5, dropout=0.2, lr=0.0005, weight_decay=0.0001,
                                 batch_size=64),
        'vtab-clevr-count': dict(scale=1.5, dropout=0.2, lr=0.0005, weight_decay=0.0001,
                                 batch_size=64),
        'vtab-clevr-dist': dict(scale=0.1, dropout=0.0, lr=0.0005, weight_decay=0.0001,
                                batch_size=16),
        'vtab-dmlab': dict(scale=4.5, dropout=0.2, lr=0.001, weight_decay=0.0001, batch_size=64),
        'vtab-kitti': dict(scale=4.5, dropout=0.2, lr=0.0005, weight_decay=0.0001,
                           batch_size=64),
        'vtab-dsprites-loc': dict(scale=4.5, dropout=0.2, lr=0.001, weight_decay=0.0001,
                                  batch_size=16),
        'vtab-dsprites-ori': dict(scale=2.5, dropout=0.2, lr=0.001, weight_decay=0.0001,
                                  batch_size=64),
        'vtab-smallnorb-azi': dict(scale=3.0, dropout=0.2, lr=0.005, weight_decay=1e-05,
                                   batch_size=64),
        'vtab-smallnorb-ele': dict(scale=1.0, dropout=0.2, lr=0.0005, weight_decay=0.0001,
                                   batch_size=64),
    })

# RepAdapter, `repblock`: the adapter scale s per VTAB-1k task (lr 1e-3 / wd 1e-4 are the same on
# every task in its train.py, so the common table stays). `repblock_few_shot` covers few-shot
# FGVC-Aircraft / Food-101 / Flowers / Pets / Cars, a different protocol: no FGVC values here.
REPADAPTER = PerTaskTable(
    Source('luogen1996/RepAdapter', '360992fc2a36f069fd168754f14bc1986d869a8f',
           'configs/repblock/<task>.yaml'),
    {
        'vtab-cifar100': dict(scale=0.1),
        'vtab-caltech101': dict(scale=5.0),
        'vtab-dtd': dict(scale=1.0),
        'vtab-flowers102': dict(scale=0.5),
        'vtab-pets': dict(scale=0.1),
        'vtab-svhn': dict(scale=10.0),
        'vtab-sun397': dict(scale=0.1),
        'vtab-pcam': dict(scale=1.0),
        'vtab-eurosat': dict(scale=1.0),
        'vtab-resisc45': dict(scale=5.0),
        'vtab-retinopathy': dict(scale=0.1),
        'vtab-clevr-count': dict(scale=0.5),
        'vtab-clevr-dist': dict(scale=0.1),
        'vtab-dmlab': dict(scale=5.0),
        'vtab-kitti': dict(scale=5.0),
        'vtab-dsprites-loc': dict(scale=5.0),
        'vtab-dsprites-ori': dict(scale=0.1),
        'vtab-smallnorb-azi': dict(scale=10.0),
        'vtab-smallnorb-ele': dict(scale=1.0),
    })

# FacT-TK: rank and scale per VTAB-1k task. The published FacT row (0.07M, the accuracies of
# V-PETL Bench's table) is FacT-TK's; its per-task ranks (16 / 32) average 68,985 parameters.
# FacT's FacT-TT tables (FacT/configs/tt/) are not used. FacT publishes no FGVC settings.
FACT = PerTaskTable(
    Source('JieShibo/PETL-ViT', '026e4f12cfbe1e46bfb4d3ed5ba09f2d9f83e91e',
           'FacT/configs/tk/<task>.yaml'),
    {
        'vtab-cifar100': dict(mode='tk', rank=32, scale=0.1),
        'vtab-caltech101': dict(mode='tk', rank=32, scale=10.0),
        'vtab-dtd': dict(mode='tk', rank=16, scale=0.01),
        'vtab-flowers102': dict(mode='tk', rank=32, scale=1.0),
        'vtab-pets': dict(mode='tk', rank=16, scale=10.0),
        'vtab-svhn': dict(mode='tk', rank=32, scale=100.0),
        'vtab-sun397': dict(mode='tk', rank=16, scale=1.0),
        'vtab-pcam': dict(mode='tk', rank=32, scale=10.0),
        'vtab-eurosat': dict(mode='tk', rank=32, scale=100.0),
        'vtab-resisc45': dict(mode='tk', rank=32, scale=10.0),
        'vtab-retinopathy': dict(mode='tk', rank=16, scale=1.0),
        'vtab-clevr-count': dict(mode='tk', rank=32, scale=10.0),
        'vtab-clevr-dist': dict(mode='tk', rank=16, scale=10.0),
        'vtab-dmlab': dict(mode='tk', rank=32, scale=10.0),
        'vtab-kitti': dict(mode='tk', rank=32, scale=10.0),
        'vtab-dsprites-loc': dict(mode='tk', rank=32, scale=100.0),
        'vtab-dsprites-ori': dict(mode='tk', rank=32, scale=1.0),
        'vtab-smallnorb-azi': dict(mode='tk', rank=32, scale=100.0),
        'vtab-smallnorb-ele': dict(mode='tk', rank=16, scale=10.0),
    })

# GPS: k (`--times_para`), lr, batch size and drop path per task, weight decay 0 everywhere
# (`--opt adam --weight-decay 0`: Adam = AdamW at wd 0), from the scripts of the snapshot read;
# an earlier revision (41ac7da) had k = 2 on Retinopathy too, the latest (c52ea8a) has k = 1.
GPS = PerTaskTable(
    Source('FightingFighting/GPS', '72e0c31564f46b6b6a166b54a28f2a8f48cec031',
           'train_scripts/vit/<task>/train_gps.sh'),
    {
        'vtab-cifar100': dict(k=1, lr=0.01, weight_decay=0.0, batch_size=32, drop_path_rate=0.0),
        'vtab-caltech101': dict(k=1, lr=0.002, weight_decay=0.0, batch_size=16,
                                drop_path_rate=0.0),
        'vtab-dtd': dict(k=1, lr=0.002, weight_decay=0.0, batch_size=16, drop_path_rate=0.0),
        'vtab-flowers102': dict(k=1, lr=0.002, weight_decay=0.0, batch_size=16,
                                drop_path_rate=0.0),
        'vtab-pets': dict(k=1, lr=0.003, weight_decay=0.0, batch_size=32, drop_path_rate=0.0),
        'vtab-svhn': dict(k=1, lr=0.005, weight_decay=0.0, batch_size=32, drop_path_rate=0.0),
        'vtab-sun397': dict(k=1, lr=0.0025, weight_decay=0.0, batch_size=16, drop_path_rate=0.0),
        'vtab-pcam': dict(k=2, lr=0.004, weight_decay=0.0, batch_size=32, drop_path_rate=0.0),
        'vtab-eurosat': dict(k=1, lr=0.002, weight_decay=0.0, batch_size=16, drop_path_rate=0.0),
        'vtab-resisc45': dict(k=1, lr=0.0015, weight_decay=0.0, batch_size=16,
                              drop_path_rate=0.1),
        'vtab-retinopathy': dict(k=1, lr=0.002, weight_decay=0.0, batch_size=32,
                                 drop_path_rate=0.2),
        'vtab-clevr-count': dict(k=1, lr=0.0003, weight_decay=0.0, batch_size=16,
                                 drop_path_rate=0.1),
        'vtab-clevr-dist': dict(k=1, lr=0.002, weight_decay=0.0, batch_size=16,
                                drop_path_rate=0.1),
        'vtab-dmlab': dict(k=1, lr=0.0015, weight_decay=0.0, batch_size=16, drop_path_rate=0.1),
        'vtab-kitti': dict(k=1, lr=0.001, weight_decay=0.0, batch_size=16, drop_path_rate=0.0),
        'vtab-dsprites-loc': dict(k=1, lr=0.007, weight_decay=0.0, batch_size=32,
                                  drop_path_rate=0.0),
        'vtab-dsprites-ori': dict(k=1, lr=0.0005, weight_decay=0.0, batch_size=16,
                                  drop_path_rate=0.2),
        'vtab-smallnorb-azi': dict(k=1, lr=0.003, weight_decay=0.0, batch_size=32,
                                   drop_path_rate=0.1),
        'vtab-smallnorb-ele': dict(k=1, lr=0.0003, weight_decay=0.0, batch_size=32,
                                   drop_path_rate=0.2),
        'fgvc-cub': dict(k=2, lr=0.003, weight_decay=0.0, batch_size=32, drop_path_rate=0.0),
        'fgvc-nabirds': dict(k=20, lr=0.0001, weight_decay=0.0, batch_size=32,
                             drop_path_rate=0.1),
        'fgvc-flowers': dict(k=1, lr=0.001, weight_decay=0.0, batch_size=32, drop_path_rate=0.1),
        'fgvc-dogs': dict(k=1, lr=0.0001, weight_decay=0.0, batch_size=64, drop_path_rate=0.0),
        'fgvc-cars': dict(k=15, lr=0.0005, weight_decay=0.0, batch_size=32, drop_path_rate=0.0),
    },
    tasks={
        'vtab-cifar100': 'vtab/cifar_100', 'vtab-caltech101': 'vtab/caltech101',
        'vtab-dtd': 'vtab/dtd', 'vtab-flowers102': 'vtab/flowers102', 'vtab-pets': 'vtab/pets',
        'vtab-svhn': 'vtab/svhn', 'vtab-sun397': 'vtab/sun397',
        'vtab-pcam': 'vtab/patch_camelyon', 'vtab-eurosat': 'vtab/eurosat',
        'vtab-resisc45': 'vtab/resisc45', 'vtab-retinopathy': 'vtab/diabetic_retinopathy',
        'vtab-clevr-count': 'vtab/clevr_count', 'vtab-clevr-dist': 'vtab/clevr_dist',
        'vtab-dmlab': 'vtab/dmlab', 'vtab-kitti': 'vtab/kitti',
        'vtab-dsprites-loc': 'vtab/dsprites_loc', 'vtab-dsprites-ori': 'vtab/dsprites_ori',
        'vtab-smallnorb-azi': 'vtab/smallnorb_azi', 'vtab-smallnorb-ele': 'vtab/smallnorb_ele',
        'fgvc-cub': 'fgvc/cub_2011', 'fgvc-nabirds': 'fgvc/nabirds',
        'fgvc-flowers': 'fgvc/oxford_flowers', 'fgvc-dogs': 'fgvc/stanford_dogs',
        'fgvc-cars': 'fgvc/stanford_cars',
    })

# VPT-deep: VPT's per-task values live outside the repository (a spreadsheet linked from its
# README); the repository's demo notebook gives "the hyperparameters ... from our paper" for
# three VTAB-1k tasks, of which the prompt length is used (VPT trains with SGD: its lr / wd are
# not comparable and not used). The other 21 tasks keep P = 50.
VPT_DEEP = PerTaskTable(
    Source('KMnP/vpt', '4410440ec1b489f24f66b9fad3d9b10ff3443567', 'demo.ipynb'),
    {
        'vtab-sun397': dict(length=5),
        'vtab-eurosat': dict(length=100),
        'vtab-dmlab': dict(length=100),
    })

# -- architecture: per-task sizes the methods' searches chose ---------------------------------
# NOAH: the subnet its search found for each VTAB-1k task (the retrain step's RETRAIN widths per
# layer: visual prompt length, LoRA rank, adapter width; PREFIX_DIM is 0 everywhere). Counts on
# ViT-B/16 from 287,278 (SUN397) to 431,686 (SVHN); NOAH publishes no FGVC subnets.
NOAH = PerTaskTable(
    Source('ZhangYuanhan-AI/NOAH', 'e9c55f360be4f7f1133a08bf84f86f0309e98f8c',
           'experiments/NOAH/subnet/VTAB/ViT-B_prompt_<task>.yaml'),
    {
        'vtab-cifar100': dict(
            vpt=[10, 5, 10, 1, 5, 1, 10, 1, 10, 5, 1, 10],
            lora=[10, 1, 5, 5, 1, 10, 1, 1, 1, 10, 1, 1],
            adapter=[5, 10, 10, 10, 5, 1, 1, 1, 10, 10, 10, 1]),
        'vtab-caltech101': dict(
            vpt=[5, 10, 1, 5, 10, 1, 10, 1, 10, 1, 10, 1],
            lora=[1, 10, 10, 10, 5, 10, 10, 10, 5, 1, 10, 1],
            adapter=[10, 1, 5, 10, 10, 1, 5, 5, 10, 1, 5, 10]),
        'vtab-dtd': dict(
            vpt=[10, 5, 1, 1, 5, 10, 5, 1, 1, 5, 1, 1],
            lora=[10, 5, 1, 1, 5, 10, 5, 1, 1, 5, 1, 1],
            adapter=[1, 1, 1, 10, 1, 1, 10, 10, 10, 10, 10, 1]),
        'vtab-flowers102': dict(
            vpt=[10, 10, 5, 5, 1, 10, 1, 5, 10, 1, 5, 10],
            lora=[10, 10, 5, 5, 1, 10, 1, 5, 10, 1, 5, 10],
            adapter=[5, 1, 5, 5, 1, 1, 10, 5, 5, 10, 5, 10]),
        'vtab-pets': dict(
            vpt=[10, 5, 5, 10, 1, 10, 10, 10, 10, 5, 10, 10],
            lora=[10, 1, 1, 10, 5, 1, 1, 5, 10, 10, 1, 10],
            adapter=[1, 5, 5, 5, 5, 10, 1, 5, 10, 1, 1, 5]),
        'vtab-svhn': dict(
            vpt=[10, 5, 5, 10, 5, 5, 5, 5, 5, 5, 5, 5],
            lora=[5, 5, 5, 10, 5, 5, 5, 10, 10, 10, 10, 5],
            adapter=[5, 5, 5, 5, 5, 10, 5, 10, 5, 5, 5, 5]),
        'vtab-sun397': dict(
            vpt=[5, 1, 10, 5, 5, 10, 1, 5, 1, 1, 1, 1],
            lora=[10, 10, 5, 5, 1, 1, 10, 1, 1, 1, 1, 10],
            adapter=[10, 5, 1, 1, 1, 10, 5, 5, 1, 1, 5, 1]),
        'vtab-pcam': dict(
            vpt=[10, 10, 5, 10, 1, 10, 10, 10, 5, 1, 5, 5],
            lora=[10, 10, 1, 10, 1, 1, 5, 5, 5, 1, 5, 5],
            adapter=[5, 1, 10, 5, 5, 1, 1, 10, 1, 5, 1, 5]),
        'vtab-eurosat': dict(
            vpt=[10, 10, 10, 10, 10, 1, 5, 5, 10, 10, 5, 10],
            lora=[10, 1, 10, 10, 1, 5, 10, 1, 1, 1, 10, 1],
            adapter=[10, 10, 5, 1, 10, 1, 10, 5, 10, 1, 10, 10]),
        'vtab-resisc45': dict(
            vpt=[5, 5, 10, 1, 5, 1, 5, 10, 1, 1, 5, 1],
            lora=[10, 10, 5, 5, 5, 10, 10, 10, 1, 5, 1, 5],
            adapter=[5, 5, 5, 1, 5, 1, 10, 5, 5, 1, 5, 5]),
        'vtab-retinopathy': dict(
            vpt=[10, 1, 5, 10, 1, 5, 5, 10, 5, 10, 5, 5],
            lora=[1, 1, 10, 5, 5, 10, 1, 10, 10, 5, 10, 1],
            adapter=[1, 1, 5, 5, 10, 10, 10, 5, 1, 10, 10, 1]),
        'vtab-clevr-count': dict(
            vpt=[10, 1, 5, 10, 5, 1, 10, 5, 5, 5, 10, 1],
            lora=[1, 1, 10, 5, 10, 10, 10, 1, 5, 1, 10, 1],
            adapter=[1, 10, 10, 10, 10, 1, 5, 10, 10, 10, 1, 1]),
        'vtab-clevr-dist': dict(
            vpt=[10, 1, 1, 10, 5, 10, 5, 1, 5, 10, 5, 5],
            lora=[5, 1, 10, 5, 10, 10, 1, 1, 5, 10, 1, 10],
            adapter=[1, 1, 1, 10, 1, 1, 1, 10, 5, 1, 10, 10]),
        'vtab-dmlab': dict(
            vpt=[1, 10, 5, 1, 10, 10, 5, 10, 10, 1, 1, 1],
            lora=[10, 5, 1, 5, 10, 10, 5, 5, 5, 10, 10, 1],
            adapter=[5, 1, 5, 1, 5, 1, 5, 5, 5, 10, 10, 10]),
        'vtab-kitti': dict(
            vpt=[1, 5, 10, 1, 10, 5, 1, 1, 1, 5, 5, 5],
            lora=[5, 10, 10, 10, 1, 10, 5, 5, 10, 5, 10, 1],
            adapter=[5, 1, 10, 10, 1, 10, 1, 1, 5, 10, 5, 5]),
        'vtab-dsprites-loc': dict(
            vpt=[5, 10, 1, 10, 10, 5, 5, 1, 5, 5, 10, 1],
            lora=[1, 1, 1, 1, 10, 10, 1, 10, 5, 1, 5, 10],
            adapter=[1, 1, 1, 10, 1, 1, 10, 10, 10, 10, 10, 1]),
        'vtab-dsprites-ori': dict(
            vpt=[5, 5, 1, 1, 10, 5, 1, 10, 10, 10, 10, 10],
            lora=[1, 10, 1, 10, 1, 5, 10, 10, 5, 5, 1, 5],
            adapter=[1, 10, 10, 10, 10, 1, 5, 10, 10, 10, 1, 1]),
        'vtab-smallnorb-azi': dict(
            vpt=[1, 10, 1, 10, 1, 5, 10, 10, 1, 10, 10, 5],
            lora=[10, 5, 1, 5, 1, 1, 5, 5, 10, 1, 1, 10],
            adapter=[5, 1, 1, 1, 5, 5, 1, 10, 1, 1, 5, 1]),
        'vtab-smallnorb-ele': dict(
            vpt=[10, 1, 1, 1, 1, 5, 10, 10, 10, 10, 1, 10],
            lora=[10, 1, 1, 1, 5, 5, 10, 5, 1, 10, 1, 1],
            adapter=[1, 1, 1, 10, 1, 1, 10, 10, 10, 10, 10, 1]),
    },
    tasks={
        'vtab-cifar100': 'cifar100', 'vtab-caltech101': 'caltech101', 'vtab-dtd': 'dtd',
        'vtab-flowers102': 'oxford_flowers102', 'vtab-pets': 'oxford_pet', 'vtab-svhn': 'svhn',
        'vtab-sun397': 'sun397', 'vtab-pcam': 'patch_camelyon', 'vtab-eurosat': 'eurosat',
        'vtab-resisc45': 'resisc45', 'vtab-retinopathy': 'diabetic_retinopathy',
        'vtab-clevr-count': 'clevr_count', 'vtab-clevr-dist': 'clevr_dist', 'vtab-dmlab': 'dmlab',
        'vtab-kitti': 'kitti', 'vtab-dsprites-loc': 'dsprites_loc',
        'vtab-dsprites-ori': 'dsprites_ori', 'vtab-smallnorb-azi': 'smallnorb_azi',
        'vtab-smallnorb-ele': 'smallnorb_ele',
    })

# method folder (configs/<folder>/) -> its table
PER_TASK: Dict[str, PerTaskTable] = dict(
    hydra=HYDRA, repadapter=REPADAPTER, fact=FACT, gps=GPS, vpt_deep=VPT_DEEP, noah=NOAH)


def split(values: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """A task's entry as (method arguments, recipe overrides)."""
    method = {k: v for k, v in values.items() if k not in RECIPE_KEYS}
    recipe = {k: v for k, v in values.items() if k in RECIPE_KEYS}
    return method, recipe


def lookup(folder: str, dataset: str) -> Optional[Tuple[Dict[str, Any], Dict[str, Any], str]]:
    """(method arguments, recipe overrides, the file cited) of a method on a task, or None."""
    table = PER_TASK.get(folder)
    if table is None or dataset not in table.values:
        return None
    return (*split(table.values[dataset]), table.cite(dataset))


def petl_kwargs(petl: str) -> Dict[str, Any]:
    """The keyword arguments of a ``dict(...)`` petl source string, as values."""
    call = ast.parse(petl, mode='eval').body
    if not (isinstance(call, ast.Call) and getattr(call.func, 'id', None) == 'dict'
            and not call.args):
        raise ValueError(f'expected a petl source of the form dict(key=value, ...), got {petl!r}')
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


def with_overrides(petl: str, overrides: Dict[str, Any]) -> str:
    """``petl`` (a ``dict(...)`` source string) with ``overrides`` set, keys in order."""
    kwargs = petl_kwargs(petl)
    kwargs.update(overrides)
    return 'dict(' + ', '.join(f'{k}={v!r}' for k, v in kwargs.items()) + ')'
