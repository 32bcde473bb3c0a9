# E3VA (defaults: rank 24, a gradient highway beside the no-grad backbone)
# on RetinaNet Swin-L IN-22K, VOC07+12; published AP50 86.5 (V-PETL Bench).
_base_ = '../_base_/dense/retinanet_swin-l_voc0712.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='E3VA')))
