"""Judge throughput: 900 gradings (100 items x 3 generations x 3 gradings) against a local
OpenAI-protocol server that answers after 200 ms, at concurrency 64, through the real SDK.

    python bench/judge_bench.py [--latency 0.2] [--concurrency 64] [--items 100]

Reports wall time as a ratio to the ideal n_calls x latency / concurrency (target <= 1.25),
client CPU per call (target <= 2 ms; the server runs in its own process so its CPU is not
counted), and a re-run from the cache (target 0 calls, < 1 s). One warm-up call (SDK import
and connection set-up, cache off) is made before timing and reported separately.

The baseline, measured in the same run and interleaved with the judge: the same prompts posted by a
bare ``openai.AsyncOpenAI`` client (same aiohttp transport, same concurrency; no cache, no parsing,
no judge). Its CPU per call is the SDK's floor; the judge's own cost is the difference. With
``--repeats N`` each figure is the median of N interleaved pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
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


def grader_messages(item, text) -> list[dict]:
    from skillmix_tasks import grader_prompt

    return [{"role": "user", "content": grader_prompt(item, text)}]


def bare_sdk(port: int, messages: list[list[dict]], concurrency: int) -> dict:
    """The baseline: the same posts through a bare SDK client (the judge's transport, no judge)."""
    import openai

    async def go() -> dict:
        client = openai.AsyncOpenAI(api_key="bench", base_url=f"http://127.0.0.1:{port}/v1",
                                    http_client=openai.DefaultAioHttpClient())
        body = {"model": "bench", "max_tokens": 1024, "temperature": 0.7}
        await client.post("/chat/completions", body={**body, "messages": messages[0]}, cast_to=object)  # warm-up
        sem = asyncio.Semaphore(concurrency)

        async def one(m):
            async with sem:
                return await client.post("/chat/completions", body={**body, "messages": m}, cast_to=object)

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(m) for m in messages))
        out = {"wall": time.perf_counter() - t0, "cpu_ms": 1000 * (time.process_time() - cpu0) / len(messages)}
        await client.close()
        return out

    return asyncio.run(go())


def judge_run(spec: str, pairs, args, n_calls: int) -> dict:
    from skillmix.grading import resolve_judge

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
        t0 = time.perf_counter()
        rerun.grade(pairs, progress=False)
        cached_wall = time.perf_counter() - t0
        cached = rerun.stats.to_dict()
        assert cached["cached"] == n_calls, cached
    return {"wall": wall, "cpu_ms": 1000 * cpu / n_calls, "warmup": warmup, "cached_wall": cached_wall,
            "cached_calls": cached["calls"]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--items", type=int, default=100)
    p.add_argument("--generations", type=int, default=3)
    p.add_argument("--gradings", type=int, default=3)
    p.add_argument("--repeats", type=int, default=1, help="interleaved (baseline, judge) pairs; medians reported")
    p.add_argument("--server", choices=sorted(SERVERS), default="aio",
                   help="aio: an asyncio server (default); threaded: the tests' stdlib server")
    args = p.parse_args(argv)

    from skillmix_tasks import sample_items

    items = sample_items("heldout", 3, n=args.items)
    pairs = [(it, f"In {it.topic.lower()}, draft {g} argues a point. It ends here.")
             for it in items for g in range(args.generations)]
    n_calls = len(pairs) * args.gradings
    ideal = n_calls * args.latency / args.concurrency
    server, port = start_server(args.latency, args.server)
    runs, floors = [], []
    try:
        spec = f"openai-compatible:bench@http://127.0.0.1:{port}/v1"
        for _ in range(args.repeats):
            floors.append(bare_sdk(port, [m for it, text in pairs for m in [grader_messages(it, text)] * args.gradings],
                                   args.concurrency))
            runs.append(judge_run(spec, pairs, args, n_calls))
    finally:
        server.kill()
        server.wait()
    med = lambda xs: statistics.median(xs)  # noqa: E731
    cpu, floor = med([r["cpu_ms"] for r in runs]), med([f["cpu_ms"] for f in floors])
    wall = med([r["wall"] for r in runs])
    result = {
        "calls": n_calls, "latency_s": args.latency, "concurrency": args.concurrency, "repeats": args.repeats,
        "ideal_s": round(ideal, 3), "wall_s": round(wall, 3), "wall_over_ideal": round(wall / ideal, 3),
        "client_cpu_ms_per_call": round(cpu, 3),
        "baseline_bare_sdk": {"cpu_ms_per_call": round(floor, 3),
                              "wall_over_ideal": round(med([f["wall"] for f in floors]) / ideal, 3)},
        "judge_cpu_over_bare_sdk": round(cpu / floor, 3), "judge_own_cpu_ms_per_call": round(cpu - floor, 3),
        "warmup_call_s": round(runs[0]["warmup"], 3),
        "cached_rerun_calls": max(r["cached_calls"] for r in runs),
        "cached_rerun_s": round(med([r["cached_wall"] for r in runs]), 3),
        "per_run": [{"cpu_ms": round(r["cpu_ms"], 3), "wall_over_ideal": round(r["wall"] / ideal, 3),
                     "bare_sdk_cpu_ms": round(f["cpu_ms"], 3)} for r, f in zip(runs, floors)],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
