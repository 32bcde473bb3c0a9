# RetinaNet, Swin-L (ImageNet-22K) on Pascal VOC 07+12 detection (test on VOC2007 test, AP50):
# the Mona release's VOC recipe (mona_configs/swin-l_voc/voc_retinanet_swin_large_1x_*.py), the
# setting of the V-PETL Bench "Pascal VOC" column.
#
# Base: mmdet 3.3's RetinaNet R50 VOC0712 config (data: VOC07+12 trainval repeated 3 times,
# resize to (1000, 600); schedule: 4 epochs x 3 repeats = 12, lr step after epoch 3), with the
# backbone replaced by Swin-L the way mmdet's retinanet_swin-t config does it: out_indices
# (1, 2, 3) and an FPN from level 0 of those three, extra levels convolved 'on_input'.
# Published (V-PETL Bench / Mona, VOC AP50 %): Full 83.5, Frozen 83.6, BitFit 85.7, LN-Tune 85.8,
# Partial-1 85.4, Adapter 87.1, LoRA 87.5, AdaptFormer 87.3, LoRand 86.8, E3VA 86.5, Mona 87.3.
# Pretrained: Microsoft's IN-22K Swin-L, https://github.com/SwinTransformer/storage/releases/
# download/v1.0.0/swin_large_patch4_window7_224_22k.pth, saved as
# pretrained/swin_large_patch4_window7_224_22k.pth (relative to the directory you train from);
# convert_weights=True maps its keys to mmdet's names.
# Batch: 2 images/GPU x 8 GPUs = 16 (mmdet convention, auto_scale_lr.base_batch_size=16). Mona
# used 1 image/GPU with apex fp16: pass --amp to tools/train.py on GPUs for the equivalent.
_base_ = ['mmdet::pascal_voc/retinanet_r50_fpn_1x_voc0712.py', '../runtime/petl_hooks.py']
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='vpetl_mm.PETLBackbone',
        backbone=dict(
            type='SwinTransformer',
            embed_dims=192,
            depths=[2, 2, 18, 2],
            num_heads=[6, 12, 24, 48],
            window_size=7,
            mlp_ratio=4,
            qkv_bias=True,
            qk_scale=None,
            drop_rate=0.,
            attn_drop_rate=0.,
            drop_path_rate=0.2,
            patch_norm=True,
            # Only the stages FPN uses (as mmdet's retinanet_swin-t): no unused output norm.
            out_indices=(1, 2, 3),
            with_cp=False,
            # Mona's VOC configs froze stage 0-1 (frozen_stages=1) on top of each method; here
            # the method alone decides what trains (PETLBackbone owns freezing).
            frozen_stages=-1,
            convert_weights=True,
            init_cfg=dict(type='Pretrained',
                          checkpoint='pretrained/swin_large_patch4_window7_224_22k.pth')),
        petl=dict(type='Full')),  # placeholder: each method config replaces it
    neck=dict(in_channels=[384, 768, 1536], start_level=0, add_extra_convs='on_input',
              num_outs=5))

# Mona's VOC schedule: no warm-up (its VOC configs set lr_config=dict(policy='step', step=[3])
# and inherit no schedule: Leiyi-Hu/mona@5deeac9 Swin-Transformer-Object-Detection/mona_configs/
# swin-l_voc/voc_retinanet_swin_large_1x_*.py), one step after epoch 3 of 4 (the base's too).
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=4, by_epoch=True, milestones=[3], gamma=0.1)
]

# Mona's optimiser for every method: AdamW lr 1e-4, wd 0.05, no decay on position tables and
# norms (replaces the base's SGD).
# The 'norm' key is a substring rule, so it also matches PETL parameters whose names contain
# 'norm' (Mona's LayerNorm, LNTune's norms, Partial's block norms). The Mona release had exactly
# that behaviour, so apply_host_rules=True keeps it (PETLOptimWrapperConstructor would otherwise
# give PETL parameters the plain optimizer defaults). No host rule changes an lr.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='vpetl_mm.PETLOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        },
        petl=dict(apply_host_rules=True)))
