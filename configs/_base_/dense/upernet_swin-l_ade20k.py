# UperNet, Swin-L (ImageNet-22K) on ADE20K semantic segmentation, 512x512 crops, 160k
# iterations: mmseg 1.2.2's official Swin-L ADE20K config with the backbone wrapped in
# PETLBackbone; the setting of the V-PETL Bench ADE20K column (Mona release:
# mona_configs/swin-l_ade20k/ade20k_upernet_swin_large_160k_*.py).
#
# Everything but the backbone wrapper is the official config: UPerHead + FCN auxiliary head
# (SyncBN), AdamW lr 6e-5 wd 0.01, linear warm-up 1500 iterations then poly decay, eval every 16k.
# Published (V-PETL Bench / Mona, ADE20K val mIoU %, single scale): Full 52.10, Frozen 46.84,
# BitFit 48.37, LN-Tune 47.98, Partial-1 47.44, Adapter 50.78, LoRA 50.34, AdaptFormer 50.83,
# LoRand 50.76, E3VA 49.64, Mona 51.36 (Mona's log; Full 51.03 in the same release's log).
# mmseg publishes no Swin-L number for this config (Swin-B IN-22K: 50.13).
# Learning rate: 6e-5 for every method but Mona, which the Mona release trained at 3e-4
# (configs/mona/swin-l_ade20k.py sets it).
# Pretrained: the IN-22K Swin-L in mmseg's key names that the official config downloads
# (swin_large_patch4_window7_224_22k_20220412-aeecf2aa.pth, cached under ~/.cache/torch/hub).
# Offline, put the file in pretrained/ and pass
# --cfg-options model.backbone.backbone.init_cfg.checkpoint=pretrained/<file>.
# Batch: 2 images/GPU x 8 GPUs = 16 (the official "8xb2").
_base_ = ['mmseg::swin/swin-large-patch4-window7-in22k-pre_upernet_8xb2-160k_ade20k-512x512.py',  # noqa: E501
          '../runtime/petl_hooks.py']
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='vpetl_mm.PETLBackbone',
        # The official Swin-L backbone (upernet_swin.py + the Swin-L config), written out
        # because _delete_ drops the base keys; omitted arguments are mmseg's defaults, which
        # are the values upernet_swin.py sets.
        backbone=dict(
            type='SwinTransformer',
            pretrain_img_size=224,
            embed_dims=192,
            depths=[2, 2, 18, 2],
            num_heads=[6, 12, 24, 48],
            window_size=7,
            mlp_ratio=4,
            qkv_bias=True,
            qk_scale=None,
            drop_rate=0.,
            attn_drop_rate=0.,
            drop_path_rate=0.3,
            use_abs_pos_embed=False,
            patch_norm=True,
            with_cp=False,
            frozen_stages=-1,  # PETLBackbone owns freezing (host freezing would hit adapters)
            init_cfg=dict(type='Pretrained', checkpoint={{_base_.checkpoint_file}})),
        petl=dict(type='Full')))  # placeholder: each method config replaces it

# The official optimiser (AdamW lr 6e-5, wd 0.01, decay_mult=0 on position tables and norms),
# built by PETLOptimWrapperConstructor so that frozen parameters stay out of it.
# The 'norm' key is a substring rule, so it also matches PETL parameters whose names contain
# 'norm' (Mona's LayerNorm, LNTune's norms, Partial's block norms). The Mona release had exactly
# that behaviour, so apply_host_rules=True keeps it (PETLOptimWrapperConstructor would otherwise
# give PETL parameters the plain optimizer defaults). No host rule changes an lr.
optim_wrapper = dict(
    constructor='vpetl_mm.PETLOptimWrapperConstructor',
    paramwise_cfg=dict(petl=dict(apply_host_rules=True)))
