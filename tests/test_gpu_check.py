"""``tools/analysis/gpu_check.sh --dry-run``: every case of the GPU check builds and takes one
training step (tiny models, CPU, fp32; the compiled cases with ``aot_eager``), and the one
Markdown table lists them all. Timings are never asserted.
"""
import os
import os.path as osp
import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPT = osp.join(REPO, 'tools', 'analysis', 'gpu_check.sh')
WHEELHOUSE = osp.join(REPO, 'tools', 'analysis', 'gpu_wheelhouse.py')
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))

import gpu_wheelhouse  # noqa: E402
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


def test_gpu_check_runs_the_vit_rows_with_mmcv_lite(tmp_path):
    """The wheel folder's default mmcv is mmcv-lite (no compiled ops): hidden here, the ViT rows
    still build and step, and the Swin UperNet rows (mmseg imports mmcv.ops) say why they skip."""
    out = str(tmp_path / 'lite.md')
    code = ('import runpy, sys; sys.modules["mmcv._ext"] = None; '
            f'sys.argv = ["gpu_check.py", "--dry-run", "--methods", "LoRA", "--seg-methods", '
            f'"Full", "--compiled-methods", "--out", {out!r}]; '
            'runpy.run_path("tools/analysis/gpu_check.py", run_name="__main__")')
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]
    with open(out) as f:
        rows = [line for line in f if line.startswith(('| ViT', '| Swin'))]
    assert len(rows) == 2 and 'failed' not in ''.join(rows)
    assert rows[0].startswith('| ViT-B/16 | LoRA | eager |') and 'skipped' not in rows[0]
    assert 'skipped (mmcv-lite: mmseg needs mmcv.ops' in rows[1]


def _device_requirements(dist: str):
    """Names of ``dist``'s requirements that hold on the device (Python 3.12, x86-64 Linux)."""
    env = dict(python_version='3.12', python_full_version='3.12.3', sys_platform='linux',
               platform_system='Linux', platform_machine='x86_64', os_name='posix',
               implementation_name='cpython', platform_python_implementation='CPython',
               extra='')
    for text in metadata.requires(dist) or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate(env):
            yield canonicalize_name(requirement.name)


def test_wheel_folder_covers_every_requirement_the_device_lacks():
    """Walk the declared requirements of the pins and the carried dependencies (this
    environment's metadata: the same releases): each is on the device, carried, or provided
    under another name; and each carried dependency is needed by something."""
    carried = {canonicalize_name(gpu_wheelhouse.name_of(r)) for r in
               gpu_wheelhouse.PINS + gpu_wheelhouse.DEPS}
    assert not carried & gpu_wheelhouse.DEVICE_HAS
    needed = set(gpu_wheelhouse.UNDECLARED)
    for name in sorted(carried):
        local = 'mmcv' if name == 'mmcv-lite' else name  # mmcv-lite declares mmcv's
        for requirement in _device_requirements(local):
            needed.add(requirement)
            provided = gpu_wheelhouse.PROVIDED_BY.get(requirement)
            assert requirement in carried | gpu_wheelhouse.DEVICE_HAS or \
                provided in gpu_wheelhouse.DEVICE_HAS, f'{name} needs {requirement}'
    pins = {canonicalize_name(gpu_wheelhouse.name_of(r)) for r in gpu_wheelhouse.PINS}
    assert carried - pins <= needed, carried - pins - needed


def test_wheelhouse_commands_and_size_check(tmp_path):
    wheels, sdist = gpu_wheelhouse.download_commands(str(tmp_path), 'python3')
    assert {'--only-binary=:all:', '--no-deps'} <= set(wheels)
    assert wheels[wheels.index('--python-version') + 1] == '3.12'
    assert sdist[-1] == 'mmcv==2.1.0' and '--only-binary=:all:' not in sdist
    for name in ('mmcv_lite-2.1.0-py2.py3-none-any.whl', 'addict-2.4.0-py3-none-any.whl',
                 'setuptools-69.5.1-py3-none-any.whl'):
        (tmp_path / name).write_bytes(b'x' * 2**20)
    lite_install, mmcv = gpu_wheelhouse.install_commands(str(tmp_path), '/tmp/site', 'py')
    assert lite_install[:6] == ['py', '-m', 'pip', 'install', '--no-index', '--no-deps']
    assert lite_install[-1].endswith('addict-2.4.0-py3-none-any.whl')
    assert [osp.basename(w) for w in mmcv[-1:]] == ['mmcv_lite-2.1.0-py2.py3-none-any.whl']
    report = gpu_wheelhouse.size_report(str(tmp_path))
    assert report['wheels_mib'] == 3.0 and 0 < report['repo_mib'] < 60
    proc = subprocess.run([sys.executable, WHEELHOUSE, 'size', str(tmp_path)], text=True,
                          stdout=subprocess.PIPE, cwd=REPO)
    assert proc.returncode == 0 and '3.0 MiB of wheels' in proc.stdout and 'of the 64 MiB' in \
        proc.stdout
