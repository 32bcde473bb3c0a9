# UperNet, DINOv2 ViT-B/14 on ADE20K semantic segmentation, 512x512 crops, 160k iterations:
# mmseg 1.2.2's official ViT-B UperNet ADE20K config (MultiLevelNeck, "mln") with the backbone
# wrapped in PETLBackbone and DINOv2's ViT in place of the IN-1k ViT-B/16 (issue 21).
#
# Everything but the backbone is the official config: MultiLevelNeck (scales 4, 2, 1, 0.5) over
# blocks 3, 6, 9, 12, UPerHead + FCN auxiliary head (SyncBN), AdamW lr 6e-5 wd 0.01 (no decay on
# pos_embed, cls_token, norms), linear warm-up 1500 iterations then poly decay, eval every 16k,
# 2 images/GPU x 8 GPUs = 16. No PETL result is published for DINOv2 UperNet on ADE20K, so every
# method trains with this one recipe (the V-PETL Swin-L ADE20K recipe's lr and schedule).
#
# The backbone is mmseg's VisionTransformer with DINOv2 ViT-B/14's architecture
# (facebookresearch/dinov2 vit_base: patch 14, width 768, 12 blocks, 12 heads, MLP 3072, LN eps
# 1e-6, a biased patch embedding; layer scale has no mmseg counterpart and is folded into the
# attention and MLP output layers on load, exactly: vpetl_mm/compat/mmseg_vit_weights.py).
# img_size 518 is DINOv2's own 37 x 37 grid: the file's pos_embed loads without resizing, and a
# 512 crop is corner-padded to the same grid by mmseg's PatchEmbed, so no interpolation either.
# final_norm=True loads DINOv2's final LayerNorm onto the last feature (mmseg's "-ln" ViT configs).
# Normalisation: DINOv2 trains with the ImageNet mean / std (docs/foundation.md), the base's own.
#
# Pretrained: Meta's DINOv2 ViT-B/14 file (87 MB), in Meta's key layout, converted on load:
#   https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth
# (facebookresearch/dinov2 README, "Pretrained models"). mmpretrain's converted file
# (vit-base-p14_dinov2-pre_3rdparty_20230426-ba246503.pth, keys under 'backbone.') loads too.
# Offline, put the file in pretrained/ and pass
# --cfg-options model.backbone.backbone.init_cfg.checkpoint=pretrained/dinov2_vitb14_pretrain.pth
_base_ = ['mmseg::vit/vit_vit-b16_mln_upernet_8xb2-160k_ade20k-512x512.py',
          '../runtime/petl_hooks.py']
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)
checkpoint_file = 'https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth'  # noqa: E501

model = dict(
    pretrained=None,  # the official config's IN-1k ViT-B/16 path: DINOv2 loads through init_cfg
    backbone=dict(
        _delete_=True,
        type='vpetl_mm.PETLBackbone',
        # upernet_vit-b16_ln_mln.py's backbone, written out because _delete_ drops the base
        # keys, with DINOv2's patch size, grid, patch bias and final norm
        backbone=dict(
            type='VisionTransformer',
            img_size=(518, 518),
            patch_size=14,
            patch_bias=True,
            in_channels=3,
            embed_dims=768,
            num_layers=12,
            num_heads=12,
            mlp_ratio=4,
            out_indices=(2, 5, 8, 11),
            qkv_bias=True,
            drop_rate=0.,
            attn_drop_rate=0.,
            drop_path_rate=0.,
            with_cls_token=True,
            final_norm=True,
            norm_cfg=dict(type='LN', eps=1e-6),
            act_cfg=dict(type='GELU'),
            norm_eval=False,
            interpolate_mode='bicubic',
            init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
        petl=dict(type='Full')))  # placeholder: each method config replaces it

# The official optimiser (AdamW lr 6e-5, wd 0.01, decay_mult=0 on pos_embed, cls_token and
# norms), built by PETLOptimWrapperConstructor so that frozen parameters stay out of it; the
# host rules also reach PETL parameters (as the Swin dense bases: the Mona release's behaviour).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    constructor='vpetl_mm.PETLOptimWrapperConstructor',
    paramwise_cfg=dict(
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        },
        petl=dict(apply_host_rules=True)))
