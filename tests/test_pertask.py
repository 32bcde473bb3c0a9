"""The per-task tables (vpetl_mm/benchmark/pertask.py) and what the generated configs make of them.

The tables cover only benchmark datasets and options the methods accept; the generated configs
carry the values (petl dict, lr / wd / batch, drop path) with a comment naming the source, and
merge with their bases into the settings the sources give.
"""
import os.path as osp

import pytest
from mmengine.config import Config

from vpetl_mm.benchmark import pertask
from vpetl_mm.benchmark.matrices import expected_files
from vpetl_mm.benchmark.variants import matrix_variants
from vpetl_mm.datasets import FGVC_DATASETS, VTAB_DATASETS
from vpetl_mm.registry import PETL_METHODS

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..'))
DATASETS = set(VTAB_DATASETS) | set(FGVC_DATASETS)
ROWS = {v.folder: v for v in matrix_variants('image')}


def _type(folder: str) -> str:
    return ROWS[folder].petl


def test_tables_name_known_methods_and_datasets():
    assert len(DATASETS) == 24
    assert set(pertask.PER_TASK) == {'hydra', 'repadapter', 'fact', 'gps', 'vpt_deep', 'noah'}
    for folder, table in pertask.PER_TASK.items():
        assert folder in ROWS, f'{folder}: no image variant'

        unknown = set(table.values) - DATASETS
        assert not unknown, f'{folder}: unknown dataset keys {sorted(unknown)}'
        if table.tasks is not None:
            assert set(table.tasks) == set(table.values)
        assert len(table.source.commit) == 40 and '/' in table.source.repo


@pytest.mark.parametrize('folder', sorted(pertask.PER_TASK))
def test_tables_use_known_method_options(folder):
    method = PETL_METHODS.get(_type(folder))
    for dataset, values in pertask.PER_TASK[folder].values.items():
        kwargs, recipe = pertask.split(values)
        unknown = set(kwargs) - set(method.DEFAULTS)
        assert not unknown, f'{folder} / {dataset}: {sorted(unknown)} not options of {method}'
        # the row's fixed options plus the task's build an instance (types, ranges checked)
        row = dict(ROWS[folder].kwargs)
        instance = method(**{**row, **kwargs})
        assert all(instance.hparams[k] == v for k, v in kwargs.items())
        assert set(recipe) <= set(pertask.RECIPE_KEYS)
        assert recipe.get('lr', 1.) > 0 and recipe.get('weight_decay', 0.) >= 0
        assert isinstance(recipe.get('batch_size', 1), int) and recipe.get('batch_size', 1) > 0
        assert 0 <= recipe.get('drop_path_rate', 0.) < 1


def test_table_values_are_in_the_sources_ranges():
    """Ranges the sources state: FacT mode / rank, GPS k, VPT's length grid, positive scales."""
    for values in pertask.FACT.values.values():
        assert values['mode'] in ('tt', 'tk') and values['rank'] in (4, 8, 16, 32)
        assert 0.01 <= values['scale'] <= 100
    assert all(v['k'] >= 1 and isinstance(v['k'], int) for v in pertask.GPS.values.values())
    assert all(v['length'] in (1, 5, 10, 50, 100, 200) for v in pertask.VPT_DEEP.values.values())
    for table in (pertask.HYDRA, pertask.REPADAPTER):
        assert all(0.1 <= v['scale'] <= 10 for v in table.values.values())
    # spot checks against the files read (docs/image.md lists the sources)
    assert pertask.HYDRA.values['vtab-dtd'] == dict(scale=0.1, dropout=0.2, lr=0.001,
                                                    weight_decay=0.0001, batch_size=32)
    assert pertask.REPADAPTER.values['vtab-smallnorb-azi'] == dict(scale=10.0)
    assert pertask.FACT.values['vtab-dtd'] == dict(mode='tk', rank=16, scale=0.01)
    assert pertask.GPS.values['vtab-pcam']['k'] == 2
    assert pertask.GPS.values['vtab-retinopathy']['k'] == 1
    assert pertask.GPS.values['fgvc-nabirds']['k'] == 20
    assert pertask.VPT_DEEP.values == {'vtab-sun397': dict(length=5),
                                       'vtab-eurosat': dict(length=100),
                                       'vtab-dmlab': dict(length=100)}


def test_with_overrides_keeps_order_replaces_and_appends():
    petl = "dict(_delete_=True, type='VPT', length=50, deep=True, dropout=0.1)"
    assert pertask.with_overrides(petl, dict(length=5)) == \
        "dict(_delete_=True, type='VPT', length=5, deep=True, dropout=0.1)"
    assert pertask.with_overrides("dict(_delete_=True, type='GPS')", dict(k=2)) == \
        "dict(_delete_=True, type='GPS', k=2)"
    with pytest.raises(ValueError, match='dict\\(key=value'):
        pertask.petl_kwargs("GPS(k=1)")


def test_lookup_and_cite():
    kwargs, recipe, cite = pertask.lookup('gps', 'fgvc-cars')
    assert kwargs == dict(k=15)
    assert recipe == dict(lr=0.0005, weight_decay=0.0, batch_size=32, drop_path_rate=0.0)
    assert cite == 'FightingFighting/GPS@72e0c31 train_scripts/vit/fgvc/stanford_cars/train_gps.sh'
    assert pertask.lookup('hydra', 'vtab-dtd')[2] == \
        'extremebird/Hydra@4138457 vtab1k/configs/hydra_both/dtd.yaml'
    assert pertask.lookup('hydra', 'fgvc-cub') is None  # Hydra publishes no FGVC settings
    assert pertask.lookup('lora', 'vtab-dtd') is None


def test_generated_text_carries_the_values_and_the_source():
    """The per-task values are the leaves' own recipe; the setting base keeps the common one
    (Hydra's row stands alone: its leaves inherit the data base and Hydra's recipe base)."""
    files = expected_files()
    hydra = files['configs/hydra/vit-b_vtab-dtd.py']
    assert ("_base_ = ['../_base_/image/vtab-dtd.py', "
            "'../_base_/recipes/vit-b16_hydra_vtab.py']") in hydra
    assert "petl=dict(_delete_=True, type='Hydra', scale=0.1, dropout=0.2)" in hydra
    assert 'extremebird/Hydra@4138457 vtab1k/configs/hydra_both/dtd.yaml' in hydra
    # Hydra's own loop: its batch, and the data base's pipeline without augmentation (the
    # setting base adds V-PETL's RandAugment; Hydra's leaves do not inherit it)
    assert 'train_dataloader = dict(batch_size=32)\n' in hydra
    assert 'param_scheduler = dict(t_initial=500' in \
        files['configs/_base_/recipes/vit-b16_hydra_vtab.py']
    assert 'train_dataloader = dict(batch_size=16)' in files['configs/hydra/vit-b_vtab-cifar100.py']
    assert 'optim_wrapper = dict(optimizer=dict(lr=0.001, weight_decay=0.0001))' in hydra
    setting = files['configs/_base_/image/vit-b16_vtab-dtd.py']
    assert 'optim_wrapper = dict(optimizer=dict(lr=0.0032, weight_decay=0.04))' in setting
    assert 'pipeline={{_base_.vtab_train_pipeline_aug}}' in setting
    # no published value: the row's defaults and the setting's recipe (V-PETL's FGVC protocol)
    cub = files['configs/hydra/vit-b_fgvc-cub.py']
    assert "petl=dict(_delete_=True, type='Hydra')))" in cub and 'extremebird' not in cub
    assert 'train_dataloader' not in cub and 'optim_wrapper' not in cub
    vpt = files['configs/vpt_deep/vit-b_vtab-dtd.py']
    assert "type='VPT', length=50, deep=True, dropout=0.1)" in vpt and 'KMnP' not in vpt
    # methods without a table are untouched; the CIFAR-100 per-method lr / wd is the leaf's
    assert "petl=dict(_delete_=True, type='LoRA', init='trunc_normal')))" in \
        files['configs/lora/vit-b_vtab-dtd.py']
    assert 'optim_wrapper = dict(optimizer=dict(lr=0.005, weight_decay=0.005))' in \
        files['configs/lora/vit-b_vtab-cifar100.py']
    assert all(len(line) <= 100 for text in files.values() for line in text.splitlines())


def test_generated_configs_merge_into_the_sources_settings():
    """The merged configs (with their bases) hold the per-task values and keep the rest."""
    gps = Config.fromfile(osp.join(REPO, 'configs', 'gps', 'vit-b_vtab-retinopathy.py'))
    backbone = gps.model.backbone
    assert backbone.type == 'vpetl_mm.PETLBackbone'
    assert backbone.petl == dict(type='GPS', k=1)
    assert backbone.backbone.drop_path_rate == 0.2 and backbone.backbone.arch == 'b'
    assert backbone.backbone.init_cfg.checkpoint == 'pretrained/ViT-B_16.npz'
    assert gps.train_dataloader.batch_size == 32
    assert gps.train_dataloader.dataset.task == 'diabetic_retinopathy'
    assert gps.train_dataloader.dataset.pipeline == gps.vtab_train_pipeline  # GPS: --no-aug
    assert gps.optim_wrapper.optimizer == dict(type='AdamW', lr=0.002, weight_decay=0.0,
                                               betas=(0.9, 0.999))
    fact = Config.fromfile(osp.join(REPO, 'configs', 'fact', 'vit-b_vtab-svhn.py'))
    assert fact.model.backbone.petl == dict(type='FacT', mode='tk', rank=32, scale=100.0)
    assert fact.model.backbone.backbone.drop_path_rate == 0.1  # the base's
    assert fact.train_dataloader.batch_size == 64  # FacT gives no batch: the base's
    vpt = Config.fromfile(osp.join(REPO, 'configs', 'vpt_deep', 'vit-b_vtab-sun397.py'))
    assert vpt.model.backbone.petl == dict(type='VPT', length=5, deep=True, dropout=0.1)
