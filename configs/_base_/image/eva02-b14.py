# EVA-02 ViT-B/14 (mmpretrain ViTEVA02: RoPE, SwiGLU), for the image benchmarks.
#
# The host that the EVA-02 configs put in place of ViT-B/16's (drop path 0.1 as there): each
# generated setting base eva02-b14_<dataset>.py inherits ViT-B/16's setting base of the dataset
# (vit-b16_<dataset>.py: V-PETL Bench's trainer, the head and V-PETL's per-dataset protocol;
# vpetl_mm/benchmark/matrices_foundation.py, docs/foundation.md) and this file, and merges
# `host` into it (popped by the setting: no resolved config has a `host` key).
# Host: mmpretrain configs/eva02/eva02-base-p14_headless.py (sub_ln, no final norm, the mean
# patch token as the feature), 224 px: a 16 x 16 grid, the RoPE tables built for it.
# Pretrained: https://download.openmmlab.com/mmpretrain/v1.0/eva02/
# eva02-base-p14_pre_in21k_20230505-2f2d4d3c.pth saved under pretrained/ (mmpretrain names).
# Inputs: OpenAI CLIP's mean / std (norm='clip', the EVA-02 headless config's).
host = dict(
    model=dict(
        backbone=dict(
            backbone=dict(
                _delete_=True, type='ViTEVA02', arch='b', img_size=224, patch_size=14,
                sub_ln=True, final_norm=False, out_type='avg_featmap', drop_path_rate=0.1,
                init_cfg=dict(
                    type='Pretrained',
                    checkpoint='pretrained/eva02-base-p14_pre_in21k_20230505-2f2d4d3c.pth',
                    prefix='backbone.')))),
    data_preprocessor=dict(norm='clip'))
