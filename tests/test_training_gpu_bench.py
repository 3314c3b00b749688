"""bench/gpu/run.sh is not broken: its dry run (tiny model, CPU) trains, skips what this machine lacks
with the reason, checks packed logits on the chosen kernel and writes the results table."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_bench_dry_run_writes_the_table(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path / "results"), PYTHON=os.sys.executable, BENCH_TIMEOUT="540")
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu" / "run.sh"), "--dry-run", "--steps", "2",
                           "--only", "LoRA,Liger,FSDP,ZeRO"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    rows = {r["case"].split(",")[0].split(" ")[0]: r for r in results["rows"]}
    assert rows["LoRA"]["status"] == "ok" and rows["LoRA"]["steps"] == 2
    assert 0 < rows["LoRA"]["trainable_parameters"] < rows["LoRA"]["parameters"]
    assert rows["FSDP2"]["status"] == "skipped" and "GPU" in rows["FSDP2"]["reason"]
    assert results["logits_check"]["ok"] and results["meta"]["dry_run"]
    table = (tmp_path / "results" / "results.md").read_text()
    assert "| LoRA r=16, packed, auto attention | ok |" in table and "Packed logits vs each example alone" in table
