"""End-to-end runs of the official dense configs with a tiny Swin in PETLBackbone, on CPU:
mmdet Mask R-CNN (real COCO bbox + segm evaluation) and mmseg UperNet (real mIoU), each with
adapter-only checkpoints, ``--resume`` and ``tools/test.py``. Data is written into ``tmp_path``
in the real on-disk formats (no network)."""
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(__file__))

from datagen.ade20k import write_ade20k  # noqa: E402
from datagen.coco import write_coco  # noqa: E402
from runner_utils import (PY, REPO, check_adapter_only, check_report, check_resume,  # noqa: E402
                          expected_ppt, host_backbone, latest_scalars, run_tool, train)

DET_CFG = osp.join(REPO, 'tests', 'configs', 'mask-rcnn_swin-tiny-petl.py')
SEG_CFG = osp.join(REPO, 'tests', 'configs', 'upernet_swin-tiny-petl.py')
SUM_C = 16 * 2 + 32 * 2  # the tiny Swin: widths 16 and 32, two blocks each


def coco_options(root: str):
    ann = osp.join(root, 'annotations', 'instances_val2017.json')
    return [f'{s}_dataloader.dataset.data_root={root}/' for s in ('train', 'val', 'test')] + [
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']


def test_mmdet_mask_rcnn_lora_coco_train_resume_test(tmp_path):
    data = str(tmp_path / 'coco')
    write_coco(data)
    work, opts = str(tmp_path / 'work'), coco_options(data)
    train(DET_CFG, work, opts)

    expected = 4 * 4 * SUM_C  # LoRA rank 4 on q and v: 2 updates of r * (C + C) per block
    check_report(work, expected)
    check_adapter_only(osp.join(work, 'iter_4.pth'), host_backbone(DET_CFG, 'mmdet'), expected,
                       {'roi_head.bbox_head.fc_cls.weight', 'neck.fpn_convs.0.conv.weight'})
    val = [s for s in latest_scalars(work) if 'coco/bbox_mAP' in s]
    assert len(val) == 1 and val[0]['step'] == 4
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert 0. <= val[0][key] <= 1.
        assert val[0][f'{key}_ppt'] == expected_ppt(val[0][key], expected)

    out = train(DET_CFG, work, opts + ['train_cfg.max_iters=6'], ['--resume'],
                log_name='resume.log')
    check_resume(work, out, 4, 6)

    metrics_file = str(tmp_path / 'metrics.json')
    log = run_tool([PY, 'tools/test.py', DET_CFG, osp.join(work, 'iter_6.pth'), '--work-dir',
                    str(tmp_path / 'test'), '--out', metrics_file, '--cfg-options', *opts],
                   str(tmp_path / 'test.log'))
    assert 'Adapter-only checkpoint: initialising the model first' in log
    with open(metrics_file) as f:
        metrics = json.load(f)
    assert {'coco/bbox_mAP', 'coco/segm_mAP', 'coco/segm_mAP_ppt'} <= set(metrics)


def test_mmseg_upernet_adapter_ade20k_train_resume(tmp_path):
    data = write_ade20k(str(tmp_path / 'ade'))
    work = str(tmp_path / 'work')
    opts = [f'{s}_dataloader.dataset.data_root={data}' for s in ('train', 'val', 'test')]
    train(SEG_CFG, work, opts)

    # dense Adapter defaults: after attention and after the MLP, 2*C*m + m + C each (m = 8)
    expected = 2 * (2 * 8 * SUM_C + 8 * 4 + SUM_C)
    check_report(work, expected)
    check_adapter_only(osp.join(work, 'iter_4.pth'), host_backbone(SEG_CFG, 'mmseg'), expected,
                       {'decode_head.conv_seg.weight', 'auxiliary_head.conv_seg.weight'},
                       marker='petl_adapter_')
    val = [s for s in latest_scalars(work) if 'mIoU' in s]
    assert len(val) == 1 and val[0]['step'] == 4
    assert val[0]['mIoU_ppt'] == expected_ppt(val[0]['mIoU'] / 100., expected)

    out = train(SEG_CFG, work, opts + ['train_cfg.max_iters=6'], ['--resume'],
                log_name='resume.log')
    check_resume(work, out, 4, 6)
