# GPS: one gradient-selected entry per weight row + the biases; GPS trains without weight decay.
# The selection pass (the base's PETLCalibrationHook, replaced here) uses two views per image;
# the demo's pipeline has no augmentation, so both views are the image itself.
_base_ = ['./_base_/vit-tiny_digits.py']
model = dict(backbone=dict(petl=dict(type='GPS')))
optim_wrapper = dict(optimizer=dict(lr=1e-2, weight_decay=0.))
custom_hooks = [dict(type='vpetl_mm.PETLCalibrationHook', views=2)
                if h.type == 'vpetl_mm.PETLCalibrationHook' else h for h in _base_.custom_hooks]
