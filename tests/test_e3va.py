"""E3VA: the backbone runs without autograd, the highway follows its definition, counts."""
import pytest
import torch

from conftest import build_petl, run
from tiny_backbones import TINY_BACKBONES

TINY = {t.profile: t for t in TINY_BACKBONES}
DENSE = ['mmdet.SwinTransformer', 'mmseg.SwinTransformer']


def _perturb(model, seed=3):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * 0.2)


def _saved_bytes(model, tiny):
    """Bytes autograd keeps for backward during one forward pass."""
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        outputs = run(model, tiny)
    return total[0], outputs


@pytest.mark.parametrize('profile', DENSE)
def test_no_gradient_and_no_saved_activation_in_the_backbone(profile):
    tiny = TINY[profile]
    model = build_petl(tiny, dict(type='E3VA', rank=4)).train()
    _perturb(model)
    block_outputs = []
    for block in model.anatomy.blocks:
        block.module.register_forward_hook(lambda m, a, out: block_outputs.append(out))
    saved, outputs = _saved_bytes(model, tiny)
    assert block_outputs and all(o.grad_fn is None and not o.requires_grad for o in block_outputs)
    assert all(o.requires_grad for o in outputs)  # the highway joins the outputs
    sum(o.pow(2).mean() for o in outputs).backward()
    host = {n: p for n, p in model.backbone.named_parameters() if 'petl_' not in n}
    assert all(p.grad is None and not p.requires_grad for p in host.values())
    highway = [p for n, p in model.backbone.named_parameters() if 'petl_' in n]
    assert highway and all(p.grad is not None and p.grad.abs().sum() > 0 for p in highway)

    # the same backbone with sequential adapters keeps its activations for backward
    adapter_saved, _ = _saved_bytes(build_petl(tiny, dict(type='Adapter', bottleneck=4)).train(),
                                    tiny)
    assert saved < 0.5 * adapter_saved, (saved, adapter_saved)


@pytest.mark.parametrize('profile', DENSE)
def test_highway_follows_the_definition(profile):
    tiny = TINY[profile]
    model = build_petl(tiny, dict(type='E3VA', rank=4)).eval()
    _perturb(model)
    backbone, (method, ) = model.backbone, model.methods
    reads = []
    for block in model.anatomy.blocks:  # the host activations the adapters read, in order
        for site, attr in (('attn', 'petl_e3va_attn'), ('fc2', 'petl_e3va_mlp')):
            adapter = getattr(block.module, attr)
            model.anatomy.site(block, site).register_forward_hook(
                lambda m, a, out, adapter=adapter, path=block.path: reads.append(
                    (path, adapter, out.detach().clone())))
    with torch.no_grad():
        outputs = run(model, tiny)
        hosts = run(build_petl(tiny, dict(type='Frozen')).eval(), tiny)  # same seed: same host
        h, hw, expected = None, (8, 8), []
        for stage_index, stage in enumerate(backbone.stages):
            if stage_index:
                h, hw = backbone.stages[stage_index - 1].downsample(h, hw)
            for path, adapter, x in reads:
                if path.startswith(f'stages.{stage_index}.'):
                    branch = adapter.branch(x)
                    h = branch if h is None else h + branch
            norm = method.norms[str(stage_index)]
            expected.append(norm(h).view(h.shape[0], *hw, -1).permute(0, 3, 1, 2))
    for out, host, highway in zip(outputs, hosts, expected, strict=True):
        torch.testing.assert_close(out, host + highway)


def test_cannot_combine_or_train_host_parameters():
    tiny = TINY['mmdet.SwinTransformer']
    with pytest.raises(ValueError, match='without autograd'):
        build_petl(tiny, [dict(type='E3VA'), dict(type='LoRA', rank=2)])
    with pytest.raises(ValueError, match='trainable=.*cannot train'):
        build_petl(tiny, dict(type='E3VA'), trainable=['norm0'])
