# E3VA (defaults: rank 24, a gradient highway beside the no-grad backbone)
# on UperNet Swin-L IN-22K, VOC2012 aug, 40k.
_base_ = '../_base_/dense/upernet_swin-l_voc12aug.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='E3VA')))
