#!/usr/bin/env bash
# The GPU check for a lent H100/H200-class machine, in one command (at most 8 minutes: the
# checks are capped at CHECK_TIMEOUT, each bench at TIMEOUT).
# 1. Checks (bench/gpu_check.py): one ViT-B/16 and one RN50 PromptSG training step (random init,
#    batch 64, 256x128) under bf16 and under fp16 with the optimiser wrapper built before the
#    model moved to the GPU; the loss terms' dtypes (float32) and finiteness; training images/s;
#    a fixed-prompt evaluation on CUDA (cache float32 on the GPU, bf16 vs fp32 features); and
#    save + resume through the Runner restoring the CUDA generator state exactly.
# 2. Benches (bench/run_all.py): images/s, the Runner / hand-loop overhead ratio, peak GPU memory
#    of a training step, PromptSG vs baseline and composed vs fixed prompt, and the evaluation
#    time of a Market-size feature set on the GPU.
# Without a CUDA device (and DEVICE is not cpu) it prints one line saying so and exits 0.
#
#   bash bench/gpu_check.sh                 # on the GPU machine, from anywhere
#   DEVICE=cpu ARCHS="tiny-vit tiny-rn" BATCH=8 AMP=0 bash bench/gpu_check.sh   # try it on a CPU
#
# Environment: PYTHON (default: python), DEVICE (cuda), ARCHS ("ViT-B-16 RN50"), BATCH (64),
# IMG ("256 128"), AMP (1: bf16), CHECKS (1: run step 1), CHECK_TIMEOUT (seconds, 150),
# TIMEOUT (seconds per bench, 75), JSON (also write figures), ONLY (the benches, default
# below; "" skips step 2), MODE ("", or --quick / --smoke for a dry run).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
ARCHS=${ARCHS:-"ViT-B-16 RN50"}
BATCH=${BATCH:-64}
IMG=${IMG:-"256 128"}
AMP=${AMP:-1}
TIMEOUT=${TIMEOUT:-75}
CHECKS=${CHECKS:-1}
CHECK_TIMEOUT=${CHECK_TIMEOUT:-150}
ONLY=${ONLY-"train_overhead promptsg_vs_baseline train_memory eval_device"}
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
    if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        echo "gpu_check: skipped: no CUDA device on this machine (DEVICE=cpu runs it on the CPU)"
        exit 0
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
status=0
if [ "$CHECKS" = "1" ]; then
    timeout "$CHECK_TIMEOUT" "$PYTHON" bench/gpu_check.py --device "$DEVICE" --archs $ARCHS \
        --batch-size "$BATCH" --img-size $IMG || status=$?
    if [ "$status" = "124" ]; then
        echo "gpu_check: the checks ran past CHECK_TIMEOUT=${CHECK_TIMEOUT}s"
    fi
fi
if [ -n "$ONLY" ]; then
    "$PYTHON" bench/run_all.py "${args[@]}" || status=$?
fi
exit "$status"
