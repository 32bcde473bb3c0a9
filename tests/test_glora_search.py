"""GLoRA's supernet, subnets and evolutionary search (tools/glora_search.py).

The contract (test_contract.py -k glora) runs the fixed subnet on every profile. Here: the
supernet draws a new choice per forward in training, a fixed subnet holding the supernet's
sliced weights computes what the supernet computes with that subnet pinned, bad subnets fail
in one line, the search keeps to GLoRA's space and limit, and the tool runs end to end on a
tiny VTAB task, its written config and checkpoint loading strictly.
"""
import json
import os.path as osp
import random

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from conftest import build_petl, run
from petl_contract import PETLContractTester, perturb_trainable
from runner_utils import PY, REPO, latest_scalars, run_tool, vtab_options, write_tiny_vtab
from tiny_backbones import TINY_BACKBONES
from vpetl_mm.apis import build_runner
from vpetl_mm.apis.glora_search import GLoRAEvolutionSearch, glora_settings, subnet_state
from vpetl_mm.apis.petl_checkpoint import load_petl_checkpoint
from vpetl_mm.methods.glora import CHOICES, LARGEST
from vpetl_mm.utils import find_petl_backbone

VIT = TINY_BACKBONES[0]  # mmpretrain ViT: width 32, 3 blocks -> 12 GLoRA layers


def method(wrapper):
    return wrapper.methods[0]


def _mixed_subnet(layers: int):
    """Every choice of every tensor appears (cycled over the layers)."""
    return [{n: c[i % len(c)] for n, c in CHOICES.items()} for i in range(layers)]


def test_supernet_draws_a_choice_per_training_forward():
    wrapper = build_petl(VIT, dict(type='GLoRA', supernet=True))
    glora = method(wrapper)
    assert len(glora.layers) == 12 and glora.count() == glora.count([LARGEST] * 12)
    random.seed(0)
    wrapper.train()
    drawn = []
    for _ in range(3):
        run(wrapper, VIT)
        drawn.append(glora.subnet_now())
    assert drawn[0] != drawn[1] != drawn[2]
    assert all(layer[n] in CHOICES[n] for subnet in drawn for layer in subnet for n in CHOICES)
    with torch.no_grad():
        run(wrapper.eval(), VIT)
    assert glora.subnet_now() == [LARGEST] * 12  # eval: the largest choices
    pinned = glora.sample(random.Random(3))
    glora.set_subnet(pinned)
    run(wrapper.train(), VIT)
    assert glora.subnet_now() == pinned  # a pinned subnet is not re-drawn


def test_fixed_subnet_matches_the_supernet_running_it():
    supernet = build_petl(VIT, dict(type='GLoRA', supernet=True))
    perturb_trainable(supernet)  # off the zero init, so every support tensor counts
    glora = method(supernet)
    random.seed(1)
    run(supernet.train(), VIT)
    # the choice the training forward drew, and one holding every choice of every tensor
    for subnet in (glora.subnet_now(), _mixed_subnet(12)):
        fixed = build_petl(VIT, dict(type='GLoRA', subnet=subnet))
        state = subnet_state(supernet, glora, supernet.state_dict(), subnet)
        fixed.load_state_dict(state, strict=True)
        assert fixed.num_trainable() == glora.count(subnet) == method(fixed).count() \
            < glora.count()
        glora.set_subnet(subnet)
        with torch.no_grad():
            expected = run(supernet.eval(), VIT)
            got = run(fixed.eval(), VIT)
            assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(expected, got))
            method(fixed).merge()  # the searched subnet still folds into the host
            merged = run(fixed, VIT)
            method(fixed).unmerge()
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(expected, merged))
        glora.set_subnet(None)
        assert not all(torch.allclose(a, b, atol=1e-6)  # the largest subnet differs
                       for a, b in zip(run(supernet, VIT), got))


def test_bad_subnets_fail_in_one_line():
    good = dict(A='lora', B='none', C='vector', D='constant', E='none')
    with pytest.raises(ValueError, match=r'one choice dict per GLoRA layer \(12: blocks x '
                                         r'targets\), got 2'):
        build_petl(VIT, dict(type='GLoRA', subnet=[good, good]))
    with pytest.raises(ValueError, match=r"subnet\[5\] = .* is not a choice dict"):
        build_petl(VIT, dict(type='GLoRA', subnet=[good] * 5 + [dict(good, C='constant')]
                             + [good] * 6))
    with pytest.raises(ValueError, match='supernet=True builds every choice; drop subnet='):
        build_petl(VIT, dict(type='GLoRA', supernet=True, subnet=[good] * 12))
    with pytest.raises(ValueError, match='set_subnet\\(\\) needs supernet=True'):
        method(build_petl(VIT, dict(type='GLoRA'))).set_subnet([good] * 12)


def test_search_keeps_to_the_space_and_the_limit():
    glora = method(build_petl(VIT, dict(type='GLoRA', supernet=True)))

    def score(subnet):  # a made-up accuracy that prefers lora A in late layers, few B
        return sum(i * (layer['A'] == 'lora') - (layer['B'] != 'none')
                   for i, layer in enumerate(subnet))

    settings = glora_settings(population=8, select=3, mutation=3, crossover=3, generations=4,
                              param_limit=4000, seed=3)
    search = GLoRAEvolutionSearch(glora, score, settings, log=lambda line: None)
    best, best_score, params = search.run()
    history = search.history
    assert len({search.key(h['subnet']) for h in history}) == len(history)
    assert all(h['params'] == glora.count(h['subnet']) <= 4000 for h in history)
    assert {h['generation'] for h in history} == {0, 1, 2, 3}
    assert all(layer[n] in CHOICES[n] for h in history for layer in h['subnet'] for n in CHOICES)
    top = max(history, key=lambda h: (h['score'], -h['params']))
    assert (best, best_score, params) == (top['subnet'], top['score'], top['params'])
    assert best_score > max(h['score'] for h in history if h['generation'] == 0)
    # ViT-Slim's defaults
    d = glora_settings()
    assert (d.population, d.select, d.mutation, d.crossover, d.generations, d.m_prob,
            d.param_limit) == (50, 10, 25, 25, 20, 0.2, 1_000_000)


TINY_CFG = osp.join(REPO, 'tests', 'configs', 'image', 'vit-b_vtab_tiny.py')


def test_supernet_training_and_search_through_the_tool(tmp_path):
    root = write_tiny_vtab(str(tmp_path / 'vtab'))
    options = ['--cfg-options', *vtab_options(root)]
    supernet_cfg = tmp_path / 'supernet.py'
    supernet_cfg.write_text(
        f"_base_ = [{TINY_CFG!r}]\n"
        "model = dict(backbone=dict(petl=dict(_delete_=True, type='GLoRA', supernet=True)))\n"
        # full checkpoints: the tiny host has no pretrained file to restore frozen weights from
        "custom_hooks = [dict(type='vpetl_mm.PETLCheckpointHook', adapter_only=False)]\n"
        "train_dataloader = dict(batch_size=6)\n"  # 12 images: 2 iterations
        "train_cfg = dict(max_epochs=1)\n"
        "param_scheduler = dict(t_initial=1, warmup_t=0)\n"
        "default_hooks = dict(checkpoint=dict(interval=1))\n")
    work = tmp_path / 'supernet'
    cfg = Config.fromfile(str(supernet_cfg))  # step 1 in-process (the tool runs as the CLI)
    cfg.merge_from_dict(dict(o.split('=') for o in vtab_options(root)))
    cfg.work_dir, cfg.launcher = str(work), 'none'
    runner = build_runner(cfg)
    runner.train()
    assert method(find_petl_backbone(runner.model)).supernet
    assert [r for r in latest_scalars(str(work)) if 'accuracy/top1' in r]

    search_dir = tmp_path / 'search'
    out = search_dir / 'glora_subnet.py'  # the default --out
    log = run_tool([PY, 'tools/glora_search.py', str(supernet_cfg), str(work / 'epoch_1.pth'),
                    '--work-dir', str(search_dir), '--population', '4',
                    '--select', '2', '--mutation', '1', '--crossover', '1', '--generations', '2',
                    '--param-limit', '0.004', *options], str(tmp_path / 'search.log'))
    with open(search_dir / 'glora_search.json') as f:
        summary = json.load(f)
    history, best = summary['history'], summary['best']
    assert 4 <= len(history) <= 8 and {h['generation'] for h in history} == {0, 1}
    assert all(h['params'] <= 4000 for h in history)
    assert best['score'] == max(h['score'] for h in history) and 'written to' in log

    cfg = Config.fromfile(str(out))
    petl = cfg.model.backbone.petl
    assert petl.type == 'GLoRA' and 'supernet' not in petl and petl.subnet == best['subnet']
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    load_petl_checkpoint(model, f'{out}.pth')  # strict: every tensor in its subnet shape
    assert find_petl_backbone(model).num_trainable() == best['params']


def test_a_searched_subnet_and_the_supernet_keep_the_contract():
    PETLContractTester(dict(type='GLoRA', subnet=_mixed_subnet(12)), VIT).check_all()
    # the supernet trains a different subset of its tensors every forward (so no check that
    # one step reaches every tensor); at step 0, in merges and checkpoints it is a GLoRA too
    tester = PETLContractTester(dict(type='GLoRA', supernet=True), VIT)
    for check in ('zero_init_keeps_base_output', 'merge_round_trip',
                  'adapter_only_checkpoint_round_trip', 'exactly_intended_parameters_train'):
        getattr(tester, f'check_{check}')()
