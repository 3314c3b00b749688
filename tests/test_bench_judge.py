"""The judge benchmark runs, small: both ways of asking for the gradings, the bare-SDK baseline
and the cached re-run (the numbers themselves live in bench/README.md, not in tests)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_judge_bench_small_run():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "judge_bench.py"), "--items", "4", "--latency", "0.01",
                           "--concurrency", "8", "--choices", "1,3"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    assert r["gradings"] == 36
    one, three = r["choices_per_call"]["1"], r["choices_per_call"]["3"]
    assert (one["requests"], three["requests"]) == (36, 12)
    for m in (one, three):
        assert m["cached_rerun_calls"] == 0 and m["client_cpu_ms_per_grading"] > 0
        assert m["baseline_bare_sdk"]["cpu_ms_per_request"] > 0


def test_ratelimit_bench_small_run():
    """Under a tokens-per-minute limit, pacing by the headers avoids the 429s the unpaced judge gets."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "ratelimit_bench.py"), "--texts", "40",
                           "--tpm", "20000", "--window", "1", "--latency", "0.05", "--concurrency", "32"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    paced, unpaced = (json.loads(proc.stdout)["modes"][m] for m in ("paced", "unpaced"))
    assert paced["scored"] == 40 and paced["requests_admitted"] == 40
    assert unpaced["answered_429"] > 0 and paced["answered_429"] < unpaced["answered_429"]
    assert paced["throughput_vs_limit"] > 0
