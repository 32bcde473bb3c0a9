"""The benchmark's config matrices (methods x backbones x datasets), as data.

Edit here, then run ``python tools/generate_configs.py``.
"""
from typing import List

from .configgen import Backbone, Dataset, Matrix, Method

VIDEO = Matrix(
    name='video',
    methods=[
        Method('full', 'Full fine-tuning', "dict(_delete_=True, type='Full')"),
        Method('frozen', 'Frozen backbone (linear probe)', "dict(_delete_=True, type='Frozen')"),
        Method('adaptformer', 'AdaptFormer (video defaults: bottleneck 64, scale 0.1)',
               "dict(_delete_=True, type='AdaptFormer')"),
        Method('bapat', 'BAPAT (PATT on k/v + AdaptFormer adapter; BAPAT README settings)',
               "dict(_delete_=True, type='BAPAT')"),
        Method('lora', 'LoRA (video defaults: q and v, rank 16)',
               "dict(_delete_=True, type='LoRA')"),
        Method('bitfit', 'BitFit (biases, incl. relative-position bias tables)',
               "dict(_delete_=True, type='BitFit')"),
        Method('prefix', 'Prefix tuning (20 key/value prefixes per layer, MLP re-parameterised)',
               "dict(_delete_=True, type='PrefixTuning')"),
    ],
    backbones=[
        Backbone('videomae-b', 'VideoMAE ViT-B/16 (self-supervised K400 pretrain)',
                 '_base_/video/videomae-b.py'),
        Backbone('videoswin-b', 'Video Swin-B (Kinetics-400 pretrained)',
                 '_base_/video/videoswin-b.py'),
    ],
    datasets=[
        Dataset('ssv2', 'Something-Something V2', '_base_/video/ssv2.py', 174),
        Dataset('hmdb51', 'HMDB51 split 1', '_base_/video/hmdb51.py', 51),
        Dataset('k400', 'Kinetics-400', '_base_/video/k400.py', 400),
    ],
    published={
        ('full', 'videomae-b'): ('85.97M', dict(ssv2=53.97, hmdb51=46.41)),
        ('frozen', 'videomae-b'): ('0M', dict(ssv2=29.23, hmdb51=49.84)),
        ('adaptformer', 'videomae-b'): ('1.19M', dict(ssv2=59.02, hmdb51=55.69)),
        ('bapat', 'videomae-b'): ('2.06M', dict(ssv2=57.78, hmdb51=57.18)),
        ('full', 'videoswin-b'): ('87.64M', dict(ssv2=50.99, hmdb51=68.07)),
        ('frozen', 'videoswin-b'): ('0M', dict(ssv2=24.13, hmdb51=71.28)),
        ('lora', 'videoswin-b'): ('0.75M', dict(ssv2=38.34, hmdb51=62.12)),
        ('bitfit', 'videoswin-b'): ('1.09M', dict(ssv2=45.94, hmdb51=68.26)),
        ('adaptformer', 'videoswin-b'): ('1.56M', dict(ssv2=40.80, hmdb51=68.66)),
        ('prefix', 'videoswin-b'): ('6.37M', dict(ssv2=39.46, hmdb51=56.13)),
        ('bapat', 'videoswin-b'): ('6.18M', dict(ssv2=53.36, hmdb51=71.93)),
    },
    source='V-PETL Bench video table, Kinetics-400 pre-training',
    head='cls_head')

MATRICES: List[Matrix] = [VIDEO]

