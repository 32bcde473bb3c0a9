# AdaptFormer (dense defaults: bottleneck 64, scale 0.1, beside the MLP)
# on RetinaNet Swin-L IN-22K, VOC07+12; published AP50 87.3 (V-PETL Bench).
_base_ = '../_base_/dense/retinanet_swin-l_voc0712.py'

model = dict(backbone=dict(petl=dict(_delete_=True, type='AdaptFormer', init='trunc_normal')))
