"""The dense benchmark's recipe rows (Swin-B / Swin-L detection and segmentation).

The V-PETL Bench dense numbers are the Mona release's (V-PETL's ``SemanticSegmentation/README.md``
says "Coming Soon"): Leiyi-Hu/mona@5deeac9 trains every method of a task with one recipe, its
per-method configs differing only in the backbone type (read for all nine methods of COCO, VOC
and ADE20K), except Mona's own ADE20K lr and drop path. LoRand and E3VA have no public code;
their published numbers come from the same papers' tables, so they take the task's row. The
settings outside V-PETL's table (Mask R-CNN 1x COCO, UperNet VOC12 aug, UperNet DINOv2 ViT-B/14
ADE20K) record the official OpenMMLab configs they are built from.

Examples:
    >>> [r.values['lr'] for r in DENSE_ROWS if r.applies('mona', 'swin-l_ade20k')]
    [0.0003, 6e-05]
"""
from typing import Tuple

from .recipe_settings import SettingRow

_MONA = 'Leiyi-Hu/mona@5deeac9'
_DET = f'{_MONA} Swin-Transformer-Object-Detection/mona_configs'
_SEG = f'{_MONA} Swin-Transformer-Semantic-Segmentation/mona_configs'
_MMDET = 'open-mmlab/mmdetection@fff646d configs/swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
_MMSEG = ('open-mmlab/mmsegmentation@04d3c87 configs/swin/swin-large-patch4-window7-in22k-pre_'
          'upernet_8xb2-160k_ade20k-512x512.py, configs/_base_/schedules/schedule_40k.py')
# the official ViT-B UperNet ADE20K config that configs/_base_/dense/upernet_dinov2-b14_ade20k.py
# inherits (read in mmseg 1.2.2's package copy, .mim/configs/vit/), with its model and data bases
_MMSEG_VIT = ('open-mmlab/mmsegmentation@04d3c87 configs/vit/vit_vit-b16_mln_upernet_8xb2-160k_'
              'ade20k-512x512.py, configs/_base_/models/upernet_vit-b16_ln_mln.py')
_ADAMW = dict(optimizer='AdamW', label_smoothing=0., augmentation=True)
_STEP_WARMUP = dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500)


def _poly(end: int) -> Tuple[dict, dict]:
    """mmseg's Swin and ViT UperNet schedule: 1500 warm-up iterations from 1e-6 x lr, then
    poly (power 1)."""
    return (dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
            dict(type='PolyLR', power=1.0, eta_min=0., begin=1500, end=end, by_epoch=False))


# method folder -> the name in Mona's per-method config files (LoRand, E3VA: none, '*')
_NAMES = dict(full='full', frozen='fixed', bitfit='bitfit', lntune='LN', partial1='partial_1',
              adapter='adapter', lora='lora', adaptformer='adaptformer', mona='mona')
_BATCH_NOTE = ('Batch: Mona 1 image/GPU x 16 GPUs, ours 2 x 8 (the same 16, so the same lr); '
               'Mona trained with apex fp16 (--amp here).')

#: rows, the method-specific ones first where both apply (:func:`.recipe_settings.matching_rows`)
DENSE_ROWS: Tuple[SettingRow, ...] = (
    SettingRow('swin-b_cascade-coco',
               f'{_DET}/swin-b_coco/cascade_mask_swin_base_3x_coco_sample_1_bs_16_<method>.py, '
               'mona_configs/_base_/schedules/schedule_1x.py',
               dict(_ADAMW, lr=1e-4, weight_decay=0.05, max_epochs=36, drop_path_rate=0.3),
               schedule=(_STEP_WARMUP, dict(type='MultiStepLR', milestones=[27, 33],
                                            gamma=0.1, by_epoch=True)),
               note=_BATCH_NOTE, names=_NAMES),
    SettingRow('swin-l_voc',
               f'{_DET}/swin-l_voc/voc_retinanet_swin_large_1x_<method>.py, '
               'mona_configs/_base_/datasets/voc0712.py',
               dict(_ADAMW, lr=1e-4, weight_decay=0.05, max_epochs=4, drop_path_rate=0.2),
               # no warm-up: the VOC configs set lr_config without one and inherit no schedule
               schedule=(dict(type='MultiStepLR', milestones=[3], gamma=0.1, by_epoch=True), ),
               note=_BATCH_NOTE + ' 4 epochs over VOC07+12 trainval repeated 3 times. Mona '
               'also froze stages 0-1 (frozen_stages=1) on top of each method; here the method '
               'alone decides what trains (PETLBackbone owns freezing).', names=_NAMES),
    SettingRow('swin-l_ade20k', f'{_SEG}/swin-l_ade20k/ade20k_upernet_swin_large_160k_mona.py',
               dict(lr=3e-4, drop_path_rate=0.2), folders=('mona', ),
               note='lr 0.00006 x 5, drop path 0.2: Mona only.'),
    SettingRow('swin-l_ade20k',
               f'{_SEG}/swin-l_ade20k/ade20k_upernet_swin_large_160k_<method>.py, '
               'mona_configs/_base_/schedules/schedule_160k.py',
               dict(_ADAMW, lr=6e-5, weight_decay=0.01, max_iters=160_000, batch_size=2,
                    drop_path_rate=0.3),
               schedule=_poly(160_000),
               note="Heads: Mona's configs use BN in the UPerHead / FCN heads for seven of its "
               "nine methods (SyncBN for Full, Frozen and Mona); ours keep mmseg's SyncBN for "
               'all (the same statistics on one GPU, pooled over GPUs otherwise).',
               names=_NAMES),
    SettingRow('swin-b_coco', _MMDET,
               dict(_ADAMW, lr=1e-4, weight_decay=0.05, max_epochs=12),
               schedule=(dict(_STEP_WARMUP, end=1000),
                         dict(type='MultiStepLR', milestones=[8, 11], gamma=0.1, by_epoch=True)),
               note='No published PETL numbers for this setting (a cheaper stand-in for the '
               'Cascade 3x); Swin-T in the official config, scaled here to Swin-B.'),
    SettingRow('swin-b_coco',
               f'{_DET}/swin-b_coco/cascade_mask_swin_base_3x_coco_sample_1_bs_16_<method>.py',
               dict(drop_path_rate=0.3),
               note="Swin-B's drop path from Mona's Swin-B COCO configs (the official Swin-T "
               'config has 0.2).', names=_NAMES),
    SettingRow('swin-l_voc12aug', f'{_SEG}/swin-l_ade20k/ade20k_upernet_swin_large_160k_mona.py',
               dict(lr=3e-4, drop_path_rate=0.2), folders=('mona', ),
               note="Mona's ADE20K lr and drop path carried over (no VOC segmentation config "
               'in the Mona release).'),
    SettingRow('swin-l_voc12aug', _MMSEG,
               dict(_ADAMW, lr=6e-5, weight_decay=0.01, max_iters=40_000, batch_size=2,
                    drop_path_rate=0.3),
               schedule=_poly(40_000),
               note='No published PETL numbers for this setting: the ADE20K Swin-L recipe over '
               "mmseg's 40k VOC schedule (docs/dense.md)."),
    SettingRow('dinov2-b14_ade20k', _MMSEG_VIT,
               dict(_ADAMW, lr=6e-5, weight_decay=0.01, max_iters=160_000, batch_size=2,
                    drop_path_rate=0.),
               schedule=_poly(160_000),
               note='No published PETL numbers for this setting: every method trains with the '
               "official ViT-B UperNet recipe (no decay on pos_embed, cls_token and norms), "
               "DINOv2 ViT-B/14 in place of the IN-1k ViT-B/16 (docs/foundation.md)."),
)
