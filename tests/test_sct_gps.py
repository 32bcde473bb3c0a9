"""SCT's and GPS's selection passes select what their definitions say, on constructed cases.

SCT: with block 0's attention output zeroed and a constant patch embedding, the stream entering
norm2 is the patch-embedding bias on every token, so the salient channels are its largest
entries. GPS: with norm1's affine weight zero outside two channels, qkv's input is zero
elsewhere, so only those two columns of qkv can have a gradient and must be selected in every
row. Both then train only what they selected.
"""
import pytest
import torch

from conftest import calibration_batch, run
from tiny_backbones import TINY_BACKBONES
from vpetl_mm.methods.gps import supcon_loss, top_k_per_row
from vpetl_mm.methods.sct import channel_scores

VIT = TINY_BACKBONES[0]  # mmpretrain ViT: width 32, 3 blocks, 1 CLS token


def _uncalibrated(petl, **host_opts):
    from mmengine.registry import MODELS, DefaultScope
    import copy
    cfg = copy.deepcopy(VIT.cfg)
    cfg.update(host_opts)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(VIT.scope):
        return MODELS.build(dict(type='vpetl_mm.PETLBackbone', backbone=cfg, petl=petl))


def test_uncalibrated_forward_is_a_clear_error():
    wrapper = _uncalibrated(dict(type='SCT', channels=4))
    assert wrapper.uncalibrated() == ['SCT']
    with pytest.raises(RuntimeError, match='PETLCalibrationHook'):
        wrapper(torch.randn(2, 3, 32, 32))


def test_sct_channel_scores_average_classes_not_samples():
    # class 0: 9 samples' worth of energy on channel 0; class 1: a little on channel 1 only
    sums = torch.tensor([[81., 0., 1.], [0., 16., 1.], [0., 0., 0.]])
    scores = channel_scores(sums, torch.tensor([True, True, False]))
    torch.testing.assert_close(scores, torch.tensor([4.5, 2., 1.]))


def test_sct_selects_the_salient_channels_and_mixes_them_in_place():
    wrapper = _uncalibrated(dict(type='SCT', channels=3))
    host = wrapper.backbone
    salient = [5, 17, 30]
    with torch.no_grad():
        host.layers[0].attn.proj.weight.zero_()
        host.layers[0].attn.proj.bias.zero_()
        host.patch_embed.projection.weight.zero_()
        host.pos_embed.zero_()
        bias = torch.linspace(-0.5, 0.5, 32)
        bias[salient] = torch.tensor([3., -4., 2.5])
        host.patch_embed.projection.bias.copy_(bias)
    wrapper.calibrate(lambda: iter([calibration_batch(VIT)]))
    mixes = [layer.petl_sct_norm2 for layer in host.layers]
    assert mixes[0].index.tolist() == salient
    assert all(len(set(m.index.tolist())) == 3 for m in mixes)
    # the mix changes the stream itself (the MLP residual), not just norm2's input
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = wrapper(x)[0]
        wrapper.methods[0].remove_hooks()
        tokens, layer0 = None, host.layers[0]
        captured = {}
        layer0.register_forward_pre_hook(lambda m, a: captured.setdefault('x', a[0].clone()))
        host(x)
        tokens = captured['x']
        for layer, mix in zip(host.layers, mixes):
            stream = tokens + layer.attn(layer.ln1(tokens))
            s = stream[..., mix.index]
            stream = stream.clone()
            stream[..., mix.index] = s + mix.linear(s)
            tokens = layer.ffn(layer.ln2(stream), identity=stream)
        expected = host.ln1(tokens)[:, 0]
    torch.testing.assert_close(out, expected)


def test_supcon_loss_matches_its_definition():
    gen = torch.Generator().manual_seed(0)
    feats, labels = torch.randn(6, 5, generator=gen), torch.tensor([0, 1, 2, 0, 1, 1])
    z = torch.nn.functional.normalize(feats, dim=1)
    total, anchors = 0., 0
    for i in range(6):
        others = [a for a in range(6) if a != i]
        denom = torch.logsumexp(torch.stack([z[i] @ z[a] / 0.07 for a in others]), 0)
        positives = [p for p in others if labels[p] == labels[i]]
        if positives:
            total += -sum(z[i] @ z[p] / 0.07 - denom for p in positives) / len(positives)
            anchors += 1
    torch.testing.assert_close(supcon_loss(feats, labels), total / anchors)


def test_top_k_per_row_flattens_kernels():
    scores = torch.tensor([[[0., 5.], [1., 2.]], [[9., 0.], [0., 8.]]])  # (2 rows, 2, 2)
    assert top_k_per_row(scores, 2).tolist() == [[1, 3], [0, 3]]


def test_gps_selects_the_only_columns_with_gradient_and_trains_just_them():
    wrapper = _uncalibrated(dict(type='GPS', k=2))
    host = wrapper.backbone
    with torch.no_grad():
        keep = torch.zeros(32)
        keep[[3, 7]] = 1.
        host.layers[0].ln1.weight.copy_(keep)
        host.layers[0].ln1.bias.zero_()
    wrapper.calibrate(lambda: iter([calibration_batch(VIT)] * 2))
    qkv = host.layers[0].petl_gps_attn_qkv
    assert qkv.columns.shape == (96, 2)
    assert (qkv.columns == torch.tensor([3, 7])).all()
    # trainable: 2 entries per row of every linear / conv, and their biases
    rows = 32 + 3 * (96 + 32 + 64 + 32)
    assert wrapper.num_trainable() == 3 * rows
    # one step moves the effective qkv weight in the selected entries only (merged form)
    w0 = host.layers[0].attn.qkv.weight.detach().clone()
    wrapper.train()
    loss = run(wrapper, VIT)[0].pow(2).mean()
    loss.backward()
    torch.optim.SGD([p for p in wrapper.parameters() if p.requires_grad], lr=1.).step()
    wrapper.eval().merge()
    moved = (host.layers[0].attn.qkv.weight - w0).abs() > 0
    assert moved.any() and not moved[:, [c for c in range(32) if c not in (3, 7)]].any()


def test_gps_selection_pass_runs_the_host_in_train_mode():
    """GPS's calculate_gradient calls model.train() (FightingFighting/GPS@c050245
    train_gps.py): drop path is on during the pass; the wrapper's mode comes back after it."""
    wrapper = _uncalibrated(dict(type='GPS', k=1), drop_path_rate=0.5)
    seen = []
    block = wrapper.backbone.layers[1]
    handle = block.register_forward_hook(lambda m, a, o: seen.append(m.training))
    wrapper.eval()
    wrapper.calibrate(lambda: iter([calibration_batch(VIT)]))
    handle.remove()
    assert seen == [True]  # the block (and its drop path) ran in train mode
    assert not wrapper.training and not any(m.training for m in wrapper.modules())
    wrapper.train()
    wrapper.calibrate(lambda: iter([calibration_batch(VIT)]))
    assert wrapper.backbone.training and block.training
