"""``tools/analysis/recipe.py`` and its library (``vpetl_mm/apis/recipe.py``): the recipe a config
really runs, and the recorded source of it (``vpetl_mm/benchmark/sources.py``,
``vpetl_mm/apis/recipe_sources.py``).

Real builds (shapes only, no weights) on one config of each family (image, foundation, PACE,
video, dense, examples, demo, benchmark) check the optimizer groups against the built model; the
no-build part (resolution, schedule, pipeline, loss, source, deviations) runs on EVERY config
under ``configs/`` (~2000; the ``_base_`` files parsed once: ``cached_base_configs``, 15-40 s of
this file's time on a 2-core machine): each one resolves with a recorded source, or is a
``_base_`` fragment the tool refuses with one line.
"""
import glob
import json
import os.path as osp
import runpy
import subprocess
import sys

import pytest

from vpetl_mm.apis.config_cache import cached_base_configs
from vpetl_mm.apis.recipe import (config_recipe, format_recipe, is_augmenting,
                                  optimizer_groups)
from vpetl_mm.apis.recipe_sources import NotRunnableConfig
from vpetl_mm.apis.shapes import build_model_shapes, load_config
from vpetl_mm.benchmark.sources import (NO_SOURCE, SOURCE_LOOKUPS, RecipeSource,
                                        register_source_lookup, source_text)
from vpetl_mm.utils import count_params

sys.path.insert(0, osp.dirname(__file__))
from runner_utils import PY, REPO  # noqa: E402

LORA_C100 = 'configs/lora/vit-b_vtab-cifar100.py'


def test_lora_cifar100_known_figures():
    recipe = config_recipe(LORA_C100)
    assert recipe['optimizer']['type'] == 'AdamW'
    assert (recipe['optimizer']['lr'], recipe['optimizer']['weight_decay']) == (0.005, 0.005)
    assert recipe['batch_size'] == 64 and recipe['max_epochs'] == 100
    assert recipe['label_smoothing'] == 0.1 and recipe['augmentation'] == []
    petl, head = recipe['groups']
    assert (petl['role'], petl['params'], petl['tensors']) == ('petl', 294_912, 24)
    assert (petl['lr'], petl['weight_decay']) == (0.005, 0.005)
    assert petl['names_sample'][0].endswith('petl_lora_qkv.lora_A')
    assert (head['role'], head['params'], head['tensors']) == ('head', 768 * 100 + 100, 2)
    assert recipe['warmup'].startswith('10 epochs linear from 1e-06')
    assert recipe['schedule'][0]['type'] == 'vpetl_mm.TimmCosineLR'
    assert recipe['drop_path'] == {'backbone.backbone.drop_path_rate': 0.1}
    assert recipe['normalisation']['norm'] == 'imagenet'
    assert recipe['normalisation']['values'][0] == pytest.approx([123.675, 116.28, 103.53])
    assert recipe['protocol'] == 'default' and recipe['method']['published'] == 'LoRA'
    assert recipe['head_init'] == {'head': "VisionTransformerClsHead: init_cfg=None (the "
                                           "layers' own init: nn.Linear's)"}
    assert recipe['head_init_kind'] == 'default'  # V-PETL's reset_classifier, not zeros
    assert 'run_vit_lora.sh' in recipe['source'] and recipe['deviations'] == []
    assert recipe['sources'][0]['keys'] == ['lr', 'weight_decay']
    assert recipe['sources'][0]['source'].endswith('ImageClassification/scripts/run_vit_lora.sh')
    text = format_recipe(recipe)
    assert 'petl' in text and '294,912' in text and 'label smoothing: 0.1' in text


def test_deviations_from_the_recorded_source():
    """A generated config runs its source's values; an override shows up as a deviation."""
    hydra = config_recipe(osp.join(REPO, 'configs/hydra/vit-b_vtab-cifar100.py'), build=False)
    assert hydra['deviations'] == [] and hydra['batch_size'] == 16  # Hydra's own YAML
    assert [s['values']['scale'] for s in hydra['sources'] if 'scale' in s['values']] == [0.1]
    changed = config_recipe(osp.join(REPO, 'configs/hydra/vit-b_vtab-cifar100.py'), {
        'train_dataloader.batch_size': 64, 'model.backbone.petl.scale': 1.0,
        'model.head.loss.label_smooth_val': 0.2}, build=False)
    assert {d['key']: (d['recorded'], d['runs']) for d in changed['deviations']} == {
        'batch_size': (16, 64), 'scale': (0.1, 1.0), 'label_smoothing': (0.0, 0.2)}
    assert 'extremebird/Hydra' in changed['deviations'][0]['source']
    assert 'batch_size runs 64, recorded 16' in format_recipe(changed)


def test_cfg_options_reach_the_constructor():
    """--cfg-options change what the constructor makes: no decay on the PETL parameters only."""
    recipe = config_recipe(LORA_C100, {'optim_wrapper.paramwise_cfg.petl.decay_mult': 0.,
                                       'train_dataloader.batch_size': 32})
    groups = {g['role']: g for g in recipe['groups']}
    assert groups['petl']['weight_decay'] == 0. and groups['head']['weight_decay'] == 0.005
    assert recipe['batch_size'] == 32


@pytest.mark.parametrize('path', [
    'configs/lora/videoswin-b_ssv2.py',  # video: AMP wrapper (built as a plain one on CPU)
    'configs/mona/swin-b_coco.py',  # dense: mmdet's paramwise rules applied to PETL params
    'configs/examples/vit-b16_vtab-dtd_adaptformer.py',
    'configs/demo/vit-tiny_digits5-9_ssf.py',
    'configs/benchmark/swin-b_cls.py',
    'configs/lora/convnext-b_vtab-dtd.py',  # a foundation backbone (not a ViT)
    'configs/mona/dinov2-b14_ade20k.py',  # the DINOv2 UperNet setting
])
def test_groups_cover_the_trainable_parameters(path):
    cfg = load_config(osp.join(REPO, path))
    model = build_model_shapes(cfg)
    groups = optimizer_groups(cfg, model)
    counts = count_params(model)
    assert sum(g['params'] for g in groups) == counts['trainable']
    assert sum(g['params'] for g in groups if g['role'] == 'petl') in (
        counts['backbone_trainable'], 0)  # 0: full fine-tuning has no PETL parameters
    assert any(g['lr'] == cfg.optim_wrapper.optimizer.lr for g in groups)
    assert all(len(g['names_sample']) == min(3, g['tensors']) for g in groups)


def _configs() -> list:
    return sorted(osp.relpath(p, REPO) for p in
                  glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True))


def test_every_config_resolves_with_a_source():
    """Every config under configs/: the recipe resolves (no build), has a recorded source and,
    where that source is its own (not a config it inherits), runs it; a file the tool refuses
    is a _base_ fragment, with a one-line reason."""
    paths, refused, inherited = _configs(), [], []
    assert len(paths) > 1900
    with cached_base_configs():
        for path in paths:
            try:
                recipe = config_recipe(osp.join(REPO, path), build=False)
            except NotRunnableConfig as err:
                assert '/_base_/' in path and '\n' not in str(err), (path, err)
                refused.append(path)
                continue
            assert recipe['groups'] is None and recipe['source'] != NO_SOURCE, path
            assert recipe['batch_size'] and (recipe['max_epochs'] or recipe['max_iters']), path
            assert recipe['label_smoothing'] is not None and recipe['optimizer']['lr'] > 0
            json.dumps(recipe, default=str)  # what --json prints
            assert 'source: ' in format_recipe(recipe)
            if any(' (through ' in s['source'] or 'it inherits)' in s['source']
                   for s in recipe['sources']):
                inherited.append(path)  # examples, benchmark: changes shown as deviations
            else:
                assert recipe['deviations'] == [], (path, recipe['deviations'])
    assert len(refused) < 60 and all(p.startswith('configs/_base_/') for p in refused)
    assert 'configs/_base_/image/vit-b16_vtab-dtd.py' not in refused  # a setting base runs
    assert {osp.dirname(p) for p in inherited} <= {'configs/examples', 'configs/benchmark',
                                                  'configs/_base_/dense'}


def test_recipe_fields_of_augmented_and_video_configs():
    dtd = config_recipe(osp.join(REPO, 'configs/lora/vit-b_vtab-dtd.py'), build=False)
    assert [a.split('(')[0] for a in dtd['augmentation']] == ['RandomFlip', 'RandAugment']
    assert 'configs/model_lora/vtab/dtd.yaml' in dtd['source']
    video = config_recipe(osp.join(REPO, 'configs/lora/videoswin-b_ssv2.py'), build=False)
    assert 'VideoActionRecognition/train/train_model_LoRA.py' in video['source']
    assert video['deviations'] == [] and video['label_smoothing'] == 0.
    assert video['warmup'].startswith('LinearLR 0-') and video['wrapper'] == 'AmpOptimWrapper'
    assert video['head_init'] == {'cls_head': 'I3DHead: init_weights(), init_std=0.01'}
    assert is_augmenting(dict(type='mmaction.Flip')) and not is_augmenting(dict(type='Resize'))


def test_sources_chain_and_plug_in():
    assert 'extremebird/Hydra@4138457' in source_text('hydra', 'vit-b_vtab-cifar100')
    assert source_text('lora', 'vit-b_fgvc-cub').startswith(
        'batch_size: synbol/Parameter-Efficient-Transfer-Learning-Benchmark@c188fad '
        'ImageClassification/configs/model_lora/fgvc/CUB_200_2011.yaml; ')
    assert 'mmdetection@fff646d' in source_text('lora', 'swin-b_coco')  # recipe_table_dense
    assert "vpetl_mm's own demo recipe" in source_text('lora', 'vit-tiny_digits5-9_lora')
    assert source_text('ssf', 'vit-s16_cub200') == NO_SOURCE  # a setting no lookup knows

    def table(folder, setting):  # what a per-method recipe table will add
        return [RecipeSource(('lr',), 'org/repo@1234567 a.yaml')] if folder == 'ssf' else []

    register_source_lookup(table)
    try:
        assert source_text('ssf', 'vit-s16_cub200') == 'lr: org/repo@1234567 a.yaml'
        assert source_text('ssf', 'vit-b_vtab-dtd').startswith('lr: org/repo@1234567 a.yaml; ')
    finally:
        SOURCE_LOOKUPS.remove(table)


def test_fragment_is_refused_in_one_line(capsys, monkeypatch):
    fragment = 'configs/_base_/image/pipelines.py'
    for build in (False, True):
        with pytest.raises(NotRunnableConfig, match='_base_ fragment, not a runnable config'):
            config_recipe(osp.join(REPO, fragment), build=build)
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, 'argv', ['recipe.py', fragment])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(osp.join(REPO, 'tools/analysis/recipe.py'), run_name='__main__')
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f'tools/analysis/recipe.py: {fragment} is a _base_ fragment')


def test_pace_is_seen_through():
    """PACE: the inner LoRA model's method, groups and head; lambda / sigma with PACE's source."""
    pace = config_recipe(osp.join(REPO, 'configs/pace_lora/dinov2-b14_fgvc-cub.py'))
    lora = config_recipe(osp.join(REPO, 'configs/lora/dinov2-b14_fgvc-cub.py'))
    assert pace['model_wrappers'] == [dict(type='vpetl_mm.PACE', lambda_=1.0, sigma=1.2)]
    assert pace['method']['petl']['type'] == 'LoRA' and pace['method']['published'] == 'PACE'
    assert pace['groups'] == lora['groups'] and pace['groups'][1]['role'] == 'head'
    for key in ('head_init', 'head_init_kind', 'drop_path', 'losses', 'label_smoothing',
                'normalisation', 'batch_size'):
        assert pace[key] == lora[key], key
    assert pace['deviations'] == [] and pace['source'].startswith(lora['source'])
    assert 'lambda_, sigma: MaxwellYaoNi/PACE@9fee345' in pace['source']
    assert 'model wrapper: vpetl_mm.PACE(lambda_=1.0, sigma=1.2)' in format_recipe(pace)
    changed = config_recipe(osp.join(REPO, 'configs/pace_lora/dinov2-b14_fgvc-cub.py'),
                            {'model.sigma': 0.5}, build=False)
    assert [(d['key'], d['recorded'], d['runs']) for d in changed['deviations']] == [
        ('sigma', 1.2, 0.5)]


def test_foundation_configs_cite_the_vpetl_row_and_their_backbone_base():
    recipe = config_recipe(osp.join(REPO, 'configs/ssf/clip-b16_vtab-dtd.py'), build=False)
    texts = [s['source'] for s in recipe['sources']]
    assert texts[0].startswith('synbol/Parameter-Efficient-Transfer-Learning-Benchmark@c188fad')
    assert not any('dongzelian/SSF' in t for t in texts)  # V-PETL's protocol, not SSF's own
    assert texts[-1].startswith('configs/_base_/image/clip-b16.py')
    assert recipe['sources'][-1]['keys'] == ['normalisation'] and recipe['deviations'] == []
    ade = config_recipe(osp.join(REPO, 'configs/lora/dinov2-b14_ade20k.py'), build=False)
    assert 'vit_vit-b16_mln_upernet_8xb2-160k_ade20k-512x512.py' in ade['source']


def test_cli_json_on_stdout_only():
    proc = subprocess.run([PY, 'tools/analysis/recipe.py', LORA_C100, '--json'], cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'PETLOptimWrapperConstructor' in proc.stderr  # the log lines stay off stdout
    recipe = json.loads(proc.stdout)
    for key in ('groups', 'batch_size', 'max_epochs', 'label_smoothing', 'augmentation',
                'source'):
        assert key in recipe
    assert recipe['groups'][0]['params'] == 294_912
    assert set(recipe['groups'][0]) >= {'params', 'tensors', 'lr', 'weight_decay',
                                        'names_sample'}
