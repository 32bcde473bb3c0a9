#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment with the pinned OpenMMLab stack.
# Usage: bash tools/setup_env.sh [VENV_DIR]      (idempotent; `make env` runs it once)
# The order matters (see ../shared/reference/environment.md):
#   torch first; setuptools<70 (mmcv's setup imports pkg_resources); mmcv built from source
#   WITHOUT build isolation, else it silently builds without its compiled ops; then the rest.
# pip keeps the built mmcv wheel in its cache, so only the first install ever compiles it.
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/.."

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install torch==2.9.1 torchvision==0.24.1
"${PIP[@]}" install 'setuptools<70' wheel ninja
if ! "$VENV/bin/python" -c 'import mmcv.ops' 2>/dev/null; then
  if command -v nvcc >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    export FORCE_CUDA=1  # CUDA kernels where a GPU toolchain is present
  fi
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "${PIP[@]}" install --no-build-isolation mmcv==2.1.0
fi
"${PIP[@]}" install -e '.[all,demo,tests,benchmark,peft,log]'
"$VENV/bin/python" -c 'import mmcv.ops, peft, tensorboard, vpetl_mm, mmdet.models, mmseg.models, mmaction.models, mmpretrain.models; print("vpetl_mm environment OK")'
