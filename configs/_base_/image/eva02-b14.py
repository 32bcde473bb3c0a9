# EVA-02 ViT-B/14 (mmpretrain ViTEVA02: RoPE, SwiGLU), for the image benchmarks.
#
# vit-b16.py with the EVA-02 host and its input: everything else (V-PETL Bench's trainer, drop
# path 0.1, head) is the ViT-B/16 base's, and the generated setting bases add V-PETL's
# per-dataset protocol (vpetl_mm/benchmark/matrices_foundation.py; docs/foundation.md).
# Host: mmpretrain configs/eva02/eva02-base-p14_headless.py (sub_ln, no final norm, the mean
# patch token as the feature), 224 px: a 16 x 16 grid, the RoPE tables built for it.
# Pretrained: https://download.openmmlab.com/mmpretrain/v1.0/eva02/
# eva02-base-p14_pre_in21k_20230505-2f2d4d3c.pth saved under pretrained/ (mmpretrain names).
# Inputs: OpenAI CLIP's mean / std (norm='clip', the EVA-02 headless config's).
_base_ = ['./vit-b16.py']

model = dict(
    backbone=dict(
        backbone=dict(
            _delete_=True, type='ViTEVA02', arch='b', img_size=224, patch_size=14,
            sub_ln=True, final_norm=False, out_type='avg_featmap', drop_path_rate=0.1,
            init_cfg=dict(type='Pretrained',
                          checkpoint='pretrained/eva02-base-p14_pre_in21k_20230505-2f2d4d3c.pth',
                          prefix='backbone.'))))
data_preprocessor = dict(norm='clip')
