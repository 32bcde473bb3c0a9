# BitFit on the official mmaction2 Video Swin-B Kinetics-400 config. Its constructor multiplies
# the lr of everything under `backbone` by 0.1; PETLOptimWrapperConstructor keeps that rule off
# the BitFit parameters (paramwise_cfg.petl sets their multipliers instead).
_base_ = ['mmaction::recognition/swin/swin-base-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb.py',  # noqa: E501
          '../_base_/runtime/petl_hooks.py']
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='vpetl_mm.PETLBackbone',
        backbone={{_base_.model.backbone}},
        petl=dict(type='BitFit')))

optim_wrapper = dict(
    constructor='vpetl_mm.PETLOptimWrapperConstructor',
    paramwise_cfg=dict(host_constructor='mmaction.SwinOptimWrapperConstructor'))
