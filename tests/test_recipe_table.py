"""The recipe table (vpetl_mm/benchmark/recipe_table.py) and the generated configs against it.

Every row has a source (``owner/repo@commit path``); the table has exactly one row per image
method folder x family (VTAB-1k, FGVC); every generated image config runs its row's recipe,
checked through ``tools/analysis/recipe.py``'s deviations on the no-build path (all 576 configs,
their ``_base_`` files read once: ~15-25 s); one build checks that SSF's scales and shifts are
not decayed. The issue's recipes are pinned by value. The 950 configs of the other image
backbones (``matrices_foundation.py``) run V-PETL's protocol row of their method (~20 s).
"""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.utils import calc_dynamic_intervals
from mmpretrain.registry import MODELS as CLS_MODELS

from vpetl_mm.apis.config_cache import cached_base_configs
from vpetl_mm.apis.protocol import stage_config
from vpetl_mm.apis.recipe import config_recipe
from vpetl_mm.apis.recipe_deviations import deviations
from vpetl_mm.benchmark.matrices import IMAGE, leaves, leaf_path
from vpetl_mm.benchmark.matrices_foundation import FOUNDATION, FOUNDATION_VTAB, RECIPE
from vpetl_mm.benchmark.recipe_render import image_leaf_recipe
from vpetl_mm.benchmark.recipe_resolve import TABLE, recipe_choice, resolve
from vpetl_mm.benchmark.recipe_table import COMMON, HEAD_INITS, RECIPE_FIELDS, ROWS
from vpetl_mm.benchmark.variants import VARIANTS, matrix_variants
from vpetl_mm.datasets import FGVC_DATASETS, VTAB_DATASETS
from vpetl_mm.models.data_preprocessor import NORMALIZATIONS

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..'))
SOURCE = re.compile(r'^[\w.-]+/[\w.-]+@[0-9a-f]{7} \S+')
FAMILY_KEYS = dict(vtab=set(VTAB_DATASETS), fgvc=set(FGVC_DATASETS))
LEAVES = [leaf_path(*leaf) for leaf in leaves(IMAGE)]
# the backbones after ViT-B/16 (matrices_foundation.py): every config, V-PETL's protocol; the
# input normalisation is the backbone's own (its base config), not the protocol's ImageNet one
FOUNDATION_LEAVES = leaves(FOUNDATION) + leaves(FOUNDATION_VTAB)
OWN_NORM = {'dinov2-b14': 'imagenet', 'clip-b16': 'clip', 'vit-l16': 'imagenet',
            'vit-h14': 'imagenet', 'eva02-b14': 'clip', 'convnext-b': 'imagenet'}
# image methods whose own VTAB / FGVC recipes are not read into the table yet: they train with
# the common rows (V-PETL's protocol); DoRA, GLoRA and Adapter+ have rows (docs/methods-2024.md)
NO_ROW_YET: set = set()


def _recipe(folder: str, dataset: str, **options) -> dict:
    return config_recipe(osp.join(REPO, 'configs', folder, f'vit-b_{dataset}.py'),
                         options or None, build=False)


@pytest.mark.parametrize('row', list(COMMON.values()) + list(ROWS),
                         ids=lambda r: f'{r.folder}-{r.family}')
def test_every_row_has_a_source_and_known_keys(row):
    assert SOURCE.match(row.source), row.source
    assert row.family in FAMILY_KEYS
    assert set(row.values) <= set(RECIPE_FIELDS)
    assert set(row.tasks) <= FAMILY_KEYS[row.family]
    for values in row.tasks.values():
        assert set(values) <= set(RECIPE_FIELDS)
    if not row.inherits:  # a stand-alone row records the whole recipe it was read for
        assert {'optimizer', 'max_epochs', 'label_smoothing', 'augmentation'} <= set(row.values)
    for key, allowed in (('head_init', HEAD_INITS), ('normalisation', NORMALIZATIONS)):
        assert row.values.get(key, HEAD_INITS[0] if key == 'head_init' else 'imagenet') in allowed


def test_one_row_per_image_method_and_family():
    """A row for each listed image variant; a method registered later (docs/add_petl_method.md)
    reaches the benchmark without one and trains with the common row."""
    folders = {v.folder for v in VARIANTS if v.joins('image')} - NO_ROW_YET
    assert set(TABLE) == {(f, fam) for f in folders for fam in FAMILY_KEYS}
    assert len(TABLE) == len(ROWS)  # no (folder, family) twice
    assert {v.folder for v in matrix_variants('image')} >= folders


def test_every_generated_image_config_runs_its_row():
    """The no-build recipe of each generated image config (24 datasets per method) equals the
    table's, key by key, and the config runs its method."""
    assert len(LEAVES) == 24 * len(matrix_variants('image'))  # every image method x dataset
    with cached_base_configs():
        for (variant, _, _), path in zip(leaves(IMAGE), LEAVES):
            recipe = config_recipe(osp.join(REPO, path), build=False)
            assert recipe['deviations'] == [], (path, recipe['deviations'])
            # and the method: a leaf whose `model` lacks its petl dict would run the base's
            petl = recipe['method']['petl']
            assert petl['type'] == variant.petl, (path, petl)
            assert set(variant.kwargs) <= set(petl), (path, petl)  # values: per task
            folder, stem = path.split('/')[1], osp.splitext(path)[0].split('/')[-1]
            expected = resolve(folder, stem.split('_', 1)[1])
            checked = {k for s in recipe['sources'] for k in s['values']}
            assert set(expected.values) <= checked, path
            assert recipe['source'].count('@') >= 1


def test_foundation_configs_run_the_vpetl_protocol():
    """Each config of the backbones after ViT-B/16 runs its method's row of V-PETL's protocol
    (the recipe table's 'vpetl' choice), key by key, with its backbone's own normalisation; a
    PACE config is its LoRA config with the model wrapped (all ~950 configs, ~20 s)."""
    assert len(FOUNDATION_LEAVES) == 24 * (2 * 11 + 2 * 8) + 19 * 2
    with cached_base_configs(), recipe_choice(RECIPE):
        for variant, backbone, dataset in FOUNDATION_LEAVES:
            path = osp.join(REPO, leaf_path(variant, backbone, dataset))
            if variant.wraps:
                _check_wrapper(path, path.replace(f'/{variant.folder}/', f'/{variant.wraps}/'))
                continue
            recipe = config_recipe(path, build=False)
            expected = resolve(variant.folder, dataset.key)
            recipe['sources'] = [dict(source='backbone base',
                                      values=dict(normalisation=OWN_NORM[backbone.key]))] + [
                dict(source=text, values=values) for text, values in expected.layers]
            assert deviations(recipe) == [], (path, deviations(recipe))
            assert recipe['method']['petl']['type'] == variant.petl, path


def _check_wrapper(path: str, inner: str) -> None:
    """PACE's config: the wrapped config's model inside vpetl_mm.PACE, the rest the same."""
    outer, inner = Config.fromfile(path).to_dict(), Config.fromfile(inner).to_dict()
    model = outer.pop('model')
    assert model['type'] == 'vpetl_mm.PACE' and model['model'] == inner.pop('model'), path
    assert outer == inner, path


def test_cached_bases_read_the_same_configs():
    paths = [osp.join(REPO, p) for p in ('configs/ssf/vit-b_vtab-cifar100.py',
                                         'configs/gps/vit-b_fgvc-cars.py')]
    plain = [Config.fromfile(p).to_dict() for p in paths]
    with cached_base_configs() as cache:
        cached = [Config.fromfile(p).to_dict() for p in paths for _ in range(2)]
        assert cache  # the bases were kept
    assert cached == [plain[0], plain[0], plain[1], plain[1]]


def test_a_changed_recipe_shows_as_deviations():
    recipe = _recipe('ssf', 'vtab-cifar100', **{
        'optim_wrapper.paramwise_cfg.flat_decay_mult': 1.0, 'train_cfg.max_epochs': 100,
        'param_scheduler.lr_min': 1e-5, 'data_preprocessor.norm': 'imagenet',
        'model.head.init_cfg': None, 'model.train_cfg.augments': []})
    assert {d['key']: (d['recorded'], d['runs']) for d in recipe['deviations']} == {
        'decay_1d': (False, True), 'decay_bias': (False, True), 'max_epochs': (110, 100),
        'lr_min': (1e-8, 1e-5), 'normalisation': ('inception', 'imagenet'),
        'head_init': ('trunc_normal', 'default'), 'batch_augments': (('CutMix', ), ())}


def test_the_issue_recipes():
    with cached_base_configs():
        _check_issue_recipes()


def _check_issue_recipes():
    ssf = _recipe('ssf', 'vtab-cifar100')
    assert (ssf['optimizer']['lr'], ssf['optimizer']['weight_decay']) == (5e-3, 5e-5)
    assert ssf['label_smoothing'] == 0. and ssf['augmentation'] == ['batch: CutMix(alpha=1.0)']
    assert ssf['max_epochs'] == 110 and ssf['schedule'][0]['lr_min'] == 1e-8
    fact = _recipe('fact', 'vtab-eurosat')  # scale 100 at FacT's own lr 1e-3 / wd 1e-4
    assert fact['method']['petl']['scale'] == 100.
    assert (fact['optimizer']['lr'], fact['optimizer']['weight_decay']) == (1e-3, 1e-4)
    assert fact['augmentation'] == [] and fact['label_smoothing'] == 0.
    hydra = _recipe('hydra', 'vtab-dtd')
    assert hydra['schedule'][0]['t_initial'] == 500 and hydra['max_epochs'] == 100
    gps = _recipe('gps', 'vtab-dtd')
    assert gps['augmentation'] == [] and gps['label_smoothing'] == 0.
    sct = {t: _recipe('sct', f'vtab-{t}') for t in ('svhn', 'flowers102', 'clevr-dist')}
    assert (sct['svhn']['optimizer']['lr'], sct['svhn']['batch_size']) == (0.075, 32)
    assert sct['flowers102']['augmentation'] == [] and sct['clevr-dist']['augmentation']
    vpt = _recipe('vpt_shallow', 'vtab-cifar100')['optimizer']
    assert (vpt['lr'], vpt['weight_decay']) == (1e-3, 1e-4)
    full = _recipe('full', 'vtab-cifar100')
    assert (full['optimizer']['lr'], full['optimizer']['weight_decay']) == (5e-4, 0.1)
    assert (full['schedule'][0]['warmup_lr_init'], full['schedule'][0]['lr_min']) == (1e-4, 1e-6)
    assert _recipe('bitfit', 'vtab-caltech101')['optimizer']['weight_decay'] == 0.25
    assert _recipe('lntune', 'vtab-caltech101')['optimizer']['lr'] == 5e-3
    assert _recipe('lora', 'vtab-kitti')['label_smoothing'] == 0.1  # every V-PETL YAML
    assert [_recipe(f, 'fgvc-cub')['batch_size'] for f in ('lora', 'adapter', 'full', 'sct')] \
        == [128, 128, 64, 64]
    dtl = _recipe('dtl', 'vtab-dtd')
    assert dtl['paramwise_cfg']['bias_decay_mult'] == 0. and dtl['batch_size'] == 32
    plus = _recipe('adapter_plus', 'vtab-dtd')  # visinf/adapter_plus conf/train/default.yaml
    assert (plus['optimizer']['lr'], plus['optimizer']['weight_decay']) == (1e-3, 1e-4)
    assert plus['paramwise_cfg']['flat_decay_mult'] == 0. and plus['label_smoothing'] == 0.
    assert (plus['schedule'][0]['warmup_lr_init'], plus['schedule'][0]['lr_min']) == (1e-5, 1e-6)
    assert plus['augmentation'] == [] and plus['max_epochs'] == 100
    glora = _recipe('glora', 'vtab-dtd')  # ViT-Slim GLoRA/supernet.py: 500 epochs at 1e-4
    assert (glora['optimizer']['lr'], glora['max_epochs']) == (1e-4, 500)
    assert glora['schedule'][0]['t_initial'] == 500
    assert resolve('dora', 'vtab-cifar100').values == resolve('lora', 'vtab-cifar100').values


def test_head_inits_and_ssf_scales_without_decay():
    """The built optimizer: SSF's 1-D scales / shifts and the head bias at wd 0 (SSF's
    optim_factory); the V-PETL head starts as nn.Linear does, not at zero."""
    recipe = config_recipe(osp.join(REPO, 'configs/ssf/vit-b_vtab-cifar100.py'))
    groups = {(g['role'], g['weight_decay']): g for g in recipe['groups']}
    assert groups['petl', 0.]['params'] == 205_824 and ('petl', 5e-5) not in groups
    assert groups['head', 5e-5]['names_sample'] == ['head.layers.head.weight']
    init_default_scope('mmpretrain')
    for path, kind in (('configs/lora/vit-b_vtab-dtd.py', 'default'),
                       ('configs/ssf/vit-b_vtab-dtd.py', 'trunc_normal')):
        cfg = Config.fromfile(osp.join(REPO, path))
        torch.manual_seed(0)
        head = CLS_MODELS.build(cfg.model.head)
        head.init_weights()
        weight = head.layers.head.weight
        assert weight.abs().max() > 0 and 0.015 < weight.std() < 0.025, (path, kind)
        assert config_recipe(osp.join(REPO, path), build=False)['head_init_kind'] == kind


def test_legacy_stage_follows_the_reference_evaluations():
    """--protocol legacy: FGVC trains on train only, and each method's test epochs."""
    with cached_base_configs():
        adapter = Config.fromfile(osp.join(REPO, 'configs/adapter/vit-b_fgvc-cub.py'))
        sct = Config.fromfile(osp.join(REPO, 'configs/sct/vit-b_vtab-dtd.py'))
    adapter = stage_config(adapter, 'legacy', 'work', 42)
    assert adapter.train_dataloader.dataset.split == 'train'
    assert adapter.val_dataloader.dataset.split == 'test'
    assert (adapter.train_cfg.val_begin, adapter.train_cfg.val_interval) == (90, 10)
    sct = stage_config(sct, 'legacy', 'work', 42)
    assert sct.train_dataloader.dataset.split == 'trainval'
    milestones, intervals = calc_dynamic_intervals(sct.train_cfg.val_interval,
                                                   sct.train_cfg.dynamic_intervals)
    assert (milestones, intervals) == ([0, 52], [10, 1])  # every 10, every epoch after 50
    final = stage_config(sct, 'final', 'work', 42)
    assert final.train_cfg.val_interval == 101  # the default protocol ignores legacy_eval


def test_the_other_choice_is_one_option_away():
    """generate_configs.py --recipe vpetl: V-PETL's protocol for every method (own-repository
    rows and per-task recipe values left out, per-task method arguments kept)."""
    with recipe_choice('vpetl'):
        ssf = image_leaf_recipe('ssf', 'vtab-cifar100', "dict(_delete_=True, type='SSF')")
        hydra = image_leaf_recipe('hydra', 'vtab-dtd', "dict(_delete_=True, type='Hydra')")
        assert resolve('ssf', 'vtab-cifar100').values == resolve('*', 'vtab-cifar100').values
    assert ssf == (None, [])
    assert 'scale=0.1, dropout=0.2' in hydra[0] and hydra[1] == []
    assert resolve('ssf', 'vtab-cifar100').values['weight_decay'] == 5e-5  # back to published
    with pytest.raises(ValueError, match='unknown recipe choice'):
        with recipe_choice('mine'):
            pass
