"""The video and dense recipe rows (recipe_table_video.py, recipe_table_dense.py) and the configs.

Every video leaf (generated) and every dense config (hand-written) under ``configs/`` has a
recorded source, runs its rows' values (``tools/analysis/recipe.py``'s deviations, no build)
and the schedule its source implies (warm-up, decay steps / cosine / poly); the rows are pinned
to what the sources say on the points the issue names.
"""
import glob
import os.path as osp
import re

import pytest

from vpetl_mm.apis.config_cache import cached_base_configs
from vpetl_mm.apis.recipe import config_recipe
from vpetl_mm.benchmark.matrices import VIDEO, leaf_path, leaves
from vpetl_mm.benchmark.recipe_settings import matching_rows
from vpetl_mm.benchmark.recipe_table_dense import DENSE_ROWS
from vpetl_mm.benchmark.recipe_table_video import VIDEO_ROWS
from vpetl_mm.benchmark.sources import NO_SOURCE

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..'))
SOURCE = re.compile(r'^[\w.-]+/[\w.-]+@[0-9a-f]{7} \S+')
VIDEO_CONFIGS = [leaf_path(*leaf) for leaf in leaves(VIDEO)]
DENSE_SETTINGS = ('swin-b_coco', 'swin-b_cascade-coco', 'swin-l_voc', 'swin-l_ade20k',
                  'swin-l_voc12aug', 'dinov2-b14_ade20k')
DENSE_CONFIGS = sorted(osp.relpath(p, REPO) for s in DENSE_SETTINGS
                       for p in glob.glob(osp.join(REPO, 'configs', '*', f'{s}.py')))


_NO_DECAY = ('absolute_pos_embed', 'relative_position_bias_table', 'norm')
# mmseg's official ViT-B UperNet config: no decay on the position embedding, class token, norms
_VIT_NO_DECAY = ('pos_embed', 'cls_token', 'norm')


def _check(path: str) -> None:
    folder, stem = path.split('/')[1], osp.splitext(osp.basename(path))[0]
    rows = matching_rows(VIDEO_ROWS + DENSE_ROWS, folder, stem)
    recipe = config_recipe(osp.join(REPO, path), build=False)
    assert rows and recipe['source'] != NO_SOURCE, path
    assert recipe['deviations'] == [], (path, recipe['deviations'])
    expected = next(row.schedule for row in rows if row.schedule)
    runs = recipe['schedule']
    assert len(runs) == len(expected), (path, runs)
    for want, got in zip(expected, runs):
        assert {k: got.get(k) for k in want} == dict(want), (path, got)
    if stem.startswith(('swin-', 'dinov2-')):  # every dense source: no decay on positions, norms
        keys = recipe['paramwise_cfg']['custom_keys']
        no_decay = _NO_DECAY if stem.startswith('swin-') else _VIT_NO_DECAY
        assert {k: keys[k]['decay_mult'] for k in keys} == dict.fromkeys(no_decay, 0.), path


@pytest.mark.parametrize('row', VIDEO_ROWS + DENSE_ROWS, ids=lambda r: r.setting)
def test_every_row_has_a_source(row):
    assert SOURCE.match(row.source), row.source
    # every setting has a row for all its methods that says the schedule
    assert any(r.setting == row.setting and r.schedule and not r.folders
               for r in VIDEO_ROWS + DENSE_ROWS)


def test_every_video_and_dense_config_runs_its_rows():
    # 11 methods x the 5 Swin settings, 6 on DINOv2 UperNet ADE20K
    assert len(VIDEO_CONFIGS) >= 50 and len(DENSE_CONFIGS) == 55 + 6
    with cached_base_configs():
        for path in VIDEO_CONFIGS + DENSE_CONFIGS:
            _check(path)


def test_the_sources_values():
    """Pinned: V-PETL's video script, Mona's per-task recipes and Mona's own ADE20K row."""
    with cached_base_configs():
        swin = config_recipe(osp.join(REPO, 'configs/bapat/videoswin-b_ssv2.py'), build=False)
        voc = config_recipe(osp.join(REPO, 'configs/lora/swin-l_voc.py'), build=False)
        ade = {f: config_recipe(osp.join(REPO, f'configs/{f}/swin-l_ade20k.py'), build=False)
               for f in ('mona', 'adapter')}
    assert (swin['optimizer']['type'], swin['optimizer']['lr'], swin['max_epochs']) == \
        ('SGD', 0.05, 90)
    assert 'train_model_patt.py' in swin['source']
    assert [e['type'] for e in voc['schedule']] == ['MultiStepLR']  # Mona's VOC: no warm-up
    assert 'voc_retinanet_swin_large_1x_lora.py' in voc['source']
    assert (ade['mona']['optimizer']['lr'], ade['adapter']['optimizer']['lr']) == (3e-4, 6e-5)
    assert ade['mona']['drop_path'] != ade['adapter']['drop_path']
    dinov2 = matching_rows(DENSE_ROWS, 'lora', 'dinov2-b14_ade20k')
    assert [r.source.split()[:2] for r in dinov2] == [[
        'open-mmlab/mmsegmentation@04d3c87',
        'configs/vit/vit_vit-b16_mln_upernet_8xb2-160k_ade20k-512x512.py,']]
    assert (dinov2[0].values['lr'], dinov2[0].values['drop_path_rate']) == (6e-5, 0.)
    lorand = matching_rows(DENSE_ROWS, 'lorand', 'swin-b_cascade-coco')
    assert [r.source.count('<method>') for r in lorand] == [1]  # no file of its own: '*'
