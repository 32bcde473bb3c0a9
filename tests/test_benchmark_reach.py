"""A new method reaches the benchmark through its module and registration alone.

The worked example of ``docs/add_petl_method.md`` ((IA)^3) is registered as the docs say and
nothing else is edited: it must appear in the generated config set (leaves on every matrix
backbone it supports, a metafile, a demo config) whose configs parse and build, in the digits
demo's zoo and in the report tables; and the existing variants keep exactly their files.
"""
import os
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from runner_utils import result_record
from test_docs import first_python_block
from vpetl_mm.benchmark import report
from vpetl_mm.benchmark.matrices import expected_files
from vpetl_mm.benchmark.variants import (VARIANTS, demo_variants, published_names, registered,
                                          variants)
from vpetl_mm.registry import PETL_METHODS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'demo'))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
import digits_transfer  # noqa: E402
import params as params_tool  # noqa: E402  (tools/analysis/params.py: build and count)

IMAGE_DATASETS = 24
VIDEO_SETTINGS = 2 * 3  # (VideoMAE, Video Swin) x (SSv2, HMDB51, K400)


@pytest.fixture(scope='module')
def before():
    """The generated files without the example method."""
    assert 'IA3' not in PETL_METHODS.module_dict
    return expected_files()


@pytest.fixture
def ia3(before):
    exec(compile(first_python_block('add_petl_method.md'), 'add_petl_method.md', 'exec'), {})
    try:
        yield PETL_METHODS.get('IA3')
    finally:
        PETL_METHODS._module_dict.pop('IA3')


def _ia3_files(files):
    return {p: t for p, t in files.items() if '/ia3/' in p or p.endswith('_ia3.py')}


def test_default_variant_comes_from_the_class(ia3):
    [variant] = [v for v in variants() if v.petl == 'IA3']
    assert variant.folder == 'ia3' and variant.published == 'IA3'
    assert variant.title == ia3.__doc__.strip().splitlines()[0]
    assert variant.petl_source == "dict(_delete_=True, type='IA3')"
    assert variant.joins('image') and variant.joins('video')  # it supports every profile
    assert ia3 in registered() and not ia3.folds_into_host()  # it injects, and never merges


def test_generated_set_gains_the_method_and_nothing_else_changes(ia3, before):
    after = expected_files()
    added = set(after) - set(before)
    assert set(before) <= set(after)
    assert added == set(_ia3_files(after))
    assert len([p for p in added if p.startswith('configs/ia3/vit-b_')]) == IMAGE_DATASETS
    assert len([p for p in added if p.startswith('configs/ia3/video')]) == VIDEO_SETTINGS
    assert {'configs/ia3/metafile.yml', 'configs/demo/vit-tiny_digits5-9_ia3.py'} <= added
    assert all(after[p] == before[p] for p in before)  # existing variants: the same text
    assert "_base_ = ['../_base_/image/vit-b16_vtab-dtd.py']" in \
        after['configs/ia3/vit-b_vtab-dtd.py']


def _write_tree(root, files):
    """The method's generated files in a copy of configs/ whose bases are the real ones."""
    os.makedirs(root / 'configs' / 'demo')
    os.symlink(osp.join(ROOT, 'configs', '_base_'), root / 'configs' / '_base_')
    os.symlink(osp.join(ROOT, 'configs', 'demo', '_base_'), root / 'configs' / 'demo' / '_base_')
    for path, text in files.items():
        os.makedirs(root / osp.dirname(path), exist_ok=True)
        (root / path).write_text(text)


def test_its_configs_parse_and_build(ia3, tmp_path):
    files = _ia3_files(expected_files())
    _write_tree(tmp_path, files)
    configs = sorted(p for p in files if p.endswith('.py'))
    for path in configs:
        cfg = Config.fromfile(str(tmp_path / path))
        assert cfg.model.backbone.petl == dict(type='IA3'), path
        assert cfg.model.backbone.type == 'vpetl_mm.PETLBackbone', path
    # one build per backbone: ViT-B/16 (the docs' count), VideoMAE, Video Swin, the demo's ViT
    for path in ('configs/ia3/vit-b_vtab-dtd.py', 'configs/ia3/videomae-b_ssv2.py',
                 'configs/ia3/videoswin-b_ssv2.py', 'configs/demo/vit-tiny_digits5-9_ia3.py'):
        trainable = params_tool.build_counts(str(tmp_path / path))['backbone_trainable']
        assert trainable > 0, path
        if path.endswith('vit-b_vtab-dtd.py'):
            assert trainable == 12 * (2 * 768 + 3072)  # docs/add_petl_method.md


def test_it_joins_the_demo_zoo(ia3):
    assert ('IA3', 'ia3') in digits_transfer.zoo_methods()
    assert 'ia3' not in [k for _, k in digits_transfer.demo_methods()]
    assert [v.folder for v in demo_variants()][-1] == 'ia3'


def test_it_joins_the_report_tables(ia3):
    assert published_names()['ia3'] == 'IA3' and report.display_name('ia3') == 'IA3'
    records = [result_record(config=f'configs/{m}/vit-b_vtab-dtd.py', value=v)
               for m, v in (('ia3', 70.), ('lora', 71.))]
    table, points = report.build_table(records, 'vtab')
    assert [row[0] for row in table.rows] == ['LoRA', 'IA3']  # published order, then new ones
    assert [p.label for p in points] == ['LoRA', 'IA3']


def test_rows_name_registered_methods_and_unique_folders_per_matrix():
    """Every row's method is registered, and no matrix holds one folder twice."""
    for variant in VARIANTS:
        assert variant.method in registered(), variant.folder
    for matrix in ('image', 'video'):
        folders = [v.folder for v in variants() if v.joins(matrix)]
        assert len(folders) == len(set(folders)), matrix
