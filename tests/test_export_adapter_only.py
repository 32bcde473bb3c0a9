"""tools/export.py beyond the merged stock models (test_export.py): exports that stay
adapter-only and rebuild with vpetl_mm, what an export keeps of the frozen weights, the errors
(one line each), and a checkpoint written by tools/train.py exported through the CLI.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

sys.path.insert(0, osp.dirname(__file__))

from mmengine.config import Config  # noqa: E402
from runner_utils import PY, REPO, run_tool, train, vtab_options, write_tiny_vtab  # noqa: E402
from test_export import (VIT, VIT_INPUT, inputs_of, make_checkpoint, write_config,  # noqa: E402
                         write_pretrained)

from vpetl_mm.apis import export_model, load_petl_checkpoint  # noqa: E402
from vpetl_mm.apis.export import read_checkpoint  # noqa: E402
from vpetl_mm.apis.stock_check import build_model, compare, model_outputs  # noqa: E402
from vpetl_mm.compat import decode_checkpoint  # noqa: E402


def test_one_method_that_does_not_fold_keeps_the_model_adapter_only(tmp_path):
    cfg = write_config(tmp_path / 'mix.py', VIT, [dict(type='LoRA', rank=2, alpha=2),
                                                  dict(type='Adapter', bottleneck=4)])
    make_checkpoint(cfg, tmp_path / 'src.pth')
    result = export_model(cfg, str(tmp_path / 'src.pth'), str(tmp_path / 'out'))
    assert result.mode == 'full'  # no Pretrained init_cfg in the tiny config
    assert [line.split(':')[0] for line in result.info['why_not_merged']] == ['Adapter']


# -- not mergeable: adapter-only + config ----------------------------------------------------
def test_adapter_exports_adapter_only_and_rebuilds(tmp_path):
    pretrained = write_pretrained(tmp_path / 'host.pth')
    cfg = write_config(tmp_path / 'adapter.py', VIT, dict(type='Adapter', bottleneck=4),
                       pretrained=pretrained)
    model = make_checkpoint(cfg, tmp_path / 'src.pth')
    x = inputs_of(VIT_INPUT)
    reference = model_outputs(model, x)
    result = export_model(cfg, str(tmp_path / 'src.pth'), str(tmp_path / 'out'),
                          verify_shape=VIT_INPUT)
    assert result.mode == 'adapter_only'
    info = json.load(open(result.manifest))
    assert info['why_not_merged'][0].startswith('Adapter: not mergeable')
    assert info['why_this_form'] == 'the frozen weights equal the pretrained init_cfg file'
    raw = torch.load(result.checkpoint, map_location='cpu', weights_only=True)
    meta = decode_checkpoint(raw)['meta']
    assert meta['petl']['adapter_only'] is True
    state = raw['state_dict']
    assert 'backbone.layers.0.attn.qkv.weight' not in state  # frozen: from the init_cfg
    assert any('petl_adapter' in k for k in state) and 'head.layers.head.weight' in state
    assert meta['petl']['dropped_frozen'] == info['frozen_left_out'] > 0
    assert 'vpetl_mm.PETLBackbone' in open(result.config).read()
    # rebuilt with vpetl_mm from the exported files only: the same outputs
    rebuilt = build_model(Config.fromfile(result.config))
    report = load_petl_checkpoint(rebuilt, result.checkpoint)
    assert report['adapter_only'] and report['restored_from_init'] == info['frozen_left_out']
    compare(reference, model_outputs(rebuilt, x))
    assert info['max_abs_diff'] < 1e-5


def test_without_pretrained_init_the_export_keeps_all_weights(tmp_path):
    cfg = write_config(tmp_path / 'adapter.py', VIT, dict(type='Adapter', bottleneck=4))
    model = make_checkpoint(cfg, tmp_path / 'src.pth')
    result = export_model(cfg, str(tmp_path / 'src.pth'), str(tmp_path / 'out'))
    assert result.mode == 'full'
    assert 'no Pretrained init_cfg' in result.info['why_this_form']
    state = torch.load(result.checkpoint, weights_only=True)['state_dict']
    assert set(state) == set(model.state_dict())
    rebuilt = build_model(Config.fromfile(result.config))
    load_petl_checkpoint(rebuilt, result.checkpoint)
    x = inputs_of(VIT_INPUT)
    compare(model_outputs(model, x), model_outputs(rebuilt, x))


def test_frozen_weights_unlike_the_pretrained_file_are_kept(tmp_path):
    pretrained = write_pretrained(tmp_path / 'host.pth')
    cfg = write_config(tmp_path / 'vpt.py', VIT, dict(type='VPT', length=2),
                       pretrained=pretrained)
    make_checkpoint(cfg, tmp_path / 'src.pth')
    ckpt = torch.load(tmp_path / 'src.pth', weights_only=True)
    ckpt['state_dict']['backbone.layers.1.ffn.layers.1.weight'].add_(1.)  # not the pretrain
    torch.save(ckpt, tmp_path / 'src.pth')
    result = export_model(cfg, str(tmp_path / 'src.pth'), str(tmp_path / 'out'))
    assert result.mode == 'full' and 'differ' in result.info['why_this_form']
    assert result.info['why_not_merged'][0].startswith('VPT')


def test_prefix_tuning_is_mergeable_but_not_into_the_host(tmp_path):
    cfg = write_config(tmp_path / 'prefix.py', VIT, dict(type='PrefixTuning', length=2, mid=4))
    make_checkpoint(cfg, tmp_path / 'src.pth')
    result = export_model(cfg, str(tmp_path / 'src.pth'), str(tmp_path / 'out'))
    assert result.mode == 'full'
    plan = result.info['methods'][0]
    assert plan['mergeable'] and not plan['folds_into_host']
    assert 'prefixes' in plan['why']


def test_no_merge_writes_the_adapter_only_form(tmp_path):
    pretrained = write_pretrained(tmp_path / 'host.pth')
    cfg = write_config(tmp_path / 'lora.py', VIT, dict(type='LoRA', rank=2, alpha=2),
                       pretrained=pretrained)
    make_checkpoint(cfg, tmp_path / 'src.pth')
    result = export_model(cfg, str(tmp_path / 'src.pth'), str(tmp_path / 'out'), merge=False,
                          verify_shape=VIT_INPUT)
    assert result.mode == 'adapter_only'
    assert result.info['why_not_merged'] == ['merging was turned off (--no-merge)']


# -- errors ----------------------------------------------------------------------------------
class _NotATensor:
    pass


@pytest.fixture(scope='module')
def lora_vit(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('lora')
    cfg = write_config(tmp / 'lora.py', VIT, dict(type='LoRA', rank=2, alpha=2))
    make_checkpoint(cfg, tmp / 'src.pth')
    return cfg, str(tmp / 'src.pth')


def test_error_missing_checkpoint(lora_vit, tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        export_model(lora_vit[0], str(tmp_path / 'nope.pth'), str(tmp_path))


def test_error_keys_that_do_not_match(lora_vit, tmp_path):
    cfg, src = lora_vit
    with pytest.raises(ValueError, match='another shape'):  # trained with rank 2, not 4
        export_model(cfg, src, str(tmp_path), cfg_options={'model.backbone.petl.rank': 4})
    ckpt = torch.load(src, weights_only=True)
    ckpt['state_dict'].pop('backbone.layers.1.petl_lora_qkv.lora_B')
    ckpt['state_dict']['backbone.layers.1.petl_lora_qkv.lora_C'] = torch.zeros(1)
    torch.save(ckpt, tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match=r'missing 1 \(backbone.layers.1.petl_lora_qkv.lora_B\)'
                       r'; unexpected 1 \(backbone.layers.1.petl_lora_qkv.lora_C\)'):
        export_model(cfg, str(tmp_path / 'bad.pth'), str(tmp_path))


def test_error_adapter_only_checkpoint_without_pretrained_init(lora_vit, tmp_path):
    cfg, src = lora_vit
    ckpt = torch.load(src, weights_only=True)
    ckpt['state_dict'] = {k: v for k, v in ckpt['state_dict'].items()
                          if 'petl_' in k or k.startswith('head.')}
    ckpt['meta'] = dict(petl=dict(adapter_only=True))
    torch.save(ckpt, tmp_path / 'adapter.pth')
    with pytest.raises(ValueError, match='no Pretrained init_cfg'):
        export_model(cfg, str(tmp_path / 'adapter.pth'), str(tmp_path))


def test_error_unsafe_checkpoint_is_not_unpickled(lora_vit, tmp_path):
    ckpt = torch.load(lora_vit[1], weights_only=True)
    ckpt['meta'] = dict(thing=_NotATensor())
    torch.save(ckpt, tmp_path / 'unsafe.pth')
    with pytest.raises(ValueError, match='weights_only=True'):
        read_checkpoint(str(tmp_path / 'unsafe.pth'))


def test_error_gps_checkpoint_without_selection(tmp_path):
    cfg = write_config(tmp_path / 'gps.py', VIT, dict(type='GPS'))
    make_checkpoint(cfg, tmp_path / 'src.pth', calibrate=False)
    with pytest.raises(ValueError, match=r"\['GPS'\] selections are not in"):
        export_model(cfg, str(tmp_path / 'src.pth'), str(tmp_path / 'out'))


# -- end to end: a checkpoint written by tools/train.py, exported by tools/export.py ----------
def test_train_then_export_cli(tmp_path):
    root = write_tiny_vtab(str(tmp_path / 'vtab'))
    pretrained = write_pretrained(tmp_path / 'host.pth')
    cfg = write_config(tmp_path / 'lora.py', VIT, dict(type='LoRA', rank=2, alpha=2),
                       pretrained=pretrained)
    work = str(tmp_path / 'work')
    train(cfg, work, vtab_options(root), extra=['--protocol', 'none'])
    ckpt = osp.join(work, 'epoch_3.pth')
    assert read_checkpoint(ckpt)['meta']['petl']['adapter_only']  # the project's format
    out = str(tmp_path / 'out')
    log = run_tool([PY, 'tools/export.py', cfg, ckpt, out, '--name', 'lora_vtab',
                    '--verify-shape', *map(str, VIT_INPUT)], str(tmp_path / 'export.log'))
    assert 'loaded it strictly without vpetl_mm' in log
    info = json.load(open(osp.join(out, 'lora_vtab.json')))
    assert info['mode'] == 'merged' and info['source']['adapter_only']
    assert info['stock_check']['vpetl_mm_imported'] == []
    assert info['stock_check']['max_abs_diff'] < 1e-5
    # independently: the trained PETL model (adapter-only file + pretrained init) vs the
    # stock model built from the exported files
    petl = build_model(Config.fromfile(cfg))
    load_petl_checkpoint(petl, ckpt)
    stock = build_model(Config.fromfile(osp.join(out, 'lora_vtab.py')))
    stock.load_state_dict(torch.load(osp.join(out, 'lora_vtab.pth'),
                                     weights_only=True)['state_dict'], strict=True)
    x = inputs_of(VIT_INPUT)
    assert compare(model_outputs(petl, x), model_outputs(stock, x)) < 1e-5
    # the CLI's errors are one line, not a traceback
    proc = subprocess.run([PY, 'tools/export.py', cfg, str(tmp_path / 'nope.pth'), out],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=dict(os.environ))
    assert proc.returncode != 0 and 'export failed: Checkpoint' in proc.stdout
    assert 'Traceback' not in proc.stdout
