"""``tools/analysis/gpu_check.sh --dry-run``: every case of the GPU check builds and takes one
training step (tiny models, CPU, fp32; the compiled cases with ``aot_eager``), and the one
Markdown table lists them all. Timings are never asserted.
"""
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPT = osp.join(REPO, 'tools', 'analysis', 'gpu_check.sh')
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))

from gpu_check import SEG_METHODS, VIT_METHODS  # noqa: E402


def test_gpu_check_dry_run(tmp_path):
    out = str(tmp_path / 'gpu_check.md')
    # Two compiled cases stand for all eight (each takes the same path; tracing is the cost).
    proc = subprocess.run(['bash', SCRIPT, '--dry-run', '--compiled-methods', 'Full', 'LoRA',
                           '--out', out], cwd=REPO, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=600,
                          env=dict(os.environ, PYTHON=sys.executable))
    assert proc.returncode == 0, proc.stdout[-4000:]
    with open(out) as f:
        table = f.read()
    assert 'DRY RUN' in table and 'failed' not in table and 'skipped' not in table
    rows = [line for line in table.splitlines() if line.startswith('| ViT') or
            line.startswith('| Swin')]
    expected = [('ViT-B/16', m, 'eager') for m in VIT_METHODS] + \
        [('Swin-B UperNet', m, 'eager') for m in SEG_METHODS] + \
        [('ViT-B/16', m, 'compiled') for m in ('Full', 'LoRA')]
    assert [tuple(c.strip() for c in r.split('|')[1:4]) for r in rows] == expected
    full = next(r for r in rows if '| Full | eager |' in r and 'ViT' in r)
    assert full.split('|')[7].strip() == '1.000'  # Time / Full of Full itself
