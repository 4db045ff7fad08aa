#!/usr/bin/env bash
# The GPU check for a lent H100/H200-class machine, in one command (about 3-5 minutes, at most
# 8): trains ViT-B/16 and RN50 PromptSG (random init) at batch 64 on synthetic 256x128 data with
# bf16 AMP through the Runner and a hand-written loop, and prints one table: images/s, the
# Runner / hand-loop overhead ratio, peak GPU memory of a training step, PromptSG vs baseline
# and composed vs fixed prompt, and the evaluation time of a Market-size feature set on the GPU.
#
#   bash bench/gpu_check.sh                 # on the GPU machine, from anywhere
#   DEVICE=cpu ARCHS="tiny-vit tiny-rn" BATCH=8 AMP=0 bash bench/gpu_check.sh   # try it on a CPU
#
# Environment: PYTHON (default: python), DEVICE (cuda), ARCHS ("ViT-B-16 RN50"), BATCH (64),
# IMG ("256 128"), AMP (1: bf16), TIMEOUT (seconds per bench, 110), JSON (also write figures),
# ONLY (the benches, default below), MODE ("", or --quick / --smoke for a dry run).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
ARCHS=${ARCHS:-"ViT-B-16 RN50"}
BATCH=${BATCH:-64}
IMG=${IMG:-"256 128"}
AMP=${AMP:-1}
TIMEOUT=${TIMEOUT:-110}
ONLY=${ONLY:-"train_overhead promptsg_vs_baseline train_memory eval_device"}
MODE=${MODE:-}

args=(--device "$DEVICE" --archs $ARCHS --batch-size "$BATCH" --img-size $IMG
      --timeout "$TIMEOUT" --only $ONLY)
if [ -n "$MODE" ]; then
    args+=("$MODE")
fi
if [ "$AMP" = "1" ]; then
    args+=(--amp)
fi
if [ -n "${JSON:-}" ]; then
    args+=(--json "$JSON")
fi
if [ "$DEVICE" != "cpu" ]; then
    "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec "$PYTHON" bench/run_all.py "${args[@]}"
