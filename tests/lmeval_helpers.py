"""Run the real ``lm_eval`` CLI in a subprocess and read what it wrote."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

from skillmix_tasks.jsonl import iter_objects

LM_EVAL = str(Path(sys.executable).with_name("lm_eval"))


def run_lm_eval(args: list[str], out: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "SKILLMIX_CACHE": str(out / "judge.sqlite"), **(env or {})}
    for var in ("SKILLMIX_JUDGE", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        if env is None or var not in env:
            full_env.pop(var, None)
    output = [] if "--output_path" in args else ["--output_path", str(out)]
    return subprocess.run([LM_EVAL, *args, *output], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=out)


def results(out: Path) -> dict:
    files = sorted(glob.glob(str(out / "**" / "results_*.json"), recursive=True))
    assert files, f"no results_*.json under {out}"
    return json.loads(Path(files[-1]).read_text())


def samples(out: Path, task: str) -> list[dict]:
    files = sorted(glob.glob(str(out / "**" / f"samples_{task}_[0-9]*.jsonl"), recursive=True))
    assert files, f"no samples for {task} under {out}"
    return [row for _, row in iter_objects(files[-1])]  # not splitlines(): texts may hold U+2028
