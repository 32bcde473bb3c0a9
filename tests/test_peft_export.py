"""Adapters in the formats people share: ``tools/export.py --format {safetensors,peft}`` and
``--from-peft``. peft's own ``PeftModel.from_pretrained`` on the stock timm model is the
reference for the peft format: exported adapters must give the vpetl_mm model's outputs there,
and imported ones the PeftModel's outputs in vpetl_mm.
"""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from peft import PeftModel

sys.path.insert(0, osp.dirname(__file__))

from conftest import build_petl  # noqa: E402
from petl_contract import perturb_trainable  # noqa: E402
from runner_utils import PY, REPO  # noqa: E402
from test_export import VIT, VIT_INPUT, make_checkpoint, write_config  # noqa: E402
from tiny_backbones import TINY_BACKBONES  # noqa: E402
from vpetl_mm.apis import export_model, load_petl_checkpoint  # noqa: E402
from vpetl_mm.apis.export import import_from_peft  # noqa: E402
from vpetl_mm.apis.peft_format import clean_host, export_peft, import_peft  # noqa: E402
from vpetl_mm.apis.stock_check import build_model  # noqa: E402

TIMM = TINY_BACKBONES[-1]
assert TIMM.profile == 'timm.VisionTransformer'
X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
EXPORTED = {
    'LoRA-q-v': dict(type='LoRA', rank=4),  # V-PETL's LoRA: q and v of the fused qkv
    'LoRA-layers': dict(type='LoRA', rank=2, alpha=4, targets=['qkv', 'proj', 'fc2']),
    'Peft-LoRA': dict(type='Peft', r=4, lora_alpha=8),
    'Peft-DoRA': dict(type='Peft', r=4, use_dora=True, targets=['qkv', 'fc1']),
    'Peft-BOFT': dict(type='Peft', peft_type='BOFT', boft_block_size=4,
                      targets=['qkv', 'proj', 'fc1', 'fc2']),
    'Peft-VeRA': dict(type='Peft', peft_type='VeRA', r=4, targets=['qkv', 'proj']),
    'Peft-IA3': dict(type='Peft', peft_type='IA3', targets=['qkv', 'fc2']),
}


def _timm(wrapper):
    return wrapper.backbone.timm_model


def _trained(cfg, seed=0):
    wrapper = build_petl(TIMM, cfg, seed=seed).eval()
    perturb_trainable(wrapper, scale=0.2)
    return wrapper


@pytest.mark.parametrize('name', list(EXPORTED))
def test_peft_round_trip(name, tmp_path):
    """export -> peft's own from_pretrained on the stock timm model gives our outputs; the
    folder imported into a fresh vpetl_mm model gives them too."""
    trained = _trained(EXPORTED[name])
    info = export_peft(trained, str(tmp_path))
    assert [osp.basename(f) for f in info['files']] == ['adapter_config.json',
                                                        'adapter_model.safetensors']
    stock = clean_host(_timm(trained))
    assert not any('petl_' in n for n, _ in stock.named_modules())
    loaded = PeftModel.from_pretrained(stock, str(tmp_path)).eval()
    with torch.no_grad():
        ours = trained(X)[0]
        assert (ours - clean_host(_timm(trained))(X)).abs().max() > 1e-3  # it adapts
        torch.testing.assert_close(loaded(X), ours, rtol=1e-5, atol=1e-5)
    fresh = build_petl(TIMM, EXPORTED[name], seed=0).eval()  # same host, adapters at init
    imported = import_peft(fresh, str(tmp_path))
    assert imported['max_abs_diff'] < 1e-5
    with torch.no_grad():
        torch.testing.assert_close(fresh(X)[0], ours, rtol=1e-5, atol=1e-5)


def test_q_v_lora_exports_as_rank_2r_on_qkv_with_zero_k_rows(tmp_path):
    trained = _trained(EXPORTED['LoRA-q-v'])
    export_peft(trained, str(tmp_path))
    with open(tmp_path / 'adapter_config.json') as f:
        config = json.load(f)
    assert config['peft_type'] == 'LORA' and config['r'] == 4
    assert config['rank_pattern'] == {f'blocks.{i}.attn.qkv': 8 for i in range(2)}
    loaded = PeftModel.from_pretrained(clean_host(_timm(trained)), str(tmp_path))
    b = loaded.base_model.model.blocks[0].attn.qkv.lora_B['default'].weight  # (3C, 2r)
    assert b.shape == (96, 8) and not b[32:64].any() and b[:32].any() and b[64:].any()


def test_a_peft_lora_updating_k_does_not_import_into_q_v_lora(tmp_path):
    export_peft(_trained(dict(type='Peft', r=8, lora_alpha=8)), str(tmp_path))
    with pytest.raises(ValueError, match=r"updates q, k and v of the fused layer together; "
                       r"vpetl_mm's LoRA on slices of it cannot hold that\. Import it into "
                       r"petl=dict\(type='Peft'"):
        import_peft(build_petl(TIMM, dict(type='LoRA', rank=4)), str(tmp_path))


@pytest.mark.parametrize('tiny,cfg,match', [
    (TINY_BACKBONES[0], dict(type='LoRA', rank=4),
     r"the host is 'mmpretrain.VisionTransformer', an OpenMMLab backbone; peft adapters name"),
    (TIMM, dict(type='Adapter', bottleneck=4), r"peft has no equivalent of \['Adapter'\]"),
    (TIMM, dict(type='Peft', r=4, init_lora_weights='pissa'),
     r"init_lora_weights='pissa' moved part of the host weights into the adapter"),
])
def test_no_peft_equivalent_is_one_clear_line(tiny, cfg, match, tmp_path):
    with pytest.raises(ValueError, match=match) as info:
        export_peft(build_petl(tiny, cfg), str(tmp_path))
    assert len(str(info.value).splitlines()) == 1


def _timm_config(path, petl, pretrained):
    """An mmpretrain ImageClassifier config on the tiny timm ViT, loading ``pretrained``."""
    backbone = dict(TIMM.cfg, init_cfg=dict(type='Pretrained', checkpoint=pretrained))
    model = dict(type='ImageClassifier', backbone=dict(
        type='vpetl_mm.PETLBackbone', backbone=backbone, petl=petl))
    with open(path, 'w') as f:
        f.write(f"default_scope = 'mmpretrain'\nmodel = {model!r}\n")
    return str(path)


def test_export_peft_and_from_peft_round_trip(tmp_path):
    """tools/export.py's API end to end: --format peft, then --from-peft into the same config
    (written as safetensors): the imported adapter-only checkpoint gives the trained model."""
    torch.manual_seed(7)
    host = build_model(Config.fromfile(_timm_config(tmp_path / 'host.py', dict(type='Frozen'),
                                                   'none')))
    torch.save(dict(state_dict=host.backbone.backbone.state_dict()), tmp_path / 'pre.pth')
    cfg = _timm_config(tmp_path / 'boft.py', dict(type='Peft', peft_type='BOFT',
                                                  boft_block_size=4, targets=['qkv', 'fc2']),
                       str(tmp_path / 'pre.pth'))
    trained = make_checkpoint(cfg, tmp_path / 'trained.pth')
    exported = export_model(cfg, str(tmp_path / 'trained.pth'), str(tmp_path / 'peft'),
                            fmt='peft')
    assert exported.mode == 'peft' and exported.info['max_abs_diff'] < 1e-5
    assert exported.checkpoint == str(tmp_path / 'peft' / 'adapter_model.safetensors')
    loaded = PeftModel.from_pretrained(clean_host(_timm(trained.backbone)),
                                       str(tmp_path / 'peft')).eval()
    with torch.no_grad():
        reference = trained.backbone(X)[0]
        torch.testing.assert_close(loaded(X), reference, rtol=1e-5, atol=1e-5)
    result = import_from_peft(cfg, str(tmp_path / 'peft'), str(tmp_path / 'in'),
                              fmt='safetensors')
    assert result.mode == 'adapter_only' and result.checkpoint.endswith('.safetensors')
    assert result.info['peft']['max_abs_diff'] < 1e-5
    fresh = build_model(Config.fromfile(cfg))
    fresh.init_weights()
    load_petl_checkpoint(fresh, result.checkpoint)
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval().backbone(X)[0], reference, rtol=1e-5, atol=1e-5)


def test_safetensors_export_merged_and_unmerged(tmp_path):
    """--format safetensors: the merged export loads strictly into the stock model (in the
    subprocess without vpetl_mm); the unmerged one rebuilds with vpetl_mm."""
    cfg = write_config(tmp_path / 'lora.py', VIT, dict(type='LoRA', rank=2, alpha=2))
    make_checkpoint(cfg, tmp_path / 'lora.pth')
    merged = export_model(cfg, str(tmp_path / 'lora.pth'), str(tmp_path / 'merged'),
                          verify_shape=VIT_INPUT, fmt='safetensors')
    assert merged.mode == 'merged' and merged.checkpoint.endswith('merged/lora.safetensors')
    assert merged.info['stock_check']['max_abs_diff'] < 1e-5
    adapter = export_model(cfg, str(tmp_path / 'lora.pth'), str(tmp_path / 'adapter'),
                           merge=False, verify_shape=VIT_INPUT, fmt='safetensors')
    assert adapter.mode == 'full'  # the tiny config has no Pretrained init for the frozen part
    assert adapter.checkpoint.endswith('adapter/lora.safetensors')
    assert adapter.info['max_abs_diff'] < 1e-5
    with open(adapter.checkpoint, 'rb') as f:
        assert b'PK' not in f.read(8)  # not a zip / pickle: safetensors' JSON header


def test_tool_refuses_peft_format_on_an_mm_host_in_one_line(tmp_path):
    cfg = write_config(tmp_path / 'lora.py', VIT, dict(type='LoRA', rank=2, alpha=2))
    make_checkpoint(cfg, tmp_path / 'lora.pth')
    proc = subprocess.run([PY, osp.join(REPO, 'tools', 'export.py'), cfg,
                           str(tmp_path / 'lora.pth'), str(tmp_path / 'out'), '--format', 'peft'],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("export failed: peft format: the host is "
                           "'mmpretrain.VisionTransformer', an OpenMMLab backbone")
