# LoRA on the official mmdet Mask R-CNN Swin-T COCO config: the backbone is wrapped, not copied.
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py', '../_base_/runtime/petl_hooks.py']
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='vpetl_mm.PETLBackbone',
        backbone={{_base_.model.backbone}},  # the official Swin-T, pretrained init_cfg included
        petl=dict(type='LoRA')))  # dense defaults: rank 64, alpha 1, q and v (Mona repo)

optim_wrapper = dict(constructor='vpetl_mm.PETLOptimWrapperConstructor')
