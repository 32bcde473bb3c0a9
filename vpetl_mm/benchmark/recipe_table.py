"""The image benchmark's recipe table: one row per method x benchmark family, with its source.

Each :class:`Row` says how a method trained on VTAB-1k or FGVC in the code that produced its
published number: optimizer, lr, weight decay and whether 1-D parameters / biases are decayed,
batch size, epochs, timm-cosine schedule and warm-up, label smoothing, augmentation (random
train-pipeline transforms; batch augments such as CutMix), drop path, input normalisation and
head init, and the epochs the source evaluates on the test set, which ``--protocol legacy``
reproduces (``legacy_eval``: mmengine's ``val_begin`` / ``val_interval`` /
``dynamic_intervals``) (:data:`RECIPE_FIELDS`), with per-task overrides where the source has
them, and the source (``owner/repo@commit path``) of every row. The V-PETL Bench protocol is the
:data:`COMMON` row of each family (its shared trainer, YAMLs and lr / wd table); a row with
``inherits=True`` starts from it (V-PETL's own per-method scripts), a row with
``inherits=False`` stands alone: a method whose published number comes from its own repository
(V-PETL Bench ships fake model files for SSF, FacT, RepAdapter, Hydra, DTL, GPS, NOAH and LAST,
../shared/reference/fidelity-audit.md). The per-task lr / wd / batch / drop path of Hydra's and
GPS's own per-task files stay in :mod:`.pertask` and apply on top, with their citation.

:mod:`.recipe_resolve` gives the recipe of one config, :mod:`.recipe_render` writes it into the
generated configs, and ``tools/analysis/recipe.py`` compares every config with it
(:mod:`.sources`). Where sources conflict, the row follows the source of the published number
in our tables; the other is one option away (``tools/generate_configs.py --recipe vpetl``, or
single keys with ``--cfg-options``; docs/image.md, "Recipes").

Examples:
    >>> rows = {(r.folder, r.family): r for r in ROWS}
    >>> rows['ssf', 'vtab'].tasks['vtab-cifar100']
    {'lr': 0.005, 'weight_decay': 5e-05, 'drop_path_rate': 0.0}
    >>> rows['lora', 'fgvc'].values, rows['hydra', 'vtab'].values['t_initial']
    ({'batch_size': 128}, 500)
"""
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..datasets import (FGVC_DATASETS, FGVC_LR_WD, VTAB_AUGMENTED, VTAB_DATASETS,
                        VTAB_LABEL_SMOOTHING, VTAB_LR_WD)

#: every key a row may record, in the order the generated configs and the tool show them
RECIPE_FIELDS: Tuple[str, ...] = (
    'optimizer', 'lr', 'weight_decay', 'decay_1d', 'decay_bias', 'batch_size', 'max_epochs',
    't_initial', 'warmup_t', 'warmup_lr_init', 'lr_min', 'label_smoothing', 'augmentation',
    'batch_augments', 'drop_path_rate', 'normalisation', 'head_init', 'legacy_eval')
#: head init kinds: mmpretrain's class default (zeros), nn.Linear's own (timm's
#: ``reset_classifier``), timm's ViT init (trunc-normal std 0.02, zero bias)
HEAD_INITS = ('zero', 'default', 'trunc_normal')
FAMILIES = ('vtab', 'fgvc')
VPETL = 'synbol/Parameter-Efficient-Transfer-Learning-Benchmark@c188fad'


@dataclass(frozen=True)
class Row:
    """One method x benchmark family of the recipe table.

    Args:
        folder: The config folder (``configs/<folder>/``); ``'*'`` for the common row.
        family: ``'vtab'`` or ``'fgvc'``.
        source: Where the row was read: ``owner/repo@commit path`` (``<task>`` stands for the
            source's per-task file where ``tasks`` come from one).
        values: :data:`RECIPE_FIELDS` values for every task of the family.
        tasks: Dataset key -> per-task :data:`RECIPE_FIELDS` values.
        inherits: Start from the family's :data:`COMMON` row (V-PETL's scripts), or stand alone
            (only the recorded keys are then checked).
        note: What else the source does that no key records (docs/image.md lists these).

    Examples:
        >>> Row('lora', 'fgvc', f'{VPETL} configs/model_lora/fgvc', dict(batch_size=128)).folder
        'lora'
    """
    folder: str
    family: str
    source: str
    values: Mapping[str, Any] = field(default_factory=dict)
    tasks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    inherits: bool = True
    note: str = ''


def per_task(keys: List[str], **columns: Tuple[Any, ...]) -> Dict[str, Dict[str, Any]]:
    """Per-task values from columns in ``keys`` order (``lr=(...), weight_decay=(...)``).

    Examples:
        >>> per_task(['a', 'b'], lr=(1, 2))
        {'a': {'lr': 1}, 'b': {'lr': 2}}
    """
    for name, column in columns.items():
        if len(column) != len(keys):
            raise ValueError(f'column {name!r} has {len(column)} values for {len(keys)} tasks')
    return {key: {name: column[i] for name, column in columns.items()}
            for i, key in enumerate(keys)}


VTAB_KEYS, FGVC_KEYS = list(VTAB_DATASETS), list(FGVC_DATASETS)
_SCHEDULE = dict(max_epochs=100, t_initial=100, warmup_t=10, warmup_lr_init=1e-6, lr_min=1e-5)
# test evaluations (1-based epochs): train_model_lora.py `ep % 10 == 9`; the adapter family's
# trainers (adapter, adaptformer, bitfit, lntune, fclayer, vptshallow) `... and ep > 80`
_EVERY_10 = dict(val_interval=10)
_LAST_TWO = dict(val_begin=90, val_interval=10)
_PROTOCOL = dict(optimizer='AdamW', decay_1d=True, decay_bias=True, batch_size=64,
                 drop_path_rate=0.1, normalisation='imagenet', head_init='default',
                 legacy_eval=_EVERY_10, **_SCHEDULE)

#: the V-PETL Bench protocol of each family: train_model_lora.py (AdamW on every trainable
#: tensor, timm CosineLRScheduler per epoch, `reset_classifier`: nn.Linear's init), the
#: model_lora VTAB YAMLs (batch, label smoothing, train_aug; FGVC: model_sct's batch 64, which
#: the SCT trainer and its copies read; the model_lora family's 128 is its own rows') and
#: run_vit_lora.sh (lr / wd)
COMMON: Dict[str, Row] = dict(
    vtab=Row('*', 'vtab', f'{VPETL} ImageClassification/train/train_model_lora.py, '
             'configs/model_lora/vtab/<task>.yaml, scripts/run_vit_lora.sh', _PROTOCOL,
             {key: dict(lr=VTAB_LR_WD[key][0], weight_decay=VTAB_LR_WD[key][1],
                        label_smoothing=VTAB_LABEL_SMOOTHING[key],
                        augmentation=key in VTAB_AUGMENTED) for key in VTAB_KEYS}),
    fgvc=Row('*', 'fgvc', f'{VPETL} ImageClassification/train/train_model_lora.py, '
             'configs/model_sct/fgvc/<task>.yaml, scripts/run_vit_lora.sh',
             dict(_PROTOCOL, label_smoothing=0., augmentation=True),
             {key: dict(lr=FGVC_LR_WD[key][0], weight_decay=FGVC_LR_WD[key][1])
              for key in FGVC_KEYS}),
)


# task names of the SSF / HST / DTL script folders (train_scripts/vit/{vtab,fgvc}/<task>/)
TIMM_TASKS = dict(zip(VTAB_KEYS + FGVC_KEYS, (
    'cifar_100', 'caltech101', 'dtd', 'flowers102', 'pets', 'svhn', 'sun397', 'patch_camelyon',
    'eurosat', 'resisc45', 'diabetic_retinopathy', 'clevr_count', 'clevr_dist', 'dmlab', 'kitti',
    'dsprites_loc', 'dsprites_ori', 'smallnorb_azi', 'smallnorb_ele',
    'cub_2011', 'nabirds', 'oxford_flowers', 'stanford_dogs', 'stanford_cars')))
# timm train.py as SSF / HST / GPS run it: cosine over --epochs 100 after a 10-epoch warm-up
# from 1e-7 to 1e-8, then --cooldown-epochs 10 (default) at the minimum: 110 epochs in all;
# create_optimizer_v2 leaves 1-D parameters and biases undecayed; the model's data config
# normalises with 0.5 / 0.5 (IMAGENET_INCEPTION_*); timm's ViT init: head trunc-normal(0.02)
_TIMM = dict(optimizer='AdamW', decay_1d=False, decay_bias=False, max_epochs=110, t_initial=100,
             warmup_t=10, warmup_lr_init=1e-7, lr_min=1e-8, normalisation='inception',
             head_init='trunc_normal', legacy_eval=dict(val_interval=1))  # validates each epoch
_TIMM_VTAB = dict(_TIMM, label_smoothing=0., augmentation=False, batch_augments=())
# FGVC scripts keep train.py's defaults: --mixup 0.8 --cutmix 1.0 --smoothing 0.1
_TIMM_FGVC = dict(_TIMM, label_smoothing=0.1, augmentation=True, batch_augments=('Mixup', 'CutMix'))
# FacT / RepAdapter / Hydra / NOAH (own loops): Resize((224, 224)) bicubic, no augmentation,
# plain cross-entropy, nn.Linear head from reset_classifier
_PLAIN = dict(optimizer='AdamW', label_smoothing=0., augmentation=False, batch_augments=(),
              drop_path_rate=0.1, normalisation='imagenet', head_init='default',
              legacy_eval=_EVERY_10)


def _vpetl(folder: str, family: str, script: str, values: Optional[dict] = None,
           tasks: Optional[dict] = None, note: str = '') -> Row:
    """A row read in V-PETL Bench's own code for the method (it starts from COMMON)."""
    return Row(folder, family, f'{VPETL} ImageClassification/{script}', values or {},
               tasks or {}, note=note)


def _lr_wd(**tasks: Tuple[float, float]) -> Dict[str, Dict[str, float]]:
    return {f'vtab-{k.replace("_", "-")}': dict(lr=v[0], weight_decay=v[1])
            for k, v in tasks.items()}


# the `model_lora` YAML family (train_model_{adapter,lora,bitfit,lntune,fclayer,vptshallow}.py
# read configs/model_lora/): FGVC batch 128
_LORA_YAML = 'configs/model_lora/fgvc/<task>.yaml'
_LAST = dict(legacy_eval=_LAST_TWO)
_FULL_EVAL = dict(val_interval=10, dynamic_intervals=[[92, 1]])
_SCT_EVAL = dict(legacy_eval=dict(val_interval=10, dynamic_intervals=[[52, 1]]))  # `or ep > 50`
_NO_OWN = ('no recipe of its own is public or read: the V-PETL Bench protocol (its table '
           'figure is V-PETL\'s)')
_VPETL_ROWS = [
    # full fine-tuning tests `ep % 20 == 9 or ep > 90` (epochs 10, 30, 50, 70, 90, 92-100);
    # mmengine's interval rule cannot skip 20, 40, 60, 80: four more test evaluations
    _vpetl('full', 'vtab', 'train/train_model_fulltuning.py, scripts/run_vit_fulltuning.sh',
           dict(warmup_lr_init=1e-4, lr_min=1e-6, legacy_eval=_FULL_EVAL),
           _lr_wd(cifar100=(5e-4, 0.1), caltech101=(5e-4, 5e-3), dtd=(1e-4, 0.5)),
           note="V-PETL's full fine-tuning script sets lr / wd for CIFAR-100, Caltech101 and "
                'DTD (a wd sweep: the first run, wd 0.5, is taken); its other lines run the '
                'adapter trainer, so the other tasks keep the common table. The published '
                "full-FT figures are VPT's (SGD, per-task sweep not released)."),
    _vpetl('full', 'fgvc', 'train/train_model_fulltuning.py, configs/model_fulltuning/fgvc',
           dict(warmup_lr_init=1e-4, lr_min=1e-6, legacy_eval=_FULL_EVAL)),
    _vpetl('linear', 'vtab', 'scripts/run_vit_fclayer.sh, train/train_model_fclayer.py',
           _LAST, _lr_wd(cifar100=(1e-3, 1e-4))),
    _vpetl('bitfit', 'vtab', 'scripts/run_vit_bitfit.sh, train/train_model_bitfit.py', _LAST,
           _lr_wd(cifar100=(3e-3, 1e-4), caltech101=(6e-3, 0.25))),
    _vpetl('lntune', 'vtab', 'scripts/run_vit_lntune.sh, train/train_model_lntune.py', _LAST,
           _lr_wd(cifar100=(8e-3, 0.01), caltech101=(5e-3, 0.01))),
    _vpetl('adapter', 'vtab', 'scripts/run_vit_adapter.sh, train/train_model_adapter.py', _LAST),
    _vpetl('adaptformer', 'vtab', 'scripts/run_vit_adaptformer.sh, '
           'train/train_model_adapter.py', _LAST),
    _vpetl('lora', 'vtab', 'scripts/run_vit_lora.sh', tasks=_lr_wd(cifar100=(5e-3, 5e-3))),
    _vpetl('vpt_shallow', 'vtab', 'scripts/run_vit_vptshallow.sh, '
           'train/train_model_vptshallow.py', _LAST, _lr_wd(cifar100=(1e-3, 1e-4))),
    _vpetl('lora', 'fgvc', _LORA_YAML, dict(batch_size=128)),
    *[_vpetl(folder, 'fgvc', f'{_LORA_YAML}, train/train_model_{trainer}.py',
             dict(_LAST, batch_size=128)) for folder, trainer in (
        ('linear', 'fclayer'), ('bitfit', 'bitfit'), ('lntune', 'lntune'),
        ('adapter', 'adapter'), ('adaptformer', 'adapter'), ('vpt_shallow', 'vptshallow'))],
    # SCT: V-PETL's SCT table (the SCT authors' code): lr / wd per task, batch 32 on 8 tasks,
    # its own train_aug flags (Flowers and SUN397 off, Clevr-dist on; no flag on smallNORB-ele)
    _vpetl('sct', 'vtab', 'scripts/run_model_sct.sh, configs/model_sct/vtab/<task>.yaml, '
           'train/train_model_sct.py', _SCT_EVAL, per_task(
        VTAB_KEYS,
        lr=(0.012, 0.006, 0.003, 0.085, 0.0005, 0.075, 0.0015, 0.0072, 0.07, 0.01, 0.003, 0.0033,
            0.002, 0.007, 0.007, 0.004, 0.005, 0.008, 0.0013),
        weight_decay=(0.6, 0.25, 0.005, 0.07, 0.3, 0.03, 0.0001, 0.002, 0.001, 0.01, 0.0001,
                      0.01, 0.001, 0.05, 0.005, 0.001, 0.005, 0.07, 0.0001),
        batch_size=(64, 64, 64, 32, 32, 32, 32, 32, 64, 32, 64, 64, 64, 64, 64, 64, 64, 32, 32),
        augmentation=(False, False, True, False, True, True, False, True, True, True, True, True,
                      True, True, True, False, False, False, False)),
        note="the SCT YAMLs' per-task `scale` / `scaleonx` reach ChannelAdapter, whose forward "
        'ignores them (the scaled lines are commented out, models/vision_transformer_sct.py): '
        'the published SCT figures ran unscaled, as SCT here does'),
    _vpetl('sct', 'fgvc', 'train/train_model_sct.py, configs/model_sct/fgvc/<task>.yaml',
           _SCT_EVAL),
]

_SSF = 'dongzelian/SSF@e94e0e7'
_HST = 'AFeng-x/HST@ee89571'
_CHECKPOINT = ("its --pretrained checkpoint is timm's AugReg IN-21k ViT-B/16; ours Google's "
               'original ViT-B_16.npz (V-PETL\'s)')
# the methods' own repositories (V-PETL ships fake model files for them)
_OWN_ROWS = [
    # SSF: 2 GPUs x 32; VTAB scripts pass --no-aug --mixup 0 --smoothing 0 but keep train.py's
    # --cutmix 1.0, so CutMix (alpha 1) mixes every batch
    Row('ssf', 'vtab', f'{_SSF} train_scripts/vit/vtab/<task>/train_ssf.sh, train.py',
        dict(_TIMM_VTAB, batch_size=64, batch_augments=('CutMix', )), per_task(
            VTAB_KEYS,
            lr=(5e-3, 1e-3, 5e-3, 5e-3, 5e-3, 1e-2, 5e-3, 5e-3, 3e-3, 2e-3, 5e-3, 2e-3, 5e-2,
                5e-3, 1e-2, 1e-2, 5e-3, 2e-2, 5e-3),
            weight_decay=(5e-5, 5e-2, 5e-5, 5e-5, 5e-5, 5e-5, 5e-5, 5e-5, 5e-2, 5e-5, 5e-5, 5e-2,
                          5e-2, 5e-5, 5e-5, 5e-5, 5e-5, 5e-5, 5e-2),
            drop_path_rate=(0., .1, 0., 0., 0., 0., 0., 0., .2, .1, .2, .1, .1, .1, 0., 0., .2,
                            .1, .2)),
        inherits=False,
        note=f'train images Resize((224, 224)) bicubic (ours bilinear); {_CHECKPOINT}'),
    Row('ssf', 'fgvc', f'{_SSF} train_scripts/vit/fgvc/<task>/train_ssf.sh, train.py',
        dict(_TIMM_FGVC, batch_size=64), per_task(
            FGVC_KEYS, lr=(1e-2, 2e-4, 1e-2, 2.5e-4, 2e-2), weight_decay=(0.05, ) * 5,
            drop_path_rate=(0., .1, .1, 0., 0.)),
        inherits=False, note="timm's ImageNet train transform (RandomResizedCrop, RandAugment "
        "m9, RandomErasing 0.25) is V-PETL's FGVC pipeline here (random crop, flip); "
        + _CHECKPOINT),
    # HST: 2 GPUs x 32 on VTAB, 4 x 32 on FGVC (--simple-aug: RandomResizedCrop + flip)
    Row('hst', 'vtab', f'{_HST} train_scripts/vit/vtab/<task>/train_s4.sh, train.py',
        dict(_TIMM_VTAB, batch_size=64), per_task(
            VTAB_KEYS,
            lr=(1e-2, 1e-3, 1e-2, 1e-3, 1e-2, 1e-2, 1e-2, 5e-3, 1e-3, 5e-3, 1e-3, 1e-3, 5e-3,
                5e-3, 5e-3, 5e-3, 1e-3, 1e-3, 1e-3),
            weight_decay=(5e-4, 5e-4, 5e-4, 5e-5, 5e-4, 5e-5, 5e-5, 5e-4, 5e-4, 5e-4, 5e-5, 5e-4,
                          5e-4, 5e-4, 5e-2, 5e-4, 5e-4, 5e-4, 5e-2),
            drop_path_rate=(0., .1, 0., 0., 0., .1, 0., .1, .1, 0., .1, .1, .1, .1, .1, .1, .1,
                            .1, .2)),
        inherits=False, note='train images Resize((224, 224)) bicubic (ours bilinear)'),
    Row('hst', 'fgvc', f'{_HST} train_scripts/vit/fgvc/<task>/train_img21k.sh, train.py',
        dict(_TIMM_FGVC, batch_size=128), per_task(
            FGVC_KEYS, lr=(1e-3, 5e-4, 1e-3, 5e-3, 5e-3),
            weight_decay=(5e-2, 5e-2, 5e-5, 5e-2, 5e-2), drop_path_rate=(0., ) * 5),
        inherits=False, note="--simple-aug's RandomResizedCrop is V-PETL's random crop here"),
    # DTL: 1 GPU x 32, AdamW wd 0.05 except on biases, cosine over 100 epochs + the 10 warm-up
    # epochs (get_cycle_length() + warmup_epochs), no augmentation, 0.5 / 0.5 normalisation
    Row('dtl', 'vtab', 'heekhero/DTL@bf6c51e train_scripts/vit/vtab/<task>/train_dtl.sh, '
        'train_vit_vtab.py, utils/utils.py, models/vision_transformer.py',
        dict(optimizer='AdamW', weight_decay=0.05, decay_1d=True, decay_bias=False,
             batch_size=32, max_epochs=110, t_initial=100, warmup_t=10, warmup_lr_init=1e-7,
             lr_min=1e-8, label_smoothing=0., augmentation=False, batch_augments=(),
             normalisation='inception', legacy_eval=dict(val_begin=110, val_interval=110),
             # models/vision_transformer.py: init_weights('') applies _init_vit_weights without
             # names, so the head is trunc-normal(0.02), bias 0; the .npz load skips the head
             head_init='trunc_normal'),
        per_task(  # DTL evaluates once, after the last epoch
            VTAB_KEYS,
            lr=(3e-4, 1e-3, 3e-4, 8e-3, 3e-4, 8e-3, 5e-4, 8e-3, 8e-3, 8e-3, 1e-4, 1e-3, 5e-4,
                8e-4, 8e-3, 1e-2, 8e-3, 3e-3, 1e-3),
            drop_path_rate=(.1, 0., .1, .2, .1, .2, .1, .1, 0., .1, .1, .2, .2, .2, .1, 0., 0.,
                            .2, .2)),
        inherits=False),
    Row('fact', 'vtab', 'JieShibo/PETL-ViT@026e4f1 FacT/fact_tk.py, FacT/vtab.py',
        dict(_PLAIN, lr=1e-3, weight_decay=1e-4, decay_1d=True, batch_size=64, **_SCHEDULE),
        inherits=False, note="FacT-TK's per-task rank / scale (pertask.py) were tuned with it"),
    Row('repadapter', 'vtab', 'luogen1996/RepAdapter@360992f train.py, dataset.py',
        dict(_PLAIN, lr=1e-3, weight_decay=1e-4, decay_1d=True, batch_size=64, **_SCHEDULE),
        inherits=False),
    # Hydra: lr / wd / batch per task (pertask.py); the cosine spans 500 epochs, training
    # stops at 100, so the lr never falls below ~90% of its peak
    Row('hydra', 'vtab', 'extremebird/Hydra@4138457 vtab1k/train.py, vtab1k/dataset.py',
        dict(_PLAIN, decay_1d=True, **dict(_SCHEDULE, t_initial=500)), inherits=False),
    # GPS: lr / batch / drop path per task (pertask.py), Adam at wd 0 (AdamW at wd 0)
    Row('gps', 'vtab', 'FightingFighting/GPS@72e0c31 train_gps.py, args.py',
        dict(_TIMM_VTAB), inherits=False,
        note='its selection pass runs the model in train mode (method code, not a recipe key)'),
    Row('gps', 'fgvc', 'FightingFighting/GPS@72e0c31 train_gps.py, args.py',
        dict(_TIMM_FGVC), inherits=False,
        note='--simple-aug (RandomResizedCrop) and --model-ema 0.9998 are not reproduced'),
    # NOAH retraining of the searched subnet: 1 GPU x 64, --no_aug --mixup 0 --cutmix 0
    # --smoothing 0, timm create_optimizer (no decay on 1-D parameters); the head: its own
    # reset_classifier (model/supernet_vision_transformer_timm.py), trunc-normal(0.02), bias 0
    Row('noah', 'vtab', 'ZhangYuanhan-AI/NOAH@e9c55f3 configs/NOAH/VTAB/subnet/'
        'slurm_retrain_vtab.sh, supernet_train_prompt.py, '
        'model/supernet_vision_transformer_timm.py',
        dict(_PLAIN, lr=1e-3, weight_decay=1e-4, decay_1d=False, decay_bias=False,
             batch_size=64, head_init='trunc_normal', **_SCHEDULE), inherits=False),
]
# methods after V-PETL Bench (docs/methods-2024.md): their own repositories where they have an
# image recipe. Adapter+ (conf/train/default.yaml, optimizer/adamw.yaml, data/base_data.yaml,
# config.yaml; modeling/adaptermodel.py): AdamW lr 1e-3 / wd 1e-4 without decay on 1-D
# parameters, biases and scalings (add_weight_decay), batch 64, 100 epochs, 10 warm-up epochs
# from lr / 100 (lr_start_factor), cosine to lr / 1000 (lr_factor), no smoothing, drop path 0.1,
# the timm model's 0.5 / 0.5 normalisation (vit_base_patch16_224.orig_in21k), timm's
# trunc-normal head, tested once, after epoch 100 (the experiments' val_every_n_epoch 100)
_ADAPTER_PLUS = 'visinf/adapter_plus@191c4ab'
_ADAPTER_PLUS_RECIPE = dict(
    optimizer='AdamW', lr=1e-3, weight_decay=1e-4, decay_1d=False, decay_bias=False,
    batch_size=64, max_epochs=100, t_initial=100, warmup_t=10, warmup_lr_init=1e-5, lr_min=1e-6,
    label_smoothing=0., batch_augments=(), drop_path_rate=0.1, normalisation='inception',
    head_init='trunc_normal', legacy_eval=dict(val_begin=100, val_interval=100))
_ADAPTER_PLUS_NOTE = ("its cosine spans the 90 epochs after the warm-up (pl_bolts' "
                      'LinearWarmupCosineAnnealingLR, peak at epoch 9), ours timm\'s over 100 with '
                      'the warm-up inside; it trains in bf16')
# GLoRA (GLoRA/supernet.py, engine.py, data/vtab.py; README: "LR=1e-4 works very well across
# datasets", 500 epochs whatever the dataset): AdamW on every trainable tensor at lr 1e-4 /
# wd 1e-4, batch 64, timm cosine over 500 epochs (warm-up 10 from 1e-6, final 1e-5), plain
# cross-entropy, Resize((224, 224)) bicubic, ImageNet mean / std, reset_classifier's nn.Linear,
# drop path 0.1, tested every 100 epochs (`ep % 100 == 99`)
_GLORA = ('Arnav0400/ViT-Slim@0fed674 GLoRA/supernet.py, GLoRA/engine.py, GLoRA/data/vtab.py, '
          'GLoRA/README.md')
_DORA = ("NVlabs/DoRA@7e2f10a has no VTAB-1k or FGVC recipe (commonsense reasoning, VL-BART / "
         "LLaVA scripts only): the row is LoRA's, whose sites and ranks DoRA takes")
_AFTER_VPETL_ROWS = [
    Row('adapter_plus', 'vtab', f'{_ADAPTER_PLUS} conf/experiment/vtab/adapter_plus_dim8.yaml, '
        'conf/train/default.yaml, modeling/adaptermodel.py',
        dict(_ADAPTER_PLUS_RECIPE, augmentation=False), inherits=False,
        note=_ADAPTER_PLUS_NOTE + '; bottleneck 8 on every task (adapter_plus_dim8.yaml; '
        'adapter_plus_dim1-8.yaml\'s per-task 1-8 are not used); tf.image.resize bilinear'),
    Row('adapter_plus', 'fgvc', f'{_ADAPTER_PLUS} conf/experiment/fgvc/adapter_plus_dim1-32.yaml, '
        'conf/train/default.yaml, modeling/adaptermodel.py, data/fgvc.py',
        dict(_ADAPTER_PLUS_RECIPE, augmentation=True), inherits=False,
        note=_ADAPTER_PLUS_NOTE + "; its RandomResizedCrop + flip (data/fgvc.py) is V-PETL's "
        'random crop here; its FGVC runs take per-dataset bottlenecks 1-32 '
        '(adapter_plus_dim1-32.yaml), ours 8'),
    Row('glora', 'vtab', _GLORA, dict(
        _PLAIN, lr=1e-4, weight_decay=1e-4, decay_1d=True, decay_bias=True, batch_size=64,
        max_epochs=500, t_initial=500, warmup_t=10, warmup_lr_init=1e-6, lr_min=1e-5,
        legacy_eval=dict(val_interval=100)), inherits=False,
        note="the supernet's training recipe: GLoRA's published figures are subnets that an "
        'evolutionary search picks from that supernet (no retraining); ours trains one fixed '
        'subnet with it'),
    Row('glora', 'fgvc', COMMON['fgvc'].source,
        note="no FGVC recipe of its own (GLoRA/data/vtab.py's FGVC names are few-shot sets)"),
    *[replace(row, folder='dora', note=_DORA) for row in _VPETL_ROWS if row.folder == 'lora'],
]
_VPT = ("the published VPT-deep figures are VPT's (SGD; its per-task lr / wd sit in a sheet "
        'outside the repository); V-PETL has no VPT-deep trainer: the V-PETL protocol')
_COMMON_ONLY = [  # published figures from V-PETL's runs or papers whose recipe is not public
    Row(folder, family, COMMON[family].source, note=_VPT if folder == 'vpt_deep' else _NO_OWN)
    for folder in ('partial1', 'prefix', 'utuning', 'snf', 'lst', 'last', 'vpt_deep')
    for family in FAMILIES] + [
    Row(folder, 'fgvc', COMMON['fgvc'].source, note='no FGVC recipe of its own')
    for folder in ('fact', 'repadapter', 'hydra', 'dtl', 'noah')]

#: the recipe table: one row per image method folder x family
ROWS: Tuple[Row, ...] = tuple(_VPETL_ROWS + _OWN_ROWS + _AFTER_VPETL_ROWS + _COMMON_ONLY)
