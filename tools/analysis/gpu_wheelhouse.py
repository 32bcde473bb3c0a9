"""The GPU check's carried wheel folder: only what the GPU machine lacks, for its Python 3.12.

The lent GPU machines (``nvidia-h100-x1``, ``nvidia-h200``) run Python 3.12 with torch,
torchvision, timm, peft, safetensors, opencv-python-headless, scipy, numpy, matplotlib, pyyaml,
rich, tqdm, einops, regex and more already installed (``DEVICE_HAS``, the image's list as read
on 2026-11-17), and a run may carry at most 64 MiB, repository included. So the folder holds the
OpenMMLab pins and the small dependencies that are missing there, as cp312 manylinux x86_64
wheels (pure-Python ones as ``py3-none-any``), plus the mmcv 2.1.0 sdist and a setuptools that
still has ``pkg_resources`` (mmcv's ``setup.py`` imports it) for an opt-in build of mmcv's CUDA
ops. ``install`` puts the wheels into one folder with ``pip --no-index --no-deps --target``:
nothing is resolved on the machine, nothing there is upgraded.

Examples:
    $ python tools/analysis/gpu_wheelhouse.py download .whl      # here: download, print sizes
    $ python tools/analysis/gpu_wheelhouse.py size .whl          # the size check alone
    $ python tools/analysis/gpu_wheelhouse.py install .whl --target /tmp/site   # GPU machine
"""
import argparse
import glob
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
LIMIT_MIB = 64  # what one device run carries: working tree + carried paths
# On the device image (KINDS.md, "Python packages already there"): the ones our pins need.
DEVICE_HAS = frozenset({
    'torch', 'torchvision', 'timm', 'peft', 'safetensors', 'huggingface-hub', 'numpy', 'scipy',
    'matplotlib', 'pillow', 'pyyaml', 'rich', 'tqdm', 'einops', 'regex', 'packaging', 'six',
    'opencv-python-headless', 'zipp', 'click', 'markdown', 'setuptools', 'wheel', 'ninja'})
# Declared requirements that a package on the device satisfies under another name: mmengine
# and mmcv declare opencv-python, and opencv-python-headless provides the same cv2.
PROVIDED_BY = {'opencv-python': 'opencv-python-headless'}
# The pins (setup.py; mmcv-lite is mmcv 2.1.0 without compiled ops, pure Python).
PINS = ('mmengine==0.10.7', 'mmcv-lite==2.1.0', 'mmpretrain==1.2.0', 'mmdet==3.3.0',
        'mmsegmentation==1.2.2')
# Their requirements missing on the device, and those requirements' own (versions: the ones
# this project's environment runs). ftfy: mmseg imports it without declaring it (setup.py).
# modelindex 0.0.2 only points at model-index, which provides the ``modelindex`` module.
DEPS = ('addict==2.4.0', 'yapf==0.43.0', 'platformdirs==4.14.9', 'termcolor==3.3.0',
        'mat4py==0.6.0', 'modelindex==0.0.2', 'model-index==0.1.11', 'ordered-set==4.1.0',
        'importlib-metadata==10.2.0', 'lazy-importer==0.1.0', 'pycocotools==2.0.11',
        'shapely==2.2.0', 'terminaltables==3.1.10', 'prettytable==3.19.0', 'ftfy==6.3.1',
        'wcwidth==0.9.5')
# Imported but not declared by the pins: mmseg/utils/tokenizer.py imports ftfy (and regex).
UNDECLARED = frozenset({'ftfy'})
MMCV_SDIST = 'mmcv==2.1.0'
# setuptools 70 dropped what mmcv 2.1.0's setup.py imports (pkg_resources' parse_version path)
BUILD_TOOLS = ('setuptools==69.5.1', )
# The device is x86-64 Linux; pip matches each manylinux tag exactly (device README).
PLATFORMS = ('manylinux_2_28_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_24_x86_64',
             'manylinux_2_17_x86_64', 'manylinux2014_x86_64', 'manylinux1_x86_64')
PY312 = ['--only-binary=:all:', '--python-version', '3.12', '--implementation', 'cp',
         *[arg for tag in PLATFORMS for arg in ('--platform', tag)]]


def name_of(requirement: str) -> str:
    """The normalised project name of a requirement string.

    Examples:
        >>> name_of('Pillow>=9 ; python_version < "3.15"'), name_of('ordered_set==4.1.0')
        ('pillow', 'ordered-set')
    """
    for stop in ' ;<>=!~[(':
        requirement = requirement.split(stop)[0]
    return requirement.strip().lower().replace('_', '-').replace('.', '-')


def download_commands(folder: str, python: str = sys.executable) -> List[List[str]]:
    """The pip commands that fill ``folder``: cp312 wheels, then the mmcv sdist.

    The sdist's metadata step runs mmcv's ``setup.py``, which imports torch: ``python`` must
    have torch (the project venv does); the wheels need only pip.

    Examples:
        >>> cmds = download_commands('.whl', 'python3')
        >>> cmds[0][:4], 'mmcv-lite==2.1.0' in cmds[0], cmds[-1][-1]
        (['python3', '-m', 'pip', 'download'], True, 'mmcv==2.1.0')
    """
    pip = [python, '-m', 'pip', 'download', '--no-deps', '-d', folder]
    return [pip + PY312 + list(PINS + DEPS + BUILD_TOOLS),
            pip + ['--no-binary=:all:', '--no-build-isolation', MMCV_SDIST]]


def folder_bytes(folder: str) -> int:
    """Bytes of the files directly in ``folder``."""
    return sum(osp.getsize(p) for p in glob.glob(osp.join(folder, '*')) if osp.isfile(p))


def tracked_bytes(repo: str = REPO) -> int:
    """Bytes of the repository's tracked files (what a device run sends besides carried paths)."""
    names = subprocess.run(['git', 'ls-files', '-z'], cwd=repo, check=True,
                           stdout=subprocess.PIPE).stdout.decode().split('\0')
    return sum(osp.getsize(osp.join(repo, n)) for n in names
               if n and osp.isfile(osp.join(repo, n)))


def size_report(folder: str, repo: str = REPO) -> Dict[str, float]:
    """MiB of the wheel folder, of the tracked repository, together, and what the limit leaves.

    Examples:
        >>> report = size_report(osp.join(REPO, 'tools', 'analysis'))
        >>> report['total_mib'] == report['wheels_mib'] + report['repo_mib']
        True
    """
    wheels, tree = folder_bytes(folder) / 2**20, tracked_bytes(repo) / 2**20
    return dict(wheels_mib=wheels, repo_mib=tree, total_mib=wheels + tree,
                left_mib=LIMIT_MIB - wheels - tree)


def _pip_install(target: str, python: str, as_py312: bool = False) -> List[str]:
    return [python, '-m', 'pip', 'install', '--no-index', '--no-deps', '--no-compile',
            '--no-cache-dir', '--upgrade', '--target', target] + (PY312 if as_py312 else [])


def built_mmcv(folder: str) -> List[str]:
    """mmcv wheels with compiled ops in ``folder`` (built by an earlier ``--mmcv-ops`` run)."""
    return sorted(glob.glob(osp.join(folder, 'mmcv-2.1.0-*.whl')))


def build_commands(folder: str, target: str, python: str = sys.executable) -> List[List[str]]:
    """Build mmcv 2.1.0 with its ops into a wheel in ``folder`` (run with ``build_env``).

    ``--no-build-isolation``: the build compiles against the machine's torch; setuptools 69
    from the folder goes to ``<target>.build-tools``, first on the build's path.

    Examples:
        >>> cmds = build_commands('.whl', '/tmp/site', 'python3')
        >>> cmds[0][-1], cmds[1][3], cmds[1][-1]
        ('.whl/setuptools-69.5.1-py3-none-any.whl', 'wheel', '.whl/mmcv-2.1.0.tar.gz')
    """
    tools = osp.join(folder, 'setuptools-69.5.1-py3-none-any.whl')
    return [_pip_install(target + '.build-tools', python) + [tools],
            [python, '-m', 'pip', 'wheel', '--no-index', '--no-deps', '--no-build-isolation',
             '-w', folder, osp.join(folder, 'mmcv-2.1.0.tar.gz')]]


def build_env(target: str) -> Dict[str, str]:
    """The environment of :func:`build_commands`: CUDA ops, all cores, setuptools<70 first."""
    return dict(os.environ, PYTHONPATH=target + '.build-tools', MMCV_WITH_OPS='1',
                FORCE_CUDA='1', MAX_JOBS=str(os.cpu_count() or 1))


def install_commands(folder: str, target: str, python: str = sys.executable,
                     mmcv_ops: bool = False, as_py312: bool = False) -> List[List[str]]:
    """``pip install --no-index --no-deps --target`` of the folder's wheels, mmcv last.

    mmcv-lite, or with ``mmcv_ops`` the mmcv wheel with ops that :func:`build_commands` made
    (or an earlier run left in the folder). ``as_py312`` adds pip's cross-install flags, so
    another Python can check that the folder installs as one cp312 set.

    Examples:
        >>> cmds = install_commands('.whl', '/tmp/site', 'python3')
        >>> cmds[0][3:7], len(cmds)
        (['install', '--no-index', '--no-deps', '--no-compile'], 2)
    """
    pip = _pip_install(target, python, as_py312)
    wheels = sorted(glob.glob(osp.join(folder, '*.whl')))
    mmcv = built_mmcv(folder) if mmcv_ops else \
        glob.glob(osp.join(folder, 'mmcv_lite-2.1.0-*.whl'))
    rest = [w for w in wheels if not osp.basename(w).startswith(('mmcv-', 'mmcv_lite-',
                                                                  'setuptools-'))]
    return [pip + rest, pip + mmcv]


def _run(cmd: List[str], env: Optional[Dict[str, str]] = None) -> None:
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env)


def _print_size(folder: str) -> int:
    r = size_report(folder)
    print(f'[wheelhouse] {folder}: {r["wheels_mib"]:.1f} MiB of wheels + {r["repo_mib"]:.1f} MiB '
          f'of tracked repository = {r["total_mib"]:.1f} MiB of the {LIMIT_MIB} MiB a device '
          f'run carries ({r["left_mib"]:.1f} MiB left)')
    return 0 if r['left_mib'] > 0 else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('action', choices=('download', 'size', 'install'))
    parser.add_argument('folder')
    parser.add_argument('--target', default='/tmp/site', help='install: where the packages go')
    parser.add_argument('--mmcv-ops', action='store_true',
                        help='install: build mmcv with its CUDA ops (needs nvcc; ~10 min)')
    parser.add_argument('--as-py312', action='store_true',
                        help='install: cross-install as cp312 (a check from another Python)')
    args = parser.parse_args(argv)
    if args.action == 'download':
        os.makedirs(args.folder, exist_ok=True)
        wheels, sdist = download_commands(args.folder)
        _run(wheels)
        try:
            _run(sdist)
        except subprocess.CalledProcessError:  # only --mmcv-ops needs it
            print('[wheelhouse] no mmcv sdist: its setup.py imports torch, so run the download '
                  'with a Python that has torch (PYTHON=.venv/bin/python); --mmcv-ops needs it',
                  flush=True)
    elif args.action == 'install':
        mmcv_ops = args.mmcv_ops
        if mmcv_ops and not built_mmcv(args.folder):
            try:
                for cmd in build_commands(args.folder, args.target):
                    _run(cmd, build_env(args.target))
            except subprocess.CalledProcessError as exc:  # the ViT rows need no ops
                print(f'[wheelhouse] the mmcv ops build failed ({exc}); installing mmcv-lite, '
                      'so the Swin UperNet rows are skipped', flush=True)
                mmcv_ops = False
        for cmd in install_commands(args.folder, args.target, mmcv_ops=mmcv_ops,
                                    as_py312=args.as_py312):
            _run(cmd)
        return 0
    return _print_size(args.folder)


if __name__ == '__main__':
    sys.exit(main())
