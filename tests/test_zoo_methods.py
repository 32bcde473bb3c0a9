"""Method-specific checks of the image zoo beyond the registry-wide contract (test_contract.py).

The contract runs each method with its defaults; here the other variants a method defines
(FacT-TK besides the default TT) get the same merge-equivalence check, and their parameter
formulas are checked on the tiny ViT.
"""
import torch

from conftest import build_petl, run
from petl_contract import perturb_trainable as _perturb_trainable
from tiny_backbones import TINY_BACKBONES

VIT = TINY_BACKBONES[0]  # mmpretrain ViT: width 32, 3 blocks, MLP 64 (2 chunks of 32)


def _trainable(wrapper) -> int:
    return sum(p.numel() for p in wrapper.parameters() if p.requires_grad)


def test_fact_tk_counts_zero_init_and_merge():
    rank, dim, blocks, per_block = 4, 32, 3, 4 + 2 * 2
    wrapper = build_petl(VIT, dict(type='FacT', mode='tk', rank=rank)).eval()
    assert _trainable(wrapper) == 2 * dim * rank + rank ** 3 + blocks * per_block * rank
    host = build_petl(VIT, dict(type='Frozen')).eval()
    with torch.no_grad():
        for a, b in zip(run(wrapper, VIT), run(host, VIT)):  # V = 0: the host's output
            torch.testing.assert_close(a, b)
    _perturb_trainable(wrapper)
    with torch.no_grad():
        unmerged = run(wrapper, VIT)
        wrapper.merge()
        merged = run(wrapper, VIT)
        wrapper.unmerge()
        restored = run(wrapper, VIT)
    assert not torch.allclose(unmerged[0], run(host, VIT)[0])  # the increments are not zero
    for a, b, c in zip(unmerged, merged, restored):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(c, a)


def test_fact_tt_count():
    wrapper = build_petl(VIT, dict(type='FacT', rank=4))
    # U, V, and per block r x r cores for q, k, v, proj and 2 + 2 MLP chunks
    assert _trainable(wrapper) == 2 * 32 * 4 + 3 * (4 + 2 * 2) * 4 * 4
