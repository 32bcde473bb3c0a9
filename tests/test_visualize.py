"""Attention maps and t-SNE (vpetl_mm.visualization, tools/visualize/*).

* The recorded attention equals a recomputation from the host's own weights (plain host, LoRA
  on q/k/v, and LoRA merged), and on every method that changes the token layout or the keys
  (VPT shallow / deep, HST meta tokens, prefix tuning) the recorded probabilities reproduce the
  attention module's actual output (probs @ v -> proj); timm and VideoMAE likewise.
* Rollout equals a numpy rollout written out here, and a hand-computed 2-token case.
* Maps land on the patch grid (non-square grid, row-major order).
* End to end: two methods trained one epoch through tools/train.py on a tiny VTAB folder
  (adapter-only checkpoints over a Pretrained backbone), then both tools as subprocesses.
"""
import copy
import json
import os
import os.path as osp
import re
import sys

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

sys.path.insert(0, osp.dirname(__file__))

from conftest import build_petl  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import MODELS, DefaultScope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from runner_utils import PY, REPO, run_tool, train, vtab_options, write_tiny_vtab  # noqa: E402
from tiny_backbones import TINY_BACKBONES  # noqa: E402

from vpetl_mm.visualization import (AttentionRecorder, attention_rollout,  # noqa: E402
                                    extract_features, patch_map)

TINY = {t.profile: t for t in TINY_BACKBONES}
VIT = TINY['mmpretrain.VisionTransformer']  # 3 blocks, width 32, 2 heads, 32 px / 8: grid 4x4


def _randomise_petl(wrapper, std: float = 0.3) -> None:
    """Non-zero PETL parameters (LoRA's B starts at 0), so they change the attention."""
    torch.manual_seed(3)
    with torch.no_grad():
        for module in wrapper.injected_modules().values():
            for p in module.parameters():
                p.normal_(std=std)


def _record(wrapper, x):
    wrapper.eval()
    with torch.no_grad(), AttentionRecorder(wrapper) as recorder:
        wrapper(x)
    return recorder


def _block_inputs_and_attn_outputs(wrapper, x):
    """The host tokens entering each block, qkv outputs, and each attention's output."""
    anatomy = wrapper.anatomy
    ins, qkvs, outs, handles = {}, {}, {}, []
    for block in anatomy.blocks:
        i = block.index
        handles.append(block.module.register_forward_pre_hook(
            lambda m, a, i=i: ins.__setitem__(i, a[0]), prepend=True))
        handles.append(anatomy.site(block, 'qkv').register_forward_hook(
            lambda m, a, o, i=i: qkvs.setdefault(i, o)))
        handles.append(anatomy.site(block, 'attn').register_forward_hook(
            lambda m, a, o, i=i: outs.__setitem__(i, o)))
    wrapper.eval()
    with torch.no_grad():
        wrapper(x)
    for h in handles:
        h.remove()
    return ins, qkvs, outs


def _manual_vit_attention(wrapper, x, lora: bool):
    """softmax(q k^T / sqrt(d)) from ln1, the qkv weights and (optionally) LoRA's A and B."""
    ins, _, _ = _block_inputs_and_attn_outputs(wrapper, x)
    host, injected = wrapper.backbone, wrapper.injected_modules()
    result = []
    for i, layer in enumerate(host.layers):
        weight = layer.attn.qkv.weight.detach().clone()
        C, heads = weight.shape[1], layer.attn.num_heads
        if lora:
            mod = injected[f'layers.{i}.petl_lora_qkv']
            r = mod.rank
            for n, part in enumerate(mod.slices):  # W_part += (alpha / r) * B_n A_n
                A = mod.lora_A[n * r:(n + 1) * r]
                weight[part * C:(part + 1) * C] += mod.scale * mod.lora_B[n] @ A
        h = layer.ln1(ins[i])
        qkv = h @ weight.t() + layer.attn.qkv.bias
        B, N, _ = qkv.shape
        q, k, _ = qkv.reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
        result.append(((q @ k.transpose(-2, -1)) / (C // heads) ** 0.5).softmax(-1))
    return result


@pytest.mark.parametrize('petl', [dict(type='Frozen'),
                                  dict(type='LoRA', rank=2, targets=['qkv.q', 'qkv.k', 'qkv.v'])],
                         ids=['plain', 'lora'])
def test_recorded_attention_equals_manual_recomputation(petl):
    wrapper = build_petl(VIT, petl)
    lora = petl['type'] == 'LoRA'
    if lora:
        _randomise_petl(wrapper)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    recorder = _record(wrapper, x)
    manual = _manual_vit_attention(wrapper, x, lora)
    assert len(recorder.attentions) == 3
    for rec, ref in zip(recorder.attentions, manual, strict=True):
        assert rec.probs.shape == (2, 2, 17, 17) and rec.num_extra_keys == 0
        assert torch.equal(rec.host_index, torch.arange(17))
        assert torch.allclose(rec.probs, ref, atol=1e-5), (rec.probs - ref).abs().max()
    if lora:  # the update really changes the attention, and merging it changes nothing
        plain = _manual_vit_attention(wrapper, x, lora=False)
        assert (plain[-1] - manual[-1]).abs().max() > 1e-3
        wrapper.merge()
        merged = _record(wrapper, x)
        for a, b in zip(merged.attentions, recorder.attentions, strict=True):
            assert torch.allclose(a.probs, b.probs, atol=1e-5)
    assert recorder.grid == (4, 4)
    assert recorder.last_map().shape == recorder.rollout_map().shape == (2, 4, 4)


def _check_reproduces_attention_output(wrapper, x, recorder):
    """probs @ [prefix v; v] -> proj gives each attention's real output."""
    _, qkvs, outs = _block_inputs_and_attn_outputs(wrapper, x)
    for block, rec in zip(wrapper.anatomy.blocks, recorder.attentions, strict=True):
        attn = wrapper.anatomy.site(block, 'attn')
        qkv = qkvs[block.index]
        B, N, C3 = qkv.shape
        heads = attn.num_heads
        if getattr(attn, 'q_bias', None) is not None:
            qkv = qkv + torch.cat((attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias))
        v = qkv.reshape(B, N, 3, heads, -1).permute(2, 0, 3, 1, 4)[2]
        if rec.num_extra_keys:
            v = torch.cat([p.key_values()[1].expand(B, -1, -1, -1) for p in attn._petl_kv] + [v],
                          dim=2)
        out = attn.proj((rec.probs @ v).transpose(1, 2).reshape(B, N, C3 // 3))
        assert torch.allclose(out, outs[block.index], atol=1e-5), \
            (out - outs[block.index]).abs().max()
        assert torch.allclose(rec.probs.sum(-1), torch.ones(()), atol=1e-5)


@pytest.mark.parametrize('petl,inserted,before', [
    (dict(type='VPT', length=3), 3, False),
    (dict(type='VPT', length=3, deep=True), 3, False),
    (dict(type='NOAH', vpt=2, lora=2, adapter=2), 2, False),
    (dict(type='HST', dims=(8, ), heads=(2, )), None, True),
    (dict(type='PrefixTuning', length=2, mid=4), 0, False),
], ids=['vpt', 'vpt-deep', 'noah', 'hst', 'prefix'])
def test_token_and_key_changes_are_followed(petl, inserted, before):
    wrapper = build_petl(VIT, petl)
    _randomise_petl(wrapper, std=0.1)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    recorder = _record(wrapper, x)
    _check_reproduces_attention_output(wrapper, x, recorder)
    for rec in recorder.attentions:
        n = rec.probs.shape[2]
        extra = n - 17 if inserted is None else inserted
        assert n == 17 + extra
        if before:  # HST: meta tokens in front of CLS
            expected = torch.arange(extra, n)
        else:  # prompts right after CLS
            expected = torch.cat([torch.tensor([0]), torch.arange(1 + extra, n)])
        assert torch.equal(rec.host_index, expected)
        assert rec.num_extra_keys == (2 if petl['type'] == 'PrefixTuning' else 0)
        assert rec.probs.shape[-1] == n + rec.num_extra_keys
        host = rec.host()
        assert host.shape == (2, 2, 17, 17)
        assert torch.equal(host[:, :, 0, 1:], rec.probs[:, :, expected[0],
                                                          expected[1:] + rec.num_extra_keys])
    assert recorder.last_map().shape == recorder.rollout_map().shape == (2, 4, 4)


@pytest.mark.parametrize('profile,grid,has_cls', [
    ('timm.VisionTransformer', (4, 4), True), ('mmaction.VisionTransformer', (2, 4, 4), False)])
def test_timm_and_videomae(profile, grid, has_cls):
    tiny = TINY[profile]
    wrapper = build_petl(tiny, dict(type='LoRA', rank=2))
    _randomise_petl(wrapper)
    with torch.no_grad():  # VideoMAE's separate q / v biases start at zero: make them count
        for name, p in wrapper.backbone.named_parameters():
            if name.endswith(('q_bias', 'v_bias')):
                p.normal_(std=0.5)
    x = torch.randn(*tiny.input_shape, generator=torch.Generator().manual_seed(2))
    recorder = _record(wrapper, x)
    _check_reproduces_attention_output(wrapper, x, recorder)
    assert recorder.grid == grid and recorder.has_cls == has_cls
    assert recorder.last_map().shape == (tiny.input_shape[0], *grid)
    if not has_cls:  # no class token: the mean row over the patches
        host = recorder.attentions[-1].host().mean(1)
        assert torch.allclose(recorder.last_map().flatten(1), host.mean(1))


def test_windowed_backbone_is_refused():
    wrapper = build_petl(TINY['mmpretrain.SwinTransformer'], dict(type='LoRA', rank=2))
    with pytest.raises(ValueError, match="'windowed' layout"):
        AttentionRecorder(wrapper)


def _numpy_rollout(layers):
    out = []
    for b in range(layers[0].shape[0]):
        n = layers[0].shape[-1]
        rollout = np.eye(n)
        for a in layers:
            a = a[b].mean(axis=0) + np.eye(n)
            a = a / a.sum(axis=1, keepdims=True)
            rollout = a @ rollout
        out.append(rollout)
    return np.stack(out)


def test_rollout_matches_numpy_and_a_hand_case():
    rng = np.random.default_rng(0)
    layers = []
    for _ in range(4):
        a = rng.random((2, 3, 5, 5))
        layers.append(a / a.sum(-1, keepdims=True))
    got = attention_rollout(layers).numpy()
    np.testing.assert_allclose(got, _numpy_rollout(layers), rtol=1e-12)
    np.testing.assert_allclose(got.sum(-1), 1., rtol=1e-12)  # rows stay distributions
    # two tokens, one head: (A + I) / 2 per layer, then A2' A1'
    a1 = np.array([[[[.5, .5], [0., 1.]]]])
    a2 = np.array([[[[1., 0.], [.5, .5]]]])
    np.testing.assert_allclose(attention_rollout([a1, a2]).numpy()[0],
                               [[.75, .25], [.1875, .8125]], rtol=1e-12)
    # without the identity, identity attention rolls out to the identity
    eye = np.eye(3)[None, None]
    np.testing.assert_allclose(attention_rollout([eye, eye], add_identity=False)[0], np.eye(3))


def test_patch_map_is_row_major_on_the_grid():
    attn = torch.zeros(1, 7, 7)
    attn[0, 0, 1:] = torch.arange(6.)
    attn[0, 1:, 1:] = torch.arange(6.) * 10
    expected = torch.arange(6.).reshape(2, 3)
    assert torch.equal(patch_map(attn, 1, (2, 3)), expected[None])
    assert torch.equal(patch_map(attn, 1, (2, 3), 'mean'), 10 * expected[None])
    assert torch.equal(patch_map(attn[:, None].expand(-1, 4, -1, -1), 1, (2, 3)), expected[None])
    with pytest.raises(ValueError, match='does not fit'):
        patch_map(attn, 1, (3, 3))
    # a non-square host: 32 x 48 pixels, patches of 8 -> a 4 x 6 grid, token 1 + r * 6 + c
    wrapper = build_petl(VIT, dict(type='Frozen'), img_size=(32, 48))
    recorder = _record(wrapper, torch.randn(2, 3, 32, 48))
    assert recorder.grid == (4, 6)
    last = recorder.last_map()
    assert last.shape == (2, 4, 6)
    cls_row = recorder.attentions[-1].probs.mean(1)[:, 0, 1:]
    assert torch.equal(last[:, 2, 5], cls_row[:, 2 * 6 + 5])


# -- end to end ------------------------------------------------------------------------------
TINY_CFG = osp.join(REPO, 'tests', 'configs', 'image', 'vit-b_vtab_tiny.py')


def _pretrained_host(path: str) -> None:
    cfg = Config.fromfile(TINY_CFG)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(7)
        host = MODELS.build(cfg.model.backbone.backbone)
        with torch.no_grad():
            host.pos_embed.normal_(std=0.5)
            host.cls_token.normal_(std=0.5)
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in host.state_dict().items()}}, path)


def _in_process_features(cfg_path: str, opts, ckpt_path: str) -> np.ndarray:
    """Pretrained backbone + the checkpoint's tensors, assembled here without a Runner."""
    cfg = Config.fromfile(cfg_path)
    cfg.merge_from_dict(dict(o.split('=', 1) for o in opts))
    state = torch.load(ckpt_path, map_location='cpu', weights_only=True)['state_dict']
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(1234)
        model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
        model.init_weights()
        assert not model.load_state_dict(state, strict=False).unexpected_keys
        model.eval()
        loader = Runner.build_dataloader(copy.deepcopy(cfg.test_dataloader))
        return extract_features(model, loader)[0]


def test_tools_end_to_end(tmp_path):
    pretrained = str(tmp_path / 'pretrained.pth')
    _pretrained_host(pretrained)
    data = write_tiny_vtab(str(tmp_path / 'vtab'))
    opts = vtab_options(data)
    ckpts, cfgs = {}, {}
    for name, petl in (('lora', dict(type='LoRA', rank=2, alpha=2)),
                       ('vpt', dict(type='VPT', length=4))):
        cfgs[name] = str(tmp_path / f'{name}.py')
        with open(cfgs[name], 'w') as f:
            f.write(f"_base_ = [{TINY_CFG!r}]\n"
                    f"model = dict(backbone=dict(petl=dict(_delete_=True, **{petl!r}),\n"
                    f"    backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', "
                    f"checkpoint={pretrained!r}, prefix='backbone.'))))\n")
        work = str(tmp_path / f'work_{name}')
        train(cfgs[name], work, opts + ['train_cfg.max_epochs=1',
                                        'default_hooks.checkpoint.interval=1'],
              extra=['--protocol', 'none'])
        ckpts[name] = osp.join(work, 'epoch_1.pth')
        assert osp.isfile(ckpts[name])

    # attention maps: the first 3 test images of the LoRA model; two image files on VPT
    out = str(tmp_path / 'attn_lora')
    log = run_tool([PY, 'tools/visualize/attention_map.py', cfgs['lora'], ckpts['lora'],
                    '--split', 'test', '--num', '3', '--out', out, '--cfg-options', *opts],
                   str(tmp_path / 'attn_lora.log'))
    assert 'Adapter-only checkpoint: initialising the model first' in log
    with open(osp.join(out, 'index.json')) as f:
        index = json.load(f)
    assert len(index) == 3 and all(r['grid'] == [4, 4] for r in index)
    for record in index:
        assert set(record['maps']) == {'layer1', 'rollout'}  # 2 blocks: the last is 1
        for name in record['maps'].values():
            assert np.load(osp.join(out, name)).shape == (4, 4)
        png = mpimg.imread(osp.join(out, record['figure']))
        assert png.ndim == 3 and png.shape[1] > 2.5 * png.shape[0]  # three panels side by side
    images = sorted(osp.join(data, 'images', 'test', n)
                    for n in os.listdir(osp.join(data, 'images', 'test')))[:2]
    out = str(tmp_path / 'attn_vpt')
    run_tool([PY, 'tools/visualize/attention_map.py', cfgs['vpt'], ckpts['vpt'], '--images',
              *images, '--out', out, '--layer', '0', '--no-rollout'], str(tmp_path / 'vpt.log'))
    with open(osp.join(out, 'index.json')) as f:
        index = json.load(f)
    assert [r['image'] for r in index] == images
    assert all(set(r['maps']) == {'layer0'} for r in index)
    assert np.load(osp.join(out, index[0]['maps']['layer0'])).shape == (4, 4)

    # t-SNE of both models side by side
    fig = str(tmp_path / 'tsne' / 'fig.png')
    run_tool([PY, 'tools/visualize/tsne.py', cfgs['lora'], ckpts['lora'], cfgs['vpt'],
              ckpts['vpt'], '--names', 'LoRA', 'VPT', '--split', 'test', '--out', fig,
              '--cfg-options', *opts], str(tmp_path / 'tsne.log'))
    emb = np.load(fig[:-4] + '.npz')
    assert list(emb['names']) == ['LoRA', 'VPT']
    for i in range(2):
        assert emb[f'embedding_{i}'].shape == (8, 2)
        assert emb[f'features_{i}'].shape == (8, 32)
        # write_tiny_vtab: samples 18-25 (after 12 train, 6 val) with labels index % 4
        np.testing.assert_array_equal(emb[f'labels_{i}'], np.arange(18, 26) % 4)
    assert int(emb['perplexity']) == 30  # asked for; t-SNE used min(30, 8 - 1)
    svg = open(fig[:-4] + '.svg').read()
    assert len(re.findall(r'<g id="axes_\d+"', svg)) == 2  # one panel per method
    assert mpimg.imread(fig).ndim == 3
    # the tool's features are those of pretrained backbone + trained adapters and head
    np.testing.assert_allclose(emb['features_0'],
                               _in_process_features(cfgs['lora'], opts, ckpts['lora']),
                               atol=1e-5)
