#!/usr/bin/env bash
# Quickstart main job (offline). Until the end-to-end demo lands (issue 8: SmolLM2-135M scored
# by lm-eval with a local judge), this shows the benchmark's first held-out SKILL-MIX(3) item.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python - <<'PY'
from skillmix_tasks import sample_items, student_single_turn, criteria_for
item = sample_items("heldout", 3, 1)[0]
print(f"== {item.id}: skills {', '.join(item.skills)}; topic {item.topic}\n")
print(student_single_turn(item))
print("\nRubric:", "; ".join(c.label for c in criteria_for(item)))
print("\n(The end-to-end offline demo - lm_eval on SmolLM2-135M with a local judge - is issue 8.)")
PY
