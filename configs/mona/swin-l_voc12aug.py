# Mona (defaults: two per block, bottleneck 64)
# on UperNet Swin-L IN-22K, VOC2012 aug, 40k.
_base_ = '../_base_/dense/upernet_swin-l_voc12aug.py'

# The Mona release's ADE20K recipe (no Mona VOC12aug recipe exists: same as ADE20K): drop path 0.2
# instead of 0.3, and 5x the lr of the other methods (3e-4 instead of 6e-5).
model = dict(
    backbone=dict(backbone=dict(drop_path_rate=0.2),
                  petl=dict(_delete_=True, type='Mona')))
optim_wrapper = dict(optimizer=dict(lr=3e-4))
