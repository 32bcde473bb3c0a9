# Mask R-CNN, Swin-B (ImageNet-22K) on COCO instance segmentation, 1x schedule (12 epochs).
#
# The official mmdet 3.3 Swin-T 1x config with the backbone scaled to Swin-B and wrapped in
# PETLBackbone; method configs (configs/<method>/swin-b_coco.py) replace only `petl`.
# Published: mmdet reports 42.7 box / 39.3 mask AP for its Swin-T (IN-1K) 1x model; there is no
# published PETL table for this setting. The V-PETL Bench COCO numbers (Full 51.9/45.0,
# Mona 53.4/46.0 box/mask AP) use Cascade Mask R-CNN 3x: see cascade-mask-rcnn_swin-b_coco-3x.py.
# This 1x Mask R-CNN is the cheaper setting for quick comparisons of the same methods.
# Pretrained: Microsoft's IN-22K Swin-B, https://github.com/SwinTransformer/storage/releases/
# download/v1.0.0/swin_base_patch4_window7_224_22k.pth, saved as
# pretrained/swin_base_patch4_window7_224_22k.pth (relative to the directory you train from);
# convert_weights=True maps its keys to mmdet's names.
# Batch: 2 images/GPU x 8 GPUs = 16 (mmdet convention, auto_scale_lr.base_batch_size=16).
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py', '../runtime/petl_hooks.py']
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='vpetl_mm.PETLBackbone',
        backbone=dict(
            type='SwinTransformer',
            embed_dims=128,
            depths=[2, 2, 18, 2],
            num_heads=[4, 8, 16, 32],
            window_size=7,
            mlp_ratio=4,
            qkv_bias=True,
            qk_scale=None,
            drop_rate=0.,
            attn_drop_rate=0.,
            drop_path_rate=0.3,
            patch_norm=True,
            out_indices=(0, 1, 2, 3),
            with_cp=False,
            frozen_stages=-1,  # PETLBackbone owns freezing (host freezing would hit adapters)
            convert_weights=True,
            init_cfg=dict(type='Pretrained',
                          checkpoint='pretrained/swin_base_patch4_window7_224_22k.pth')),
        petl=dict(type='Full')),  # placeholder: each method config replaces it
    neck=dict(in_channels=[128, 256, 512, 1024]))

# AdamW lr 1e-4, wd 0.05 and the three decay_mult=0 keys come from the base, for every method
# (the Mona release used one optimiser for all methods, full fine-tuning included).
# The 'norm' key is a substring rule, so it also matches PETL parameters whose names contain
# 'norm' (Mona's LayerNorm, LNTune's norms, Partial's block norms). The Mona release had exactly
# that behaviour, so apply_host_rules=True keeps it (PETLOptimWrapperConstructor would otherwise
# give PETL parameters the plain optimizer defaults). No host rule changes an lr.
optim_wrapper = dict(
    constructor='vpetl_mm.PETLOptimWrapperConstructor',
    paramwise_cfg=dict(petl=dict(apply_host_rules=True)))
