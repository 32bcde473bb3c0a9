"""tools/export.py: merged exports load strictly into the stock mm model without vpetl_mm and
give the PETL model's outputs. The methods that export adapter-only and rebuild with vpetl_mm,
the errors and a checkpoint that tools/train.py wrote are in test_export_adapter_only.py.

The stock side always runs in a subprocess that never imports vpetl_mm (it checks
``sys.modules``). Checkpoints are made by building the tiny configs and moving every trainable
tensor away from its (often zero) init, so that a merge that did nothing would be caught.
"""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

sys.path.insert(0, osp.dirname(__file__))

from mmengine.config import Config  # noqa: E402
from mmengine.registry import MODELS, DefaultScope  # noqa: E402
from runner_utils import PY, REPO  # noqa: E402

from vpetl_mm.apis import export_model  # noqa: E402
from vpetl_mm.apis.export import find_petl_path, stock_config  # noqa: E402
from vpetl_mm.apis.stock_check import build_model, check, model_outputs  # noqa: E402
from vpetl_mm.models import NORMALIZATIONS  # noqa: E402
from vpetl_mm.utils import find_petl_backbone  # noqa: E402

VIT = osp.join(REPO, 'tests', 'configs', 'image', 'vit-b_vtab_tiny.py')  # the image setting
DET = osp.join(REPO, 'tests', 'configs', 'mask-rcnn_swin-tiny-petl.py')
SEG = osp.join(REPO, 'tests', 'configs', 'upernet_swin-tiny-petl.py')
VIDEO = osp.join(REPO, 'tests', 'configs', 'videomae-tiny_rawframes-petl.py')
STOCK_CHECK = osp.join(REPO, 'vpetl_mm', 'apis', 'stock_check.py')
VIT_INPUT = (2, 3, 32, 32)
DENSE_INPUT = (1, 3, 64, 64)
VIT_HOST = dict(type='VisionTransformer', img_size=32, patch_size=8, drop_path_rate=0.,
                arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64))

# case -> (base config, petl, input shape); tiny hyper-parameters as the image zoo test
MERGED = dict(
    LoRA=(VIT, dict(type='LoRA', rank=2, alpha=2), VIT_INPUT),
    SSF=(VIT, dict(type='SSF'), VIT_INPUT),
    RepAdapter=(VIT, dict(type='RepAdapter'), VIT_INPUT),
    Hydra=(VIT, dict(type='Hydra'), VIT_INPUT),
    FacT=(VIT, dict(type='FacT'), VIT_INPUT),
    GPS=(VIT, dict(type='GPS'), VIT_INPUT),
    BitFit=(VIT, dict(type='BitFit'), VIT_INPUT),
    LNTune=(VIT, dict(type='LNTune'), VIT_INPUT),
    # several methods: every one must fold
    LoRA_BitFit=(VIT, [dict(type='LoRA', rank=2, alpha=2), dict(type='BitFit')], VIT_INPUT),
    # dense Swin hosts: stock mmdet Mask R-CNN and mmseg UperNet
    LoRA_mmdet=(DET, dict(type='LoRA', rank=4), DENSE_INPUT),
    LoRA_mmseg=(SEG, dict(type='LoRA', rank=4), DENSE_INPUT),
    # video: stock mmaction2 Recognizer3D with VideoMAE (N, clips, C, T, H, W)
    LoRA_mmaction=(VIDEO, dict(type='LoRA', rank=4, alpha=4), (1, 1, 3, 4, 32, 32)),
)
HOST_ONLY = {'BitFit', 'LNTune'}  # trains host tensors: nothing to fold, so no "unmerged" contrast


def write_config(path, base, petl=None, pretrained=None, extra=''):
    """A config deriving from ``base`` with another method and/or a Pretrained host file."""
    backbone = {}
    if petl is not None:  # a list (several methods) replaces the base's dict as it is
        backbone['petl'] = petl if isinstance(petl, list) else dict(_delete_=True, **petl)
    if pretrained is not None:
        backbone['backbone'] = dict(init_cfg=dict(_delete_=True, type='Pretrained',
                                                  checkpoint=pretrained))
    with open(path, 'w') as f:
        f.write(f'_base_ = [{base!r}]\nmodel = dict(backbone={backbone!r})\n{extra}')
    return str(path)


def write_pretrained(path, seed=7):
    """A host-only ViT checkpoint: what a Pretrained init_cfg loads (host key names)."""
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        host = MODELS.build(dict(VIT_HOST))
    torch.save(dict(state_dict=host.state_dict()), path)
    return str(path)


def make_checkpoint(config, path, seed=0, calibrate=True, std=0.2):
    """Build ``config``, init it, calibrate (GPS), move every trainable tensor off its init
    (LoRA B, Hydra, ... start at zero), save a full checkpoint. Returns the model (eval)."""
    torch.manual_seed(seed)
    model = build_model(Config.fromfile(config))
    model.init_weights()
    wrapper = find_petl_backbone(model)
    if calibrate and wrapper.uncalibrated():
        gen = torch.Generator().manual_seed(1234)
        batch = (torch.randn(4, 3, 32, 32, generator=gen), torch.arange(4) % 2)
        wrapper.calibrate(lambda: iter([batch]))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=gen) * std)
    torch.save(dict(state_dict=model.state_dict()), path)
    return model.eval()


def inputs_of(shape, seed=3):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def stock_run(jobs, tmp):
    """Run stock_check.check on every job in ONE fresh interpreter without vpetl_mm.

    stock_check.py is loaded by file path: the vpetl_mm package is never imported.
    """
    spec = osp.join(tmp, 'jobs.json')
    with open(spec, 'w') as f:
        json.dump(jobs, f)
    code = (
        'import importlib.util, json, sys\n'
        f'spec = importlib.util.spec_from_file_location("stock_check", {STOCK_CHECK!r})\n'
        'sc = importlib.util.module_from_spec(spec); spec.loader.exec_module(sc)\n'
        f'jobs = json.load(open({spec!r}))\n'
        'reports = [sc.check(j["config"], j["checkpoint"], j["inputs"], j["outputs"]) '
        'for j in jobs]\n'
        'assert "vpetl_mm" not in sys.modules\n'
        'reports.append(sorted(m for m in sys.modules if m.startswith("vpetl")))\n'
        f'json.dump(reports, open({osp.join(tmp, "reports.json")!r}, "w"))\n')
    proc = subprocess.run([PY, '-c', code], cwd=tmp, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:]
    with open(osp.join(tmp, 'reports.json')) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def merged_exports(tmp_path_factory):
    """Export every MERGED case; run the stock models (and the stock model with the host
    weights *before* merging, as a contrast) in one subprocess without vpetl_mm."""
    tmp = str(tmp_path_factory.mktemp('merged'))
    cases, jobs = {}, []
    for name, (base, petl, shape) in MERGED.items():
        cfg = write_config(osp.join(tmp, f'{name}.py'), base, petl)
        model = make_checkpoint(cfg, osp.join(tmp, f'{name}_src.pth'))
        x = inputs_of(shape)
        torch.save(x, osp.join(tmp, f'{name}_x.pt'))
        result = export_model(cfg, osp.join(tmp, f'{name}_src.pth'), osp.join(tmp, 'out'),
                              name=name, stock_check=False)
        cases[name] = dict(result=result, reference=model_outputs(model, x))
        jobs.append(dict(config=result.config, checkpoint=result.checkpoint,
                         inputs=osp.join(tmp, f'{name}_x.pt'),
                         outputs=osp.join(tmp, f'{name}_out.pt')))
        if name not in HOST_ONLY:  # same keys, host weights as trained, PETL tensors dropped
            exported = torch.load(result.checkpoint, weights_only=True)['state_dict']
            source = torch.load(osp.join(tmp, f'{name}_src.pth'), weights_only=True)
            unmerged = {k: source['state_dict'][k] for k in exported}
            torch.save(dict(state_dict=unmerged), osp.join(tmp, f'{name}_unmerged.pth'))
            jobs.append(dict(config=result.config, checkpoint=osp.join(tmp, f'{name}_unmerged.pth'),
                             inputs=osp.join(tmp, f'{name}_x.pt'),
                             outputs=osp.join(tmp, f'{name}_unmerged_out.pt')))
    reports = stock_run(jobs, tmp)
    assert reports[-1] == []  # no vpetl module of any kind was imported
    for name in cases:
        cases[name]['outputs'] = torch.load(osp.join(tmp, f'{name}_out.pt'), weights_only=True)
        unmerged = osp.join(tmp, f'{name}_unmerged_out.pt')
        if osp.exists(unmerged):
            cases[name]['unmerged'] = torch.load(unmerged, weights_only=True)
    cases['_reports'] = reports[:-1]
    return cases


@pytest.mark.parametrize('name', list(MERGED))
def test_merged_export_is_the_stock_model(merged_exports, name):
    case = merged_exports[name]
    result = case['result']
    assert result.mode == 'merged'
    state = torch.load(result.checkpoint, map_location='cpu', weights_only=True)['state_dict']
    assert not [k for k in state if 'petl_' in k]
    assert any(k.startswith('backbone.') for k in state) and not any(
        k.startswith('backbone.backbone.') for k in state)
    text = open(result.config).read()
    assert 'vpetl_mm' not in text.split('\n', 3)[-1]  # only the header comment names it
    # the stock model's outputs are the PETL model's (before merging), to float rounding
    reference, outputs = case['reference'], case['outputs']
    assert len(outputs) == len(reference) > 0
    for a, b in zip(reference, outputs, strict=True):
        assert a.shape == b.shape
        # float32 rounding of the merged weights, relative to the output scale (the random
        # FPN features of the tiny detector reach 1e2)
        atol = 1e-5 * max(1., float(a.abs().max()))
        assert torch.allclose(a, b, rtol=1e-4, atol=atol), float((a - b).abs().max())
    if 'unmerged' in case:  # without the merge the same stock model computes something else
        pairs = zip(reference, case['unmerged'], strict=True)
        gap = max(float((a - b).abs().max()) for a, b in pairs)
        assert gap > 1e-3


def test_stock_reports(merged_exports):
    reports = merged_exports['_reports']
    models = {r['model'] for r in reports}
    assert models == {'ImageClassifier', 'MaskRCNN', 'EncoderDecoder', 'Recognizer3D'}
    assert all(r['vpetl_mm_imported'] == [] for r in reports)
    assert all(r['backbone'] in ('VisionTransformer', 'SwinTransformer') for r in reports)


def test_stock_load_is_strict(merged_exports, tmp_path):
    """The stock check can fail: one missing key and the strict load refuses the file."""
    result = merged_exports['LoRA']['result']
    state = torch.load(result.checkpoint, weights_only=True)['state_dict']
    state.pop('backbone.layers.0.attn.qkv.weight')
    torch.save(dict(state_dict=state), tmp_path / 'bad.pth')
    with pytest.raises(RuntimeError, match='Missing key'):
        check(result.config, str(tmp_path / 'bad.pth'))


def test_stock_config_translation():
    """Named normalisation -> ClsDataPreprocessor with the same numbers; vpetl_mm gone."""
    cfg = Config.fromfile(VIT)
    stock, notes = stock_config(cfg, find_petl_path(cfg.model)[0])
    assert stock.model.backbone.type == 'VisionTransformer'
    assert stock.model.backbone.init_cfg is None
    pre = stock.data_preprocessor
    assert pre.type == 'ClsDataPreprocessor'
    assert tuple(pre.mean) == NORMALIZATIONS['imagenet'][0]
    assert tuple(pre.std) == NORMALIZATIONS['imagenet'][1]
    assert 'custom_imports' not in stock and 'protocol' not in stock
    assert 'vpetl_mm' not in stock.pretty_text
    # the VTAB-1k dataset is vpetl_mm's: the loops that read it are dropped, and said so
    assert 'train_dataloader' not in stock and 'test_evaluator' not in stock
    assert any(n.startswith('test loop dropped') for n in notes)
    # mmdet: its datasets are stock, so its loops stay
    det = Config.fromfile(DET)
    stock_det, _ = stock_config(det, find_petl_path(det.model)[0])
    assert stock_det.train_dataloader.dataset.type == 'CocoDataset'
    assert 'constructor' not in stock_det.optim_wrapper


def test_error_config_without_petl_backbone(merged_exports, tmp_path):
    stock = merged_exports['LoRA']['result']  # a stock config and checkpoint
    with pytest.raises(ValueError, match='has no vpetl_mm.PETLBackbone'):
        export_model(stock.config, stock.checkpoint, str(tmp_path))
