#!/usr/bin/env bash
# GPU check of the trainer (fits in 8 minutes on one H100/H200): ~1B random Llama, bf16, length 1024.
# Writes bench/gpu/results/results.{md,json}. Copy the table into bench/README.md with the GPU named.
#
#   bash bench/gpu/run.sh               # on the GPU machine, from the repository root
#   bash bench/gpu/run.sh --dry-run     # tiny model on CPU: checks the script, measures nothing
#
# Optional on the GPU: pip install flash-attn liger-kernel deepspeed (each missing one is a skipped row).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
exec timeout "${BENCH_TIMEOUT:-470}" "$PY" bench/gpu/gpu_bench.py --out "${OUT:-bench/gpu/results}" "$@"
