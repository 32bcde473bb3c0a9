"""vpetl_mm: parameter-efficient transfer learning for OpenMMLab backbones, by config.

mmcv must be installed *before* this package, built from source with its compiled ops
(``tools/setup_env.sh`` does it: ``MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0``).
"""
from setuptools import find_packages, setup

version: dict = {}
with open('vpetl_mm/version.py') as f:
    exec(f.read(), version)

setup(
    name='vpetl_mm',
    version=version['__version__'],
    description='Parameter-efficient transfer learning for OpenMMLab backbones, by config',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['vpetl_mm', 'vpetl_mm.*']),
    python_requires='>=3.8',
    install_requires=[
        'torch>=2.1',
        'torchvision',
        'mmengine>=0.10.7,<0.11',
        'mmcv>=2.1.0,<2.2.0',  # mmdet / mmseg / mmaction2 refuse 2.2
        'mmpretrain>=1.2.0,<1.3',
        'timm',
        'numpy',
        'safetensors>=0.4',  # adapter checkpoints without pickle (PETLCheckpointHook format)
    ],
    extras_require={
        'det': ['mmdet==3.3.0'],
        'seg': ['mmsegmentation==1.2.2', 'ftfy', 'regex'],  # mmseg needs ftfy/regex undeclared
        'action': ['mmaction2==1.2.0', 'decord>=0.6.0'],  # decord: docs/video.md
        'all': ['mmdet==3.3.0', 'mmsegmentation==1.2.2', 'ftfy', 'regex', 'mmaction2==1.2.0',
                'decord>=0.6.0'],
        'demo': ['scikit-learn', 'matplotlib'],
        'tests': ['pytest', 'scikit-learn', 'matplotlib', 'pycocotools'],
        # HF peft, only for tools/analysis/efficiency.py --peers. peft pulls transformers in, and
        # transformers 5 breaks `import mmpretrain.models` (environment.md): keep it below 4.50.
        'benchmark': ['peft>=0.13', 'transformers>=4.40,<4.50'],
        # mmengine's TensorboardVisBackend (README, "Logging"); `make env` installs it
        'log': ['tensorboard'],
        # mmengine's WandbVisBackend; needs an account (`wandb login`), so not in `make env`
        'wandb': ['wandb'],
        # HF peft's tuners through the Peft method and tools/export.py --format peft
        'peft': ['peft>=0.21', 'transformers>=4.40,<4.50'],
    },
    license='Apache License 2.0',
)
