"""End-to-end runs of ``tools/train.py`` on CPU: mmpretrain image classification (VTAB-1k
layout) and mmaction2 video recognition (RAWFRAMES), each with LoRA, real metrics, PETL hooks,
adapter-only checkpoints and ``--resume``.

Each run is a subprocess on tiny models and data written into ``tmp_path`` (no network).
"""
import os.path as osp
import re
import sys

sys.path.insert(0, osp.dirname(__file__))

from datagen.rawframes import write_rawframes  # noqa: E402
from runner_utils import (VIDEO_CFG, VIT_CFG, check_adapter_only, check_report,  # noqa: E402
                          check_resume, expected_ppt, host_backbone, latest_scalars,
                          rawframes_options, train, vtab_options, write_tiny_vtab)


# -- tests -----------------------------------------------------------------------------------
def test_mmpretrain_vit_lora_vtab_train_and_resume(tmp_path):
    data = write_tiny_vtab(str(tmp_path / 'vtab'))
    work = str(tmp_path / 'work')
    opts = vtab_options(data)
    train(VIT_CFG, work, opts)

    # LoRA rank r on q and v of the fused qkv: per block 2 updates of r*(C + C) parameters.
    blocks, C, r = 3, 32, 4
    expected = blocks * 4 * C * r
    check_report(work, expected)
    host = host_backbone(VIT_CFG, 'mmpretrain')
    check_adapter_only(osp.join(work, 'iter_6.pth'), host, expected,
                       {'head.layers.head.weight', 'head.layers.head.bias'})
    assert osp.isfile(osp.join(work, 'efficiency.json'))

    val = [s for s in latest_scalars(work) if 'accuracy/top1' in s]
    assert len(val) == 1 and val[0]['step'] == 6
    top1 = val[0]['accuracy/top1']
    assert 0. <= top1 <= 100.
    assert val[0]['accuracy/top1_ppt'] == expected_ppt(top1 / 100., expected)

    out = train(VIT_CFG, work, opts + ['train_cfg.max_iters=9'], ['--resume'],
                log_name='resume.log')
    assert 'Auto resumed from the latest checkpoint' in out
    assert re.search(r'Load report \(checkpoint load\): 0/\d+ host tensors and 6/6 PETL tensors '
                     r'loaded \(adapter-only checkpoint', out)
    check_resume(work, out, 6, 9)
    val = [s for s in latest_scalars(work) if 'accuracy/top1' in s]
    assert val and val[-1]['step'] == 9 and 'accuracy/top1_ppt' in val[-1]

    # load_from an adapter-only checkpoint starts a new run (iteration 0) from its tensors
    new = str(tmp_path / 'finetune_again')
    out = train(VIT_CFG, new, opts + ['train_cfg.max_iters=2',
                                      f'load_from={osp.join(work, "iter_9.pth")}'])
    assert re.search(r'Load report \(checkpoint load\): 0/\d+ host tensors and 6/6 PETL tensors '
                     r'loaded \(adapter-only checkpoint', out)
    assert 'resumed' not in out and re.search(r'Iter\(train\) \[\s*1/2\]', out)


def test_mmaction_videomae_lora_rawframes_train_and_resume(tmp_path):
    root = str(tmp_path / 'rawframes_data')
    ann = write_rawframes(root, dict(train=[0, 1, 2, 0, 1, 2], val=[0, 1, 2, 0]),
                          num_frames=8, size=32)
    assert osp.isfile(osp.join(root, 'rawframes', 'train_video_0000', 'img_00008.jpg'))
    with open(ann['train']) as f:
        assert f.readline().split() == ['train_video_0000', '8', '0']
    work = str(tmp_path / 'work')
    opts = rawframes_options(root, ann)
    train(VIDEO_CFG, work, opts)

    blocks, C, r = 2, 32, 4
    expected = blocks * 4 * C * r
    check_report(work, expected)
    host = host_backbone(VIDEO_CFG, 'mmaction')
    check_adapter_only(osp.join(work, 'iter_4.pth'), host, expected,
                       {'cls_head.fc_cls.weight', 'cls_head.fc_cls.bias'})

    val = [s for s in latest_scalars(work) if 'acc/top1' in s]
    assert len(val) == 1 and val[0]['step'] == 4
    top1 = val[0]['acc/top1']
    assert top1 in {i / 4 for i in range(5)}  # 4 validation clips
    assert val[0]['acc/top1_ppt'] == expected_ppt(top1, expected)

    out = train(VIDEO_CFG, work, opts + ['train_cfg.max_iters=6'], ['--resume'],
                log_name='resume.log')
    # 1 host tensor: VideoMAE's sinusoidal pos_embed buffer, saved with the adapters
    assert re.search(r'Load report \(checkpoint load\): 1/\d+ host tensors and 4/4 PETL tensors '
                     r'loaded \(adapter-only checkpoint', out)
    check_resume(work, out, 4, 6)
    val = [s for s in latest_scalars(work) if 'acc/top1' in s]
    assert val and val[-1]['step'] == 6 and 'acc/top1_ppt' in val[-1]
