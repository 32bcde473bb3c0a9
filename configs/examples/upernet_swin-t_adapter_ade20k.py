# Adapters on the official mmseg UperNet Swin-T ADE20K config.
_base_ = ['mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',  # noqa: E501
          '../_base_/runtime/petl_hooks.py']
custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='vpetl_mm.PETLBackbone',
        backbone={{_base_.model.backbone}},
        petl=dict(type='Adapter')))  # dense defaults: bottleneck 64 after attention and MLP

optim_wrapper = dict(constructor='vpetl_mm.PETLOptimWrapperConstructor')
