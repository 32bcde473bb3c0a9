"""Every config under configs/ builds (no weights loaded), with the expected trainable counts."""
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.join(osp.dirname(__file__), '..')
CONFIGS = sorted(c for c in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in c)
# trainable backbone parameters of the example configs (head excluded)
EXPECTED = {
    'examples/mask-rcnn_swin-t_lora_coco.py': 256 * (96 * 2 + 192 * 2 + 384 * 6 + 768 * 2),
    'examples/upernet_swin-t_adapter_ade20k.py': 2 * (129 * 4416 + 64 * 12),
    'examples/swin-b_k400_bitfit.py': 1_090_376,
    'examples/vit-b16_vtab-dtd_adaptformer.py': 156_768,
}


@pytest.mark.parametrize('config', CONFIGS, ids=lambda c: osp.relpath(c, osp.join(ROOT, 'configs')))
def test_config_builds(config):
    out = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'analysis', 'params.py'),
                          config, '--json'], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts['total'] >= counts['trainable'] >= counts['backbone_trainable'] >= 0
    expected = EXPECTED.get(osp.relpath(config, osp.join(ROOT, 'configs')))
    if expected is not None:
        assert counts['backbone_trainable'] == expected
