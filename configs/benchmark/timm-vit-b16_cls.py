# timm ViT-B/16 (vit_base_patch16_224 through mmpretrain's TIMMBackbone) on VTAB-1k cifar:
# the host of the efficiency comparison against peer LoRA libraries
# (tools/analysis/efficiency.py --peers; vpetl_mm/benchmark/efficiency/peers.py). The recipe is
# the image benchmark's (AdamW, batch 64); only the host differs from ../full/vit-b_vtab-cifar100.py.
# Pretrained weights: timm's own loading is off (no downloads); load_from / init_cfg as usual.
_base_ = ['../full/vit-b_vtab-cifar100.py']

model = dict(
    backbone=dict(
        backbone=dict(_delete_=True, type='TIMMBackbone', model_name='vit_base_patch16_224',
                      pretrained=False, num_classes=0, drop_path_rate=0.1)),
    # TIMMBackbone resets timm's pooling (global_pool=''): take the class token as timm does
    neck=dict(_delete_=True, type='vpetl_mm.TokenPool', mode='cls'),
    head=dict(_delete_=True, type='LinearClsHead', num_classes=100, in_channels=768,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
