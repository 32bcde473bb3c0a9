"""PACE: the model wrapper adds ``loss_pace`` for any PETL methods, by config."""
import copy

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from vpetl_mm.methods.pace import PACE, block_sigmas
from vpetl_mm.registry import MODELS

VIT = dict(type='VisionTransformer', img_size=32, patch_size=8, drop_rate=0.,
           arch=dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64))


def classifier(petl, drop_path=0.) -> dict:
    return dict(type='ImageClassifier',
                backbone=dict(type='vpetl_mm.PETLBackbone',
                              backbone=dict(VIT, drop_path_rate=drop_path), petl=petl),
                head=dict(type='VisionTransformerClsHead', num_classes=4, in_channels=32))


def build(petl=(dict(type='LoRA', rank=4), dict(type='VPT', length=2, deep=True)),
          drop_path=0., **pace) -> PACE:
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(dict(type='vpetl_mm.PACE', model=classifier(list(petl), drop_path),
                              **pace))
    with torch.no_grad():  # LoRA's B off zero, so its branch (and the noise on it) matters
        for name, p in model.named_parameters():
            if 'petl_' in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


def batch(n=2):
    torch.manual_seed(1)
    samples = [DataSample(metainfo=dict(sample_idx=i)).set_gt_label(i % 4) for i in range(n)]
    return torch.randn(n, 3, 32, 32), samples


def test_loss_pace_reaches_the_train_step_log_and_trains_the_petl_modules():
    model = build(sigma=1.2, lambda_=2.).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optim = OptimWrapper(torch.optim.SGD(trainable, lr=0.1))
    inputs, samples = batch()
    data = dict(inputs=list(inputs * 255), data_samples=samples)
    log = model.train_step(data, optim)  # what the Runner's train loop calls
    assert {'loss', 'loss_pace'} <= set(log) and float(log['loss_pace']) > 0
    # loss_pace alone gives a gradient to the PETL modules (LoRA's factors, VPT's prompts)
    model.zero_grad()
    model.loss(inputs, samples)['loss_pace'].backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert any('lora_A' in n for n in grads)
    assert all(g is not None and g.abs().sum() > 0 for n, g in grads.items()
               if 'lora' in n), 'a LoRA factor gets no gradient from loss_pace'


def test_sigma_zero_gives_zero_loss_even_with_drop_path():
    # the two passes replay the global RNG: same drop-path masks, so only PACE noise differs
    model = build(sigma=0., drop_path=0.5).train()
    losses = model.loss(*batch())
    assert losses['loss_pace'].item() == 0.
    assert losses['loss'].item() > 0


def test_noise_only_in_training_and_only_on_the_petl_change():
    model = build(sigma=1.)
    inputs, _ = batch()
    # LoRA hooks one qkv per block; VPT's hooks belong to the method (tokens): not perturbed
    assert len(model.sites) == 3
    # PACE's linspace: the head holds the last step, so block 2 of 3 gets 2/3 of sigma
    assert [s.sigma for s in model.sites] == block_sigmas(1., 3, 1) == pytest.approx([0, 1, 2 / 3])
    model.eval()
    with torch.no_grad():
        first, second = model(inputs), model(inputs)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    model.train()
    with torch.no_grad():
        noisy = model(inputs)
    assert not torch.allclose(noisy, first)
    for site in model.sites:
        site.sigma = 0.
    with torch.no_grad():
        torch.testing.assert_close(model(inputs), first)


def test_checkpoints_hold_the_wrapped_model_under_model():
    model = build()
    model.init_weights()  # the Runner's first call (nn.Module.apply must stay unshadowed)
    plain = MODELS.build(classifier([dict(type='LoRA', rank=4),
                                     dict(type='VPT', length=2, deep=True)]))
    state = model.state_dict()
    # the module path: the checkpoint tools find the PETL tensors by it; no noise-site state
    assert set(state) == {f'model.{k}' for k in plain.state_dict()}
    fresh = build(sigma=0.3)
    fresh.load_state_dict(state)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, state[key])


def test_fast_compares_with_the_previous_epoch_outputs():
    model = build(sigma=1., fast=True, lambda_=1.).train()
    inputs, samples = batch()
    with torch.no_grad():
        first = model.loss(inputs, samples)['loss_pace']
        logits = torch.stack([model._history[i] for i in range(2)])
        # the first epoch compares with zeros (PACE's zero-initialised history)
        assert torch.allclose(first, logits.square().sum(1).mean())
        second = model.loss(inputs, samples)['loss_pace']
    assert 0 < second.item() < first.item()
    samples[0].set_metainfo(dict(sample_idx=None))
    del samples[0].sample_idx
    with pytest.raises(ValueError, match='sample_idx'):
        model.loss(inputs, samples)


def test_deep_copies_run_their_own_noise_sites():
    model = build(sigma=1.)
    ema = copy.deepcopy(model)
    assert all(a is not b for a, b in zip(model.sites, ema.sites))
    hooks = [h for m in ema.modules() for h in m._forward_hooks.values()
             if getattr(h, '__self__', None) in list(ema.sites)]
    assert len(hooks) == 2 * len(ema.sites)


def test_clear_errors():
    init_default_scope('mmpretrain')
    plain = dict(type='ImageClassifier', backbone=VIT,
                 head=dict(type='VisionTransformerClsHead', num_classes=4, in_channels=32))
    with pytest.raises(ValueError, match='PETLBackbone'):
        MODELS.build(dict(type='vpetl_mm.PACE', model=plain))
    with pytest.raises(ValueError, match="output='decode_head'"):
        MODELS.build(dict(type='vpetl_mm.PACE', output='decode_head',
                          model=classifier(dict(type='LoRA', rank=4))))


def test_segmentor_heads_that_call_forward_directly():
    """mmseg's decode head calls ``self.forward`` in ``loss()`` (no hooks run): still caught;
    the head's dropout draws the same mask in both passes."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    init_default_scope('mmseg')
    swin = dict(type='SwinTransformer', pretrain_img_size=32, embed_dims=16, depths=(2, 2),
                num_heads=(1, 2), strides=(4, 2), window_size=4, out_indices=(0, 1))
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(32, 32), pad_shape=(32, 32)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, 32, 32)))
        samples.append(sample)
    for sigma in (1., 0.):
        torch.manual_seed(0)
        model = MODELS.build(dict(
            type='vpetl_mm.PACE', output='decode_head', sigma=sigma, skip_first=0,
            model=dict(type='EncoderDecoder',
                       backbone=dict(type='vpetl_mm.PETLBackbone', backbone=swin,
                                     petl=dict(type='Adapter', bottleneck=4)),
                       decode_head=dict(type='FCNHead', in_channels=32, in_index=1, channels=8,
                                        num_convs=1, num_classes=3, dropout_ratio=0.5))))
        for name, p in model.named_parameters():
            if 'petl_' in name:
                p.data.add_(torch.randn_like(p) * 0.1)
        losses = model.train().loss(torch.randn(2, 3, 32, 32), samples)
        assert (losses['loss_pace'].item() > 0) == (sigma > 0)
        assert len(model.sites) == 8  # dense Adapter: after attention and MLP, 4 blocks


@pytest.mark.parametrize('petl,sites', [
    (dict(type='RepAdapter', hidden=4, dropout=0.), 6),  # pre-hooks on qkv and fc1's input
    (dict(type='AdapterPlus', bottleneck=4, drop_path=0.), 3),  # hooks on the block outputs
    (dict(type='SSF'), 20)])  # every linear, norm and the patch embedding (no noise there)
def test_noise_reaches_input_and_block_hooks(petl, sites):
    model = build([petl], sigma=1.)
    inputs, _ = batch()
    with torch.no_grad():
        reference = model.eval()(inputs)
        noisy = model.train()(inputs)
        for site in model.sites:
            site.sigma = 0.
        clean = model(inputs)
    assert len(model.sites) == sites
    assert not torch.allclose(noisy, reference)
    torch.testing.assert_close(clean, reference)
