"""NOAH: subnets, the weight-entangled supernet, its sampling hook and the evolutionary search.

The contract (test_contract.py) runs a fixed subnet on every profile; here each part is checked
against an independent computation: counts against the formula, the LoRA / adapter parts
against the project's LoRA and Adapter with the same weights, the prompts against VPT and a
manual re-run of the host blocks, a subnet of the supernet against a separately built subnet
holding the supernet's weight slices, and the three commands end to end on a tiny VTAB task.
"""
import copy
import json
import os.path as osp
import random

import pytest
import torch

from conftest import build_petl, run
from runner_utils import PY, REPO, latest_scalars, run_tool, vtab_options, write_tiny_vtab
from petl_contract import perturb_trainable as _perturb_trainable
from tiny_backbones import TINY_BACKBONES, TinyBackbone
from vpetl_mm.apis.noah_search import EvolutionSearch, SearchSettings, depth_of, key
from vpetl_mm.hooks.noah_hook import NOAHSamplingHook, iteration_rng

VIT = TINY_BACKBONES[0]  # mmpretrain ViT: width 32, 3 blocks, 1 CLS token
TIMM = TINY_BACKBONES[-1]  # timm ViT: width 32, 2 blocks
D = 32
SMALL = dict(vpt=(1, 2, 3), lora=(1, 2, 3), adapter=(1, 2, 3))
OFF = dict(vpt=0, lora=0, adapter=0)


def formula(subnet, dim=D) -> int:
    """Trainable parameters: P D prompts, r (D + 3D) LoRA, (2D + 1) m + D per adapter."""
    return (sum(subnet['vpt']) * dim + sum(subnet['lora']) * 4 * dim
            + sum((2 * dim + 1) * m + dim for m in subnet['adapter'] if m))


def noah(wrapper):
    return wrapper.methods[0]


def trainable(wrapper):
    return {n: p for n, p in wrapper.backbone.named_parameters() if p.requires_grad}


@pytest.mark.parametrize('tiny,subnet', [
    (VIT, dict(vpt=[2, 0, 1], lora=[0, 3, 1], adapter=[4, 0, 2])),
    (TIMM, dict(vpt=[0, 3], lora=[2, 0], adapter=[1, 5])),
])
def test_subnet_builds_exactly_its_widths(tiny, subnet):
    wrapper = build_petl(tiny, dict(type='NOAH', **subnet))
    assert wrapper.num_trainable() == formula(subnet) == noah(wrapper).count()
    params = trainable(wrapper)
    for i in range(len(subnet['vpt'])):  # a module only where the width is > 0
        assert any(f'.{i}.petl_noah_qkv.' in n for n in params) == bool(subnet['lora'][i])
        assert any(f'.{i}.petl_noah_mlp.' in n for n in params) == bool(subnet['adapter'][i])
        assert any(n.endswith(f'petl_noah_tokens.blocks.{i}.prompts') for n in params) == \
            bool(subnet['vpt'][i])
    assert noah(wrapper).subnet() == subnet == noah(wrapper).largest()


def test_default_subnet_is_noahs_svhn_search_on_vit_b():
    from vpetl_mm.methods.noah import DEFAULT_SUBNET
    subnet = {k: list(v) for k, v in DEFAULT_SUBNET.items()}
    assert formula(subnet, 768) == 431_686  # tests/test_param_counts.py builds it


def test_per_task_subnets_are_noahs_vtab_searches():
    """NOAH publishes one searched subnet per VTAB-1k task (vpetl_mm/benchmark/pertask.py):
    287,278 to 431,686 parameters on ViT-B/16; SVHN's is the default (FGVC's, unpublished)."""
    from vpetl_mm.benchmark.pertask import NOAH
    from vpetl_mm.datasets import VTAB_DATASETS
    from vpetl_mm.methods.noah import DEFAULT_SUBNET
    assert set(NOAH.values) == set(VTAB_DATASETS)
    counts = {task: formula(subnet, 768) for task, subnet in NOAH.values.items()}
    assert min(counts.values()) == counts['vtab-sun397'] == 287_278
    assert max(counts.values()) == counts['vtab-svhn'] == 431_686
    assert counts['vtab-dtd'] == 287_298 and counts['vtab-cifar100'] == 320_330
    assert NOAH.values['vtab-svhn'] == {k: list(v) for k, v in DEFAULT_SUBNET.items()}
    # the VTAB mean; NOAH's own count (+ input prompts) averages 0.44M: docs/image.md
    assert round(sum(counts.values()) / len(counts)) == 360_134
    for subnet in NOAH.values.values():  # NOAH's search space: 12 layers, widths {1, 5, 10}
        assert all(len(w) == 12 and set(w) <= {1, 5, 10} for w in subnet.values())
    # a per-task subnet builds with exactly its count (a 2-block ViT-B-wide slice of it)
    cut = {k: v[:2] for k, v in NOAH.values['vtab-dtd'].items()}
    assert build_petl(TIMM, dict(type='NOAH', **cut)).num_trainable() == formula(cut)


def _corner(big: torch.Tensor, shape) -> torch.Tensor:
    return big[tuple(slice(0, s) for s in shape)]


@pytest.mark.parametrize('tiny', [VIT, TIMM])
def test_subnet_of_supernet_is_its_weight_slices(tiny):
    layers = 3 if tiny is VIT else 2
    supernet = build_petl(tiny, dict(type='NOAH', supernet=True, choices=SMALL)).eval()
    assert supernet.num_trainable() == formula({k: [3] * layers for k in SMALL})
    _perturb_trainable(supernet)  # B and up start at 0: make every slice count
    subnet = dict(vpt=[2, 0, 3][:layers], lora=[1, 3, 0][:layers], adapter=[3, 2, 1][:layers])
    noah(supernet).set_subnet(subnet)
    small = build_petl(tiny, dict(type='NOAH', **subnet), seed=5).eval()
    big = dict(supernet.backbone.named_parameters())
    with torch.no_grad():
        for name, param in small.backbone.named_parameters():
            # frozen host weights as the supernet's; each NOAH tensor its leading corner
            param.copy_(_corner(big[name], param.shape) if param.requires_grad else big[name])
        for a, b in zip(run(supernet, tiny), run(small, tiny), strict=True):
            torch.testing.assert_close(a, b)
    assert noah(supernet).count() == small.num_trainable() == formula(subnet)
    # the supernet's largest subnet is a different (bigger) model
    noah(supernet).set_subnet(noah(supernet).largest())
    with torch.no_grad():
        assert not torch.allclose(run(supernet, tiny)[0], run(small, tiny)[0])


def test_sampling_follows_noahs_scheme_and_switches_the_model():
    wrapper = build_petl(VIT, dict(type='NOAH', supernet=True, choices=SMALL)).eval()
    method = noah(wrapper)
    assert method.depths == [1, 2, 3]  # a quarter, half, three quarters, all of 3 layers
    rng = random.Random(0)
    samples = [method.sample(rng) for _ in range(300)]
    for subnet in samples:
        for kind, widths in subnet.items():
            depth = depth_of(widths)
            assert depth in method.depths and not any(widths[depth:])
            assert set(widths[:depth]) <= set(SMALL[kind])
    assert {depth_of(s['lora']) for s in samples} == {1, 2, 3}
    assert {w for s in samples for w in s['adapter']} == {0, 1, 2, 3}
    # the same (seed, iteration) draws the same subnet; another iteration (almost surely) not
    assert method.sample(iteration_rng(7, 3)) == method.sample(iteration_rng(7, 3))
    first, second = (method.sample(iteration_rng(7, i)) for i in (0, 1))
    assert first != second
    _perturb_trainable(wrapper)
    outs = []
    for subnet in (first, second):
        method.set_subnet(subnet)
        assert method.subnet() == subnet
        assert [m.active for m in method.loras] == subnet['lora']
        assert method.prompts.active == subnet['vpt']
        assert method.count() == formula(subnet)
        with torch.no_grad():
            outs.append(run(wrapper, VIT)[0])
    assert not torch.allclose(*outs)
    # count() of another subnet leaves the active one alone
    assert method.count(first) == formula(first) and method.subnet() == second


def test_lora_and_adapter_parts_are_the_projects_lora_and_adapter():
    lora = build_petl(VIT, dict(type='NOAH', **dict(OFF, lora=3))).eval()
    reference = build_petl(VIT, dict(type='LoRA', targets='qkv', rank=3, alpha=3)).eval()
    adapter = build_petl(VIT, dict(type='NOAH', **dict(OFF, adapter=4))).eval()
    ref_adapter = build_petl(VIT, dict(type='Adapter', bottleneck=4)).eval()
    for ours, theirs, pairs in (
            (lora, reference, [('petl_noah_qkv', 'petl_lora_qkv')]),
            (adapter, ref_adapter, [('petl_noah_mlp', 'petl_adapter_mlp')])):
        _perturb_trainable(ours)
        state = {k: v for k, v in ours.state_dict().items() if 'petl_' in k}
        for a, b in pairs:
            state = {k.replace(a, b): v for k, v in state.items()}
        theirs.load_state_dict(state, strict=False)
        assert ours.num_trainable() == theirs.num_trainable()
        with torch.no_grad():
            torch.testing.assert_close(run(ours, VIT)[0], run(theirs, VIT)[0])


def _manual_prompt_run(wrapper, prompts, x):
    """Host blocks without hooks; before block i the prompts (or carried states) after CLS."""
    host = wrapper.backbone
    tokens = {}
    handle = host.layers[0].register_forward_pre_hook(
        lambda m, a: tokens.setdefault('x', a[0].clone()), prepend=True)
    wrapper(x)
    handle.remove()
    noah(wrapper).remove_hooks()
    t, carried = tokens['x'], None
    for i, layer in enumerate(host.layers):
        p = prompts.get(i, carried)
        n = 0 if p is None else p.shape[1]
        if n:
            t = torch.cat((t[:, :1], p, t[:, 1:]), dim=1)
        t = layer(t)
        carried = t[:, 1:1 + n] if n else None
        t = torch.cat((t[:, :1], t[:, 1 + n:]), dim=1)
    return host.ln1(t)[:, 0]


@pytest.mark.parametrize('lengths', [[2, 0, 0], [2, 2, 2], [2, 0, 3], [0, 1, 0]])
def test_prompts_are_vpt_deep_with_carried_states(lengths):
    wrapper = build_petl(VIT, dict(type='NOAH', **dict(OFF, vpt=lengths))).eval()
    tokens = noah(wrapper).prompts.blocks
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = wrapper(x)[0]
        prompts = {int(i): t.prompts[0].expand(2, -1, -1) for i, t in tokens.items()}
        expected = _manual_prompt_run(wrapper, prompts, x)
    torch.testing.assert_close(out, expected)
    if lengths in ([2, 0, 0], [2, 2, 2]):  # = VPT-shallow / VPT-deep with the same prompts
        deep = lengths == [2, 2, 2]
        vpt = build_petl(VIT, dict(type='VPT', length=2, deep=deep)).eval()
        with torch.no_grad():
            vpt.backbone.layers[0].petl_vpt_tokens.prompts.copy_(
                torch.stack([tokens[str(i)].prompts[0] for i in range(3 if deep else 1)]))
            torch.testing.assert_close(vpt(x)[0], out)


def test_zero_init_without_prompts_and_prompts_act():
    host = build_petl(VIT, dict(type='Frozen')).eval()
    quiet = build_petl(VIT, dict(type='NOAH', vpt=0, lora=2, adapter=3)).eval()
    quiet.init_weights()  # the host's init, then NOAH's: B = 0 and up = 0 again
    host.load_state_dict({k: v for k, v in quiet.state_dict().items() if 'petl_' not in k})
    loud = build_petl(VIT, dict(type='NOAH', vpt=2, lora=2, adapter=3)).eval()
    loud.load_state_dict(quiet.state_dict(), strict=False)
    with torch.no_grad():
        torch.testing.assert_close(run(quiet, VIT)[0], run(host, VIT)[0])
        assert not torch.allclose(run(loud, VIT)[0], run(host, VIT)[0])


def test_supernet_copies_keep_their_subnet_and_weights():
    wrapper = build_petl(VIT, dict(type='NOAH', supernet=True, choices=SMALL)).eval()
    _perturb_trainable(wrapper)
    subnet = dict(vpt=[1, 1, 0], lora=[2, 0, 0], adapter=[3, 3, 3])
    noah(wrapper).set_subnet(subnet)
    with torch.no_grad():
        before = run(wrapper, VIT)[0]
        ema = copy.deepcopy(wrapper)
        noah(wrapper).set_subnet(noah(wrapper).largest())
        assert noah(ema).subnet() == subnet
        torch.testing.assert_close(run(ema, VIT)[0], before)


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match=r'vpt=\[1, 2\] must be one int >= 0 or 3 of them'):
        build_petl(VIT, dict(type='NOAH', vpt=[1, 2], lora=1, adapter=1))
    with pytest.raises(ValueError, match='must be one int >= 0 or 3'):  # the 12-layer default
        build_petl(VIT, dict(type='NOAH'))
    with pytest.raises(ValueError, match='every width 0'):
        build_petl(VIT, dict(type='NOAH', **OFF))
    with pytest.raises(ValueError, match='set choices=dict'):
        build_petl(VIT, dict(type='NOAH', supernet=True, lora=4))
    with pytest.raises(ValueError, match='depths must lie in 1..3'):
        build_petl(VIT, dict(type='NOAH', supernet=True, depths=[2, 4]))
    with pytest.raises(ValueError, match='positive int widths'):
        build_petl(VIT, dict(type='NOAH', supernet=True, choices=dict(vpt=(0, 1), lora=(1, ),
                                                                      adapter=(1, ))))
    with pytest.raises(ValueError, match="NOAH is not supported on 'mmpretrain.SwinTransformer'"):
        build_petl(TINY_BACKBONES[1], dict(type='NOAH', vpt=1, lora=1, adapter=1))
    fixed = noah(build_petl(VIT, dict(type='NOAH', vpt=1, lora=[0, 2, 2], adapter=1)))
    with pytest.raises(ValueError, match=r'lora=\[1, 2, 2\] exceeds the built widths'):
        fixed.set_subnet(dict(vpt=1, lora=[1, 2, 2], adapter=1))
    with pytest.raises(ValueError, match='dict'):
        fixed.set_subnet(dict(vpt=1, lora=1))


def test_supernet_training_needs_sampling():
    wrapper = build_petl(VIT, dict(type='NOAH', supernet=True, choices=SMALL)).train()
    with pytest.raises(RuntimeError, match='NOAHSamplingHook'):
        run(wrapper, VIT)
    with torch.no_grad():
        run(wrapper.eval(), VIT)  # evaluating the largest subnet is fine
    noah(wrapper).set_subnet(noah(wrapper).sample(random.Random(1)))
    run(wrapper.train(), VIT)


def test_sampling_hook_needs_a_supernet():
    class Runner:
        model = build_petl(VIT, dict(type='NOAH', vpt=1, lora=1, adapter=1))
        seed = 0
    with pytest.raises(ValueError, match="NOAHSamplingHook needs a NOAH supernet"):
        NOAHSamplingHook().before_train(Runner())


def _search(settings, score):
    method = noah(build_petl(VIT, dict(type='NOAH', supernet=True, choices=SMALL)))
    search = EvolutionSearch(method, score, settings, log=lambda line: None)
    return method, search, search.run()


def test_search_respects_the_limit_and_returns_the_best_seen():
    def score(subnet):  # a made-up accuracy that prefers LoRA in late layers and few prompts
        return sum((i + 1) * r for i, r in enumerate(subnet['lora'])) - sum(subnet['vpt'])

    settings = SearchSettings(population=8, select=3, mutation=3, crossover=3, generations=4,
                              param_limit=1500, seed=3)
    method, search, (best, best_score, params) = _search(settings, score)
    history = search.history
    assert len({key(h['subnet']) for h in history}) == len(history)  # each evaluated once
    assert len(history) <= settings.population * settings.generations
    assert all(h['params'] == method.count(h['subnet']) == formula(h['subnet'])
               and h['params'] <= 1500 for h in history)
    top = max(history, key=lambda h: (h['score'], -h['params']))
    assert (best, best_score, params) == (top['subnet'], top['score'], top['params'])
    assert {h['generation'] for h in history} == {0, 1, 2, 3}
    for h in history:  # mutants and crosses stay in NOAH's space
        for kind, widths in h['subnet'].items():
            assert depth_of(widths) in method.depths and not any(widths[depth_of(widths):])
    # the same seed replays the same search; the evolution beats its first random population
    again = _search(settings, score)[1]
    assert [h['subnet'] for h in again.history] == [h['subnet'] for h in history]
    assert best_score > max(h['score'] for h in history if h['generation'] == 0)


def test_search_settings_are_checked():
    with pytest.raises(ValueError, match='must not exceed population'):
        SearchSettings(population=4, select=2, mutation=3, crossover=2).check()
    with pytest.raises(ValueError, match='select=5 must lie in 1..population'):
        SearchSettings(population=4, select=5, mutation=1, crossover=1).check()
    with pytest.raises(RuntimeError, match='No subnet fits'):
        _search(SearchSettings(population=2, select=1, mutation=1, crossover=1, generations=1,
                               param_limit=10), lambda s: 0.)


TINY_CFG = osp.join(REPO, 'tests', 'configs', 'image', 'vit-b_vtab_tiny.py')
TINY_CHOICES = dict(vpt=(1, 2), lora=(1, 2), adapter=(1, 2))


def test_supernet_search_and_retrain_through_the_tools(tmp_path):
    root = write_tiny_vtab(str(tmp_path / 'vtab'))
    options = ['--cfg-options', *vtab_options(root)]
    supernet_cfg = tmp_path / 'supernet.py'
    supernet_cfg.write_text(
        f"_base_ = [{TINY_CFG!r}]\n"
        f"model = dict(backbone=dict(petl=dict(_delete_=True, type='NOAH', supernet=True,\n"
        f"                                     choices={TINY_CHOICES!r})))\n"
        # full checkpoints: the tiny host has no pretrained file to restore frozen weights from
        "custom_hooks = [dict(type='vpetl_mm.NOAHSamplingHook'),\n"
        "                dict(type='vpetl_mm.PETLCheckpointHook', adapter_only=False)]\n"
        "train_dataloader = dict(batch_size=6)\n"  # 12 images: 2 iterations
        "train_cfg = dict(max_epochs=1)\n"
        "param_scheduler = dict(t_initial=1, warmup_t=0)\n"
        "default_hooks = dict(checkpoint=dict(interval=1))\n")
    work = tmp_path / 'supernet'
    run_tool([PY, 'tools/train.py', str(supernet_cfg), '--work-dir', str(work),
              '--protocol', 'none', *options], str(tmp_path / 'supernet.log'))
    records = latest_scalars(str(work))
    # two iterations, each on the subnet NOAHSamplingHook draws for it (seed 42, the config's)
    tiny = TinyBackbone('mmpretrain.VisionTransformer', 'mmpretrain', dict(
        type='VisionTransformer', img_size=32, patch_size=8,
        arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)), ())
    method = noah(build_petl(tiny, dict(type='NOAH', supernet=True, choices=TINY_CHOICES)))
    drawn = [method.count(method.sample(iteration_rng(42, i))) for i in range(2)]
    assert [r['noah_params'] for r in records if 'noah_params' in r] == drawn
    supernet_top1 = [r['accuracy/top1'] for r in records if 'accuracy/top1' in r]
    assert len(supernet_top1) == 1

    out = tmp_path / 'searched' / 'subnet.py'
    search_dir = tmp_path / 'search'
    log = run_tool([PY, 'tools/noah_search.py', str(supernet_cfg), str(work / 'epoch_1.pth'),
                    '--out', str(out), '--work-dir', str(search_dir), '--population', '4',
                    '--select', '2', '--mutation', '1', '--crossover', '1', '--generations', '2',
                    '--param-limit', '0.0006', *options], str(tmp_path / 'search.log'))
    with open(search_dir / 'noah_search.json') as f:
        summary = json.load(f)
    # the search's evaluation of the whole supernet is the training run's validation
    assert summary['largest_subnet_score'] == pytest.approx(supernet_top1[0])
    history = summary['history']
    assert 4 <= len(history) <= 8 and {h['generation'] for h in history} == {0, 1}
    assert all(h['params'] <= 600 for h in history)
    best = summary['best']
    assert best['score'] == max(h['score'] for h in history)
    assert 'written to' in log

    retrain = tmp_path / 'retrain'
    run_tool([PY, 'tools/train.py', str(out), '--work-dir', str(retrain), '--protocol', 'none',
              *options], str(tmp_path / 'retrain.log'))
    from mmengine.config import Config
    petl = Config.fromfile(str(out)).model.backbone.petl
    assert {k: list(petl[k]) for k in ('vpt', 'lora', 'adapter')} == best['subnet']
    # the searched config keeps its base's vpetl_mm hooks, not the supernet's sampler
    hooks = [h['type'] for h in Config.fromfile(str(out)).get('custom_hooks', [])]
    assert 'supernet' not in petl and 'vpetl_mm.NOAHSamplingHook' not in hooks
    with open(retrain / 'petl_report.json') as f:
        assert json.load(f)['backbone_trainable'] == best['params'] == formula(best['subnet'])
    assert [r['step'] for r in latest_scalars(str(retrain)) if 'accuracy/top1' in r] == [1, 2, 3]
