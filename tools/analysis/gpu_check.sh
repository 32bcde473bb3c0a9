#!/usr/bin/env bash
# The GPU check (docs/efficiency.md, "GPU check"): install the OpenMMLab stack from a folder of
# carried wheels on a machine that has only torch, then run tools/analysis/gpu_check.py (ViT-B/16
# 224 px bf16 batch 128, eager and compiled, and Swin-B UperNet 512 px) into one Markdown table.
#
#   tools/analysis/gpu_check.sh wheelhouse DIR     # HERE (network): build the wheel folder
#   tools/analysis/gpu_check.sh --wheels DIR [gpu_check.py options]   # on the GPU machine
#   tools/analysis/gpu_check.sh --dry-run [options]  # no install: tiny models, CPU, one step
#
# mmcv: with nvcc on the PATH and the mmcv sdist in the folder, mmcv is built there with its CUDA
# ops (MMCV_WITH_OPS=1, ~10 min on 16 cores: only Mask R-CNN needs them); otherwise the ops-free
# mmcv-lite wheel is installed (what the ViT classifier and UperNet need).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
MM_PINS=(mmengine==0.10.7 mmpretrain==1.2.0 mmdet==3.3.0 mmsegmentation==1.2.2 timm==1.0.31)
# Pure-Python or small runtime dependencies of the pins above that a torch-only machine lacks
# (mmengine: addict yapf termcolor rich opencv matplotlib; mmpretrain: einops mat4py modelindex;
# mmdet: pycocotools scipy shapely terminaltables; mmseg: prettytable; timm: huggingface_hub).
DEPS=(addict yapf termcolor rich opencv-python-headless matplotlib einops mat4py modelindex
      pycocotools scipy shapely terminaltables prettytable huggingface_hub safetensors pyyaml
      tqdm regex ftfy)

build_wheelhouse() {  # $1: folder; runs where PyPI is reachable
    local dir="$1"
    mkdir -p "$dir"
    "$PYTHON" -m pip download --no-deps -d "$dir" "${MM_PINS[@]}" mmcv-lite==2.1.0
    "$PYTHON" -m pip download --no-deps --no-binary mmcv -d "$dir" mmcv==2.1.0  # the sdist
    # Dependencies with theirs, but never torch (the machine has its own): timm's torchvision
    # must match that torch, so it is left to the machine (timm imports it lazily).
    "$PYTHON" -m pip download -d "$dir" "${DEPS[@]}"
    "$PYTHON" -m pip wheel --no-deps -w "$dir" "$REPO"
    du -sh "$dir"
}

install_stack() {  # $1: the wheel folder
    local dir="$1" pip=("$PYTHON" -m pip install --no-index --find-links "$1")
    "${pip[@]}" "${DEPS[@]}"
    "${pip[@]}" --no-deps "${MM_PINS[@]}"
    if command -v nvcc >/dev/null && ls "$dir"/mmcv-2.1.0.tar.gz >/dev/null 2>&1; then
        MMCV_WITH_OPS=1 FORCE_CUDA=1 MAX_JOBS="$(nproc)" "${pip[@]}" --no-build-isolation \
            --no-deps mmcv==2.1.0
    else
        echo "[gpu_check] no nvcc (or no mmcv sdist): ops-free mmcv-lite" >&2
        "${pip[@]}" --no-deps mmcv-lite==2.1.0
    fi
    "${pip[@]}" --no-deps vpetl_mm
}

if [[ "${1:-}" == wheelhouse ]]; then
    build_wheelhouse "${2:?usage: gpu_check.sh wheelhouse DIR}"
    exit 0
fi
ARGS=()
WHEELS=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --wheels) WHEELS="$2"; shift 2 ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
if [[ -n "$WHEELS" ]]; then
    install_stack "$WHEELS"
fi
cd "$REPO"
exec "$PYTHON" tools/analysis/gpu_check.py "${ARGS[@]}"
