# Partial-1 (the last Swin block; Partial's default k=1)
# on RetinaNet Swin-L IN-22K, VOC07+12; published AP50 85.4 (V-PETL Bench).
_base_ = '../_base_/dense/retinanet_swin-l_voc0712.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='Partial')))
