# Adapter (dense defaults: bottleneck 64 after attention and after the MLP)
# on UperNet Swin-L IN-22K, VOC2012 aug, 40k.
_base_ = '../_base_/dense/upernet_swin-l_voc12aug.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='Adapter', init='trunc_normal')))
