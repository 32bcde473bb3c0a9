"""Each method of the image zoo trains through ``tools/train.py`` on a tiny generated VTAB task.

The run uses the tiny copy of the image benchmark setting (tests/configs/image/vit-b_vtab_tiny.py:
the real classifier, wrapper, normalisation, schedule and dataset) with ``--protocol none``;
it must train every epoch, evaluate on val200, and train exactly the method's parameters.
"""
import json
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(__file__))

from runner_utils import PY, REPO, latest_scalars, run_tool, write_tiny_vtab  # noqa: E402

TINY = osp.join(REPO, 'tests', 'configs', 'image', 'vit-b_vtab_tiny.py')
# method -> (the petl dict for the tiny ViT: 2 blocks, width 32, MLP 64; its trainable count)
ZOO = dict(
    # scale + shift after the patch embedding, 6 layers per block (32 + 96 + 32 + 32 + 64 + 32)
    # and the final norm
    SSF=(dict(type='SSF'), 2 * (32 + 2 * 288 + 32)),
    # two adapters per block (before qkv and fc1), hidden 8, groups 2: 32*8 + 8 + 32*4 + 32
    RepAdapter=(dict(type='RepAdapter'), 2 * 2 * (32 * 8 + 8 + 32 * 4 + 32)),
    # rank 2 around proj (32 -> 32) and fc2 (64 -> 32): parallel in*2+2+2*out+out, sequential
    Hydra=(dict(type='Hydra'), 2 * ((32 * 2 + 2 + 2 * 32 + 32) * 2
                                    + (64 * 2 + 2 + 2 * 32 + 32) + (32 * 2 + 2 + 2 * 32 + 32))),
    # shared U and V (32 x 16 each), 16 x 16 cores for q, k, v, proj and 2 + 2 MLP chunks
    FacT=(dict(type='FacT'), 2 * 32 * 16 + 2 * (4 + 2 * 2) * 16 * 16),
    # prompts: 4 at the input / 4 per block
    VPT=(dict(type='VPT', length=4), 4 * 32),
    VPT_deep=(dict(type='VPT', length=4, deep=True, dropout=0.1), 2 * 4 * 32),
    # rank-2 side layers before both blocks, added after the second
    DTL=(dict(type='DTL'), 2 * 2 * 32 * 2),
    # per block: 2 prefixes (2 x 32) from a 4-wide MLP (32*4 + 4 + 4*64 + 64)
    PrefixTuning=(dict(type='PrefixTuning', length=2, mid=4), 2 * (2 * 32 + 132 + 320)),
    # per block: 2 key / value pairs (2 x 2 x 32) and a bottleneck-4 adapter
    UTuning=(dict(type='UTuning', length=2, bottleneck=4), 2 * (2 * 2 * 32 + 2 * 32 * 4 + 4 + 32)),
    # 8 x 8 mixing per block; the calibration pass runs first (tools/train.py adds the hook)
    SCT=(dict(type='SCT', channels=8), 2 * (8 * 8 + 8)),
    # k = 1 per row + biases: patch conv 32 rows, per block qkv 96, proj 32, fc1 64, fc2 32;
    # the selection pass on two views through GPS's real contrastive pipeline (224 px)
    GPS=(dict(type='GPS'), 2 * (32 + 2 * (96 + 32 + 64 + 32)),
         "custom_hooks = [dict(type='vpetl_mm.PETLCalibrationHook', views=2,\n"
         "                     pipeline={{_base_.gps_contrast_pipeline}})]\n"),
    # a flow on both shortcuts of both blocks: affine 2 * 32 + 6 planar layers of 2 * 32 + 1
    SNF=(dict(type='SNF'), 2 * 2 * (64 + 6 * 65)),
    # per block: 2 prompts (2 * 32), rank 2 on qkv (2 * (32 + 96)), adapter 2 (2 * 2 * 32 + 2 + 32)
    NOAH=(dict(type='NOAH', vpt=2, lora=2, adapter=2), 2 * (2 * 32 + 2 * 128 + 2 * 64 + 2 + 32)),
    # side networks. LST r = 8 (width 4, 2 heads, MLP 8): per block a down-projection
    # 32*4+4, a gate and a side block (2 norms 2*8, qkv 4*12+12, proj 20, fc1 40, fc2 36); the
    # first down-projection, the final norm 8 and the up-projection 4*32+32
    LST=(dict(type='LST'), 2 * (132 + 1 + 172) + 132 + 8 + 160),
    # rank 4: per block norm 64, down 32*4+4, qkv 4*12+12, up 4*32+32
    LAST=(dict(type='LAST', rank=4), 2 * (64 + 132 + 60 + 160)),
    # two stages of width 8 (one side block each): meta tokens 2*32, stem 216+16+264+16,
    # overlap embedding 584+16, side blocks 872, stage norms 16, bridges 264, register norms
    # 16, up 8*32+32; and the 2 * 2 block norms (64 each)
    HST=(dict(type='HST', dims=(8, 8), heads=(2, 2)),
         64 + 512 + 600 + 2 * (872 + 16 + 264 + 16) + 288 + 4 * 64),
)
CALIBRATED = {'SCT', 'GPS'}


@pytest.mark.parametrize('method', sorted(ZOO))
def test_method_trains_on_tiny_vtab(method, tmp_path):
    root = write_tiny_vtab(str(tmp_path / 'vtab'))
    petl, trainable, *lines = ZOO[method]
    cfg = tmp_path / f'{method}.py'
    cfg.write_text(f"_base_ = [{TINY!r}]\n"
                   f"model = dict(backbone=dict(petl=dict(_delete_=True, **{petl!r})))\n"
                   + ''.join(lines))
    work = str(tmp_path / 'work')
    args = [PY, 'tools/train.py', str(cfg), '--work-dir', work, '--protocol', 'none',
            '--cfg-options', *[f'{s}_dataloader.dataset.data_root={root}'
                               for s in ('train', 'val', 'test')]]
    log = run_tool(args, str(tmp_path / 'train.log'))
    if method in CALIBRATED:  # on the 12 training images, before the first iteration
        views = 2 if method == 'GPS' else 1
        assert f"['{method}'] calibrated on 12 samples ({views} view(s) each)" in log
        assert log.index('calibrated on') < log.index('Epoch(train)')
        # a rerun in the same work dir reuses the cached selection
        assert 'selection loaded from' in run_tool(args, str(tmp_path / 'rerun.log'))
    records = latest_scalars(work)
    assert [r['step'] for r in records if 'accuracy/top1' in r] == [1, 2, 3]  # val each epoch
    assert all(r['loss'] == r['loss'] for r in records if 'loss' in r)  # no NaN
    with open(osp.join(work, 'petl_report.json')) as f:
        report = json.load(f)
    assert report['backbone_trainable'] == trainable
