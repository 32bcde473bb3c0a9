"""Every config under configs/ builds (no weights loaded), with the expected trainable counts.

All configs are built by ``tools/analysis/params.py`` in a few batched subprocesses (one per
CPU, at most 2), each config in its own default scope with random initialisation skipped: one
process per config paid the ~3 s OpenMMLab import and a ~2 s random init of a full-size Swin
every time, which for the 55 dense benchmark configs took minutes.
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
CONFIG_DIR = osp.join(ROOT, 'configs')
CONFIGS = sorted(osp.relpath(c, CONFIG_DIR)
                 for c in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
                 if '_base_' not in osp.relpath(c, CONFIG_DIR))

# The dense benchmark: configs/<method>/<setting>.py for every method and setting.
DENSE_METHODS = ('full', 'frozen', 'bitfit', 'lntune', 'partial1', 'adapter', 'lora',
                 'adaptformer', 'lorand', 'e3va', 'mona')
DENSE_SETTINGS = ('swin-b_coco.py', 'swin-b_cascade-coco.py', 'swin-l_voc.py',
                  'swin-l_voc12aug.py', 'swin-l_ade20k.py')
# Trainable backbone parameters (head excluded) per method: Swin-B (both COCO settings),
# Swin-L RetinaNet (out_indices (1, 2, 3): no norm0) and Swin-L UperNet (out_indices 0-3).
# Generic methods as in tests/test_param_counts.py; the rest from building, as in docs/dense.md
# (Full Swin-L UperNet = the Mona ADE20K log's backbone_params_num 194,998,164).
DENSE_COUNTS = {
    'full': (86_745_016, 194_997_780, 194_998_164),
    'frozen': (0, 0, 0),
    'bitfit': (201_656, 302_292, 302_484),
    'lntune': (59_392, 88_704, 89_088),
    'partial1': (12_601_632, 28_339_632, 28_339_632),
    'adapter': (3_107_328, 4_659_456, 4_659_456),
    'lora': (3_080_192, 4_620_288, 4_620_288),
    'adaptformer': (1_553_664, 2_329_728, 2_329_728),
    'lorand': (901_632, 1_298_688, 1_298_688),
    'e3va': (1_184_128, 1_775_232, 1_775_616),
    'mona': (3_667_456, 5_267_712, 5_267_712),
}
_COLUMN = {'swin-b_coco.py': 0, 'swin-b_cascade-coco.py': 0, 'swin-l_voc.py': 1,
           'swin-l_voc12aug.py': 2, 'swin-l_ade20k.py': 2}

# trainable backbone parameters of the example configs (head excluded)
EXPECTED = {
    'examples/mask-rcnn_swin-t_lora_coco.py': 256 * (96 * 2 + 192 * 2 + 384 * 6 + 768 * 2),
    'examples/upernet_swin-t_adapter_ade20k.py': 2 * (129 * 4416 + 64 * 12),
    'examples/swin-b_k400_bitfit.py': 1_090_376,
    'examples/vit-b16_vtab-dtd_adaptformer.py': 156_768,
}
EXPECTED.update({f'{method}/{setting}': counts[_COLUMN[setting]]
                 for method, counts in DENSE_COUNTS.items() for setting in DENSE_SETTINGS})


def _run_batches(configs: List[str]) -> Dict[str, dict]:
    """Build ``configs`` in parallel batched subprocesses; config -> params.py's JSON result."""
    n = max(1, min(2, os.cpu_count() or 1, len(configs)))
    tool = osp.join(ROOT, 'tools', 'analysis', 'params.py')
    procs = [subprocess.Popen([sys.executable, tool, '--json', *configs[i::n]], cwd=CONFIG_DIR,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(n)]
    results, stderr = {}, []
    for proc in procs:
        out, err = proc.communicate()
        stderr.append(err[-2000:])
        for line in out.splitlines():  # mmengine's log lines share stdout with the JSON
            if line.startswith('{"config"'):
                result = json.loads(line)
                results[result['config']] = result
    for config in configs:  # a crashed process (no JSON line): show its stderr
        results.setdefault(config, dict(error='no result from params.py',
                                        traceback='\n'.join(stderr)))
    return results


@pytest.fixture(scope='module')
def built() -> Dict[str, dict]:
    return _run_batches(CONFIGS)


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds(config, built):
    result = built[config]
    assert 'error' not in result, f'{result.get("error")}\n{result.get("traceback")}'
    assert result['total'] >= result['trainable'] >= result['backbone_trainable'] >= 0
    expected = EXPECTED.get(config)
    if expected is not None:
        assert result['backbone_trainable'] == expected


@pytest.mark.parametrize('method', DENSE_METHODS)
def test_dense_method_has_every_setting(method):
    present = set(os.listdir(osp.join(CONFIG_DIR, method)))
    missing = sorted(set(DENSE_SETTINGS) - present)
    assert not missing, f'configs/{method}/ lacks {missing}'
