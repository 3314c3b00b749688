"""Judge throughput: 900 gradings (100 items x 3 generations x 3 gradings) against a local
OpenAI-protocol server that answers after 200 ms, at concurrency 64, through the real SDK.

    python bench/judge_bench.py [--latency 0.2] [--concurrency 64] [--items 100]

Reports wall time as a ratio to the ideal n_calls x latency / concurrency (target <= 1.25),
client CPU per call (target <= 2 ms; the server runs in its own process so its CPU is not
counted), and a re-run from the cache (target 0 calls, < 1 s). One warm-up call (SDK import
and connection set-up, cache off) is made before timing and reported separately.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


SERVERS = {"aio": ROOT / "bench" / "aio_server.py", "threaded": ROOT / "tests" / "fake_llm_server.py"}


def start_server(latency: float, kind: str = "aio") -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, str(SERVERS[kind]), "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, int(line.split()[1])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--items", type=int, default=100)
    p.add_argument("--generations", type=int, default=3)
    p.add_argument("--gradings", type=int, default=3)
    p.add_argument("--server", choices=sorted(SERVERS), default="aio",
                   help="aio: an asyncio server (default); threaded: the tests' stdlib server")
    args = p.parse_args(argv)

    from skillmix.grading import resolve_judge
    from skillmix_tasks import sample_items

    items = sample_items("heldout", 3, n=args.items)
    pairs = [(it, f"In {it.topic.lower()}, draft {g} argues a point. It ends here.")
             for it in items for g in range(args.generations)]
    n_calls = len(pairs) * args.gradings
    ideal = n_calls * args.latency / args.concurrency
    server, port = start_server(args.latency, args.server)
    try:
        spec = f"openai-compatible:bench@http://127.0.0.1:{port}/v1"
        with tempfile.TemporaryDirectory() as tmp:
            settings = {"cache": str(Path(tmp) / "bench.sqlite"), "concurrency": args.concurrency,
                        "n_gradings": args.gradings, "timeout": 30}
            t0 = time.perf_counter()
            resolve_judge(spec, {**settings, "cache": "off", "n_gradings": 1}).grade([pairs[0]], progress=False)
            warmup = time.perf_counter() - t0

            judge = resolve_judge(spec, settings)
            cpu0, t0 = time.process_time(), time.perf_counter()
            grades = judge.grade(pairs, progress=False)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            stats = judge.stats.to_dict()
            assert stats["judged"] == n_calls and all(g.scored for g in grades), stats

            rerun = resolve_judge(spec, settings)
            cpu0, t0 = time.process_time(), time.perf_counter()
            rerun.grade(pairs, progress=False)
            cached_wall = time.perf_counter() - t0
            cached_stats = rerun.stats.to_dict()
    finally:
        server.kill()
        server.wait()
    result = {
        "calls": n_calls, "latency_s": args.latency, "concurrency": args.concurrency,
        "ideal_s": round(ideal, 3), "wall_s": round(wall, 3), "wall_over_ideal": round(wall / ideal, 3),
        "client_cpu_ms_per_call": round(1000 * cpu / n_calls, 3),
        "warmup_call_s": round(warmup, 3),
        "cached_rerun_calls": cached_stats["calls"], "cached_rerun_s": round(cached_wall, 3),
        "cached_rerun_from_cache": cached_stats["cached"], "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
