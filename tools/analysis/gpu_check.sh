#!/usr/bin/env bash
# The GPU check (docs/efficiency.md, "GPU check"): install the OpenMMLab stack from a folder of
# carried wheels on the lent GPU machine (Python 3.12, torch and most dependencies already
# there), then run tools/analysis/gpu_check.py (ViT-B/16 224 px bf16 batch 128, eager and
# compiled, and Swin-B UperNet 512 px) into one Markdown table.
#
#   tools/analysis/gpu_check.sh wheelhouse DIR     # HERE (PyPI): download, print the size check
#   tools/analysis/gpu_check.sh --wheels DIR [--mmcv-ops] [gpu_check.py options]  # GPU machine
#   tools/analysis/gpu_check.sh --dry-run [options]  # no install: tiny models, CPU, one step
#
# The folder (tools/analysis/gpu_wheelhouse.py) holds only what the machine lacks, as cp312
# wheels: ~11 MiB. They go to $SITE (/tmp/site) with pip --no-index --no-deps --target. mmcv
# is mmcv-lite (no compiled ops) unless --mmcv-ops: then mmcv 2.1.0 is built there from its
# sdist with CUDA ops (needs nvcc, ~10 min on 16 cores; the wheel is left in DIR). mmseg
# imports mmcv.ops, so without ops the Swin UperNet rows are marked skipped.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
SITE="${SITE:-/tmp/site}"
WHEELHOUSE=("$PYTHON" "$REPO/tools/analysis/gpu_wheelhouse.py")

if [[ "${1:-}" == wheelhouse ]]; then
    "${WHEELHOUSE[@]}" download "${2:?usage: gpu_check.sh wheelhouse DIR}"
    exit 0
fi
ARGS=()
WHEELS=""
OPS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --wheels) WHEELS="$2"; shift 2 ;;
        --mmcv-ops) OPS=(--mmcv-ops); shift ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
if [[ -n "$WHEELS" ]]; then
    "${WHEELHOUSE[@]}" install "$WHEELS" --target "$SITE" "${OPS[@]}"
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
cd "$REPO"
exec "$PYTHON" tools/analysis/gpu_check.py "${ARGS[@]}"
