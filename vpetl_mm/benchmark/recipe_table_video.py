"""The video benchmark's recipe rows (VideoMAE ViT-B, Video Swin-B on SSv2 / HMDB51 / K400).

V-PETL Bench trains every video method with one script: its six
``VideoActionRecognition/train/train_model_<method>.py`` are identical apart from the model
file they import (read at c188fad), so one row per backbone records that recipe for every
method folder: SGD momentum 0.9, weight decay 0 (``--weight_decay`` default; ``bn`` parameters
0 in any case), lr = blr x total batch / 256 with blr 0.1, a per-iteration half cosine to
``min_lr`` 0 after 10 linear warm-up epochs (``utils/lr_sched.py``), 90 epochs, plain
cross-entropy, AMP, the VideoMAE linear-probe train augmentation (multi-scale crop), drop path
0.4 on Video Swin-B (hard-coded in the script) and ``--drop_path`` 0 on VideoMAE. The methods
added after V-PETL (DoRA, GLoRA, Adapter+) train with the same rows.

Examples:
    >>> [row.values['drop_path_rate'] for row in VIDEO_ROWS]
    [0.0, 0.4]
"""
from typing import Tuple

from .recipe_settings import SettingRow
from .recipe_table import VPETL

_SCRIPT = (f'{VPETL} VideoActionRecognition/train/train_model_<method>.py, '
           'VideoActionRecognition/utils/lr_sched.py')
# method folder -> its script's name (train_model_<name>.py); Frozen, DoRA, GLoRA, Adapter+:
# none, '*' (all six scripts are the same)
_NAMES = dict(full='Full-fine-tuning', adaptformer='AdaptFormer', bapat='patt', lora='LoRA',
              bitfit='BitFit', prefix='Prefix-tuning ')
_RECIPE = dict(optimizer='SGD', lr=0.05, weight_decay=0., max_epochs=90, label_smoothing=0.,
               augmentation=True)
# 10 warm-up epochs, then a half cosine to 0 ending at epoch 90, both per iteration
_SCHEDULE = (dict(type='LinearLR', begin=0, end=10, by_epoch=True),
             dict(type='CosineAnnealingLR', begin=10, end=90, T_max=80, eta_min=0.,
                  by_epoch=True))
_NOTE = ('lr: the script sets blr 0.1 and lr = blr x total batch / 256; the repository records '
         'neither the batch nor the GPU count of the published runs (argparse default 512 per '
         'GPU), ours is 16 clips x 8 GPUs = 128, so lr 0.05 (auto_scale_lr keeps the rule for '
         'other batches). Warm-up: the script ramps linearly from 0, ours from 1e-3 x lr '
         "(mmengine's LinearLR needs a start factor > 0).")

#: one row per video backbone, every method and dataset (the script takes ``--data_set``)
VIDEO_ROWS: Tuple[SettingRow, ...] = (
    SettingRow('videomae-b_*', _SCRIPT, dict(_RECIPE, drop_path_rate=0.), schedule=_SCHEDULE,
               note=_NOTE + ' Head: trunc-normal std 0.01 (MoCo v3), as TimeSformerHead; the '
               "script's BatchNorm1d (affine=False) before it is not in mmaction's head.",
               names=_NAMES),
    SettingRow('videoswin-b_*', _SCRIPT, dict(_RECIPE, drop_path_rate=0.4),
               schedule=_SCHEDULE,
               note=_NOTE + " Head: the script's Conv3d(1024, classes, 1) keeps PyTorch's "
               "default init; mmaction's I3DHead starts normal(std 0.01).", names=_NAMES),
)
