"""Work-arounds for the pinned stack: mmaction2's missing DRN, weights-only checkpoints."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from vpetl_mm.compat import decode_checkpoint, encode_checkpoint


def test_importing_vpetl_mm_makes_mmaction_models_importable():
    code = ('import vpetl_mm, mmaction.models; from mmaction.models.localizers import DRN\n'
            'try:\n    DRN()\nexcept ImportError as e:\n    print("DRN:", e)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert 'released without mmaction/models/localizers/drn' in out.stdout


def test_mmaction_without_vpetl_mm_is_broken():
    """Guards the shim: if a future mmaction2 ships DRN again, this test says it can go."""
    out = subprocess.run([sys.executable, '-c', 'import mmaction.models'], capture_output=True,
                         text=True)
    assert out.returncode != 0 and 'drn' in out.stderr


def test_mmengine_checkpoint_round_trips_weights_only(tmp_path):
    buf = HistoryBuffer()
    for value in (1.5, 2.5, 4.0):
        buf.update(value)
    checkpoint = dict(
        state_dict={'w': torch.ones(2)},
        meta=dict(epoch=np.int64(3), lr=np.float32(0.5), hist=np.arange(4), seed=7),
        message_hub=dict(log_scalars={'train/loss': buf}, runtime_info={'iter': np.int64(9)}))
    path = tmp_path / 'ckpt.pth'
    torch.save(checkpoint, path)
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path, weights_only=True)  # what mmengine 0.10.7 hits under torch >= 2.6
    torch.save(encode_checkpoint(checkpoint), path)
    loaded = decode_checkpoint(torch.load(path, weights_only=True))
    assert loaded['meta']['epoch'] == 3 and loaded['meta']['seed'] == 7
    np.testing.assert_array_equal(loaded['meta']['hist'], np.arange(4))
    restored = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(restored, HistoryBuffer) and restored.mean() == pytest.approx(8 / 3)
    assert restored.current() == 4.0 and loaded['message_hub']['runtime_info']['iter'] == 9
