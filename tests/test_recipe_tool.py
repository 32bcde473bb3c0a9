"""``tools/analysis/recipe.py`` and its library (``vpetl_mm/apis/recipe.py``): the recipe a config
really runs, and the recorded source of it (``vpetl_mm/benchmark/sources.py``).

Real builds (shapes only, no weights) on one config of each family (image, video, dense,
examples, demo, benchmark) check the optimizer groups against the built model; the no-build part
(resolution, schedule, pipeline, loss, source) runs on a sample of every config folder: the
first config of each (folder, family), family = VTAB / FGVC / video / dense / other by the file
name, ``_base_`` fragments included. Reading one config costs ~0.3 s (its ``_base_`` chain is
parsed anew), so all 755 would take ~4 minutes; the sample (80) reaches every folder and every
kind of base chain in well under a minute (~40 s of this file's ~60 s on a loaded 2-core
machine). All 755 passed the same walk when the tool was written (``config_recipe(path,
build=False)`` on each, 350 s), the 576 generated image configs with no deviation from their
recorded sources, and one config per (folder, backbone) built and constructed its optimizer.
"""
import glob
import json
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import pytest

from vpetl_mm.apis.recipe import (config_recipe, format_recipe, is_augmenting,
                                  optimizer_groups)
from vpetl_mm.apis.shapes import build_model_shapes, load_config
from vpetl_mm.benchmark.sources import (NO_SOURCE, SOURCE_LOOKUPS, RecipeSource,
                                        register_source_lookup, source_text)
from vpetl_mm.utils import count_params

sys.path.insert(0, osp.dirname(__file__))
from runner_utils import PY, REPO  # noqa: E402

LORA_C100 = 'configs/lora/vit-b_vtab-cifar100.py'


def _family(stem: str) -> str:
    if stem.startswith('vit-b'):
        return 'image-' + stem.partition('_')[2].split('-')[0]  # vtab / fgvc
    if stem.startswith(('videomae', 'videoswin')):
        return 'video'
    return 'other' if not stem.startswith('swin') else 'dense'


def _sample() -> list:
    picked = OrderedDict()
    for path in sorted(glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)):
        rel = osp.relpath(path, REPO)
        key = (osp.dirname(rel), _family(osp.splitext(osp.basename(rel))[0]))
        picked.setdefault(key, rel)
    return list(picked.values())


SAMPLE = _sample()


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


@pytest.mark.parametrize('path', SAMPLE)
def test_no_build_part_resolves(path):
    recipe = config_recipe(osp.join(REPO, path), build=False)
    assert recipe['groups'] is None and isinstance(recipe['source'], str)
    json.dumps(recipe, default=str)  # what --json prints
    format_recipe(recipe)
    if '_base_' in path:  # a fragment: no loop, loader or model of its own
        return
    assert recipe['batch_size'] and (recipe['max_epochs'] or recipe['max_iters'])
    assert recipe['label_smoothing'] is not None and recipe['optimizer']['lr'] > 0


def test_sample_covers_every_folder():
    folders = {osp.dirname(p) for p in SAMPLE}
    expected = {osp.dirname(osp.relpath(p, REPO)) for p in
                glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)}
    assert folders == expected and len(SAMPLE) < 120


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
    assert source_text('lora', 'vit-tiny_digits5-9_lora') == NO_SOURCE  # a demo config

    def table(folder, setting):  # what a per-method recipe table will add
        return [RecipeSource(('lr',), 'org/repo@1234567 a.yaml')] if folder == 'ssf' else []

    register_source_lookup(table)
    try:
        assert source_text('ssf', 'vit-tiny_digits5-9_ssf') == 'lr: org/repo@1234567 a.yaml'
        assert source_text('ssf', 'vit-b_vtab-dtd').startswith('lr: org/repo@1234567 a.yaml; ')
    finally:
        SOURCE_LOOKUPS.remove(table)


def test_fragment_without_model_cannot_be_built():
    fragment = osp.join(REPO, 'configs/_base_/image/pipelines.py')
    assert config_recipe(fragment, build=False)['augmentation'] == []
    with pytest.raises(ValueError, match='has no `model`'):
        config_recipe(fragment)


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
