"""Judge throughput: 900 gradings (100 items x 3 generations x 3 gradings) against a local
OpenAI-protocol server that answers after 200 ms, at concurrency 64, through the real SDK.

    python bench/judge_bench.py [--latency 0.2] [--concurrency 64] [--items 100] [--repeats 5]

Two ways to ask for the 900 gradings, both measured (``--choices``):

* ``1``: one request a grading (900 requests), as the Anthropic backend and servers without the
  API's ``n`` must. Ideal wall time 900 x 0.2 / 64 = 2.81 s.
* ``3``: a text's 3 gradings as the 3 choices of one request (300 requests), the judge's default for
  ``openai:`` (``choices_per_call``). Ideal 300 x 0.2 / 64 = 0.94 s.

Reports wall time against each ideal (target <= 1.25) and against the 900-request ideal, client
CPU per grading and per request (target <= 2 ms a grading; the server runs in its own process, so
its CPU is not counted), and a re-run from the cache (target 0 calls, < 1 s). One warm-up call
(SDK import, connection set-up, cache off) is made before timing and reported separately.

The baseline, measured in the same run and interleaved with the judge: the same requests posted by a
bare ``openai.AsyncOpenAI`` client (same aiohttp transport, same concurrency; no cache, no parsing,
no judge). Its CPU per request is the SDK's floor; the judge's own cost is the difference. With
``--repeats N`` each figure is the median of N interleaved rounds.
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


def start_server(latency: float, kind: str = "aio", extra: list[str] | None = None) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, str(SERVERS[kind]), "--latency", str(latency), *(extra or [])],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, int(line.split()[1])


def grader_messages(item, text) -> list[dict]:
    from skillmix_tasks import grader_prompt

    return [{"role": "user", "content": grader_prompt(item, text)}]


def bare_sdk(port: int, messages: list[list[dict]], concurrency: int, n: int = 1) -> dict:
    """The baseline: the same requests through a bare SDK client (the judge's transport, no judge)."""
    import openai

    async def go() -> dict:
        client = openai.AsyncOpenAI(api_key="bench", base_url=f"http://127.0.0.1:{port}/v1",
                                    http_client=openai.DefaultAioHttpClient())
        body = {"model": "bench", "max_tokens": 1024, "temperature": 0.7, **({"n": n} if n > 1 else {})}
        await client.post("/chat/completions", body={**body, "messages": messages[0]}, cast_to=object)  # warm-up
        sem = asyncio.Semaphore(concurrency)

        async def one(m):
            async with sem:
                return await client.post("/chat/completions", body={**body, "messages": m}, cast_to=object)

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(m) for m in messages))
        out = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - cpu0}
        await client.close()
        return out

    return asyncio.run(go())


def judge_run(spec: str, pairs, args, n_gradings: int, choices: int) -> dict:
    from skillmix.grading import resolve_judge

    with tempfile.TemporaryDirectory() as tmp:
        settings = {"cache": str(Path(tmp) / "bench.sqlite"), "concurrency": args.concurrency,
                    "n_gradings": args.gradings, "timeout": 30, "choices_per_call": choices}
        t0 = time.perf_counter()
        resolve_judge(spec, {**settings, "cache": "off", "n_gradings": 1}).grade([pairs[0]], progress=False)
        warmup = time.perf_counter() - t0

        judge = resolve_judge(spec, settings)
        cpu0, t0 = time.process_time(), time.perf_counter()
        grades = judge.grade(pairs, progress=False)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        stats = judge.stats.to_dict()
        assert stats["judged"] == n_gradings and all(g.scored for g in grades), stats

        rerun = resolve_judge(spec, settings)
        t0 = time.perf_counter()
        rerun.grade(pairs, progress=False)
        cached_wall = time.perf_counter() - t0
        cached = rerun.stats.to_dict()
        assert cached["cached"] == n_gradings, cached
    return {"wall": wall, "cpu": cpu, "requests": stats["calls"], "warmup": warmup, "cached_wall": cached_wall,
            "cached_calls": cached["calls"]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--items", type=int, default=100)
    p.add_argument("--generations", type=int, default=3)
    p.add_argument("--gradings", type=int, default=3)
    p.add_argument("--choices", default="1,3",
                   help="comma-separated choices_per_call values to measure (default 1,3)")
    p.add_argument("--repeats", type=int, default=1, help="interleaved rounds; medians reported")
    p.add_argument("--server", choices=sorted(SERVERS), default="aio",
                   help="aio: an asyncio server (default); threaded: the tests' stdlib server")
    args = p.parse_args(argv)

    from skillmix_tasks import sample_items

    items = sample_items("heldout", 3, n=args.items)
    pairs = [(it, f"In {it.topic.lower()}, draft {g} argues a point. It ends here.")
             for it in items for g in range(args.generations)]
    n_gradings = len(pairs) * args.gradings
    per_grading_ideal = n_gradings * args.latency / args.concurrency
    modes = [int(c) for c in args.choices.split(",")]
    server, port = start_server(args.latency, args.server)
    runs: dict[int, list] = {c: [] for c in modes}
    floors: dict[int, list] = {c: [] for c in modes}
    try:
        spec = f"openai-compatible:bench@http://127.0.0.1:{port}/v1"
        prompts = [grader_messages(it, text) for it, text in pairs]
        for _ in range(args.repeats):
            for c in modes:
                requests = [m for m in prompts for _ in range(-(-args.gradings // c))]  # a text's requests
                floors[c].append({**bare_sdk(port, requests, args.concurrency, n=c), "requests": len(requests)})
                runs[c].append(judge_run(spec, pairs, args, n_gradings, c))
    finally:
        server.kill()
        server.wait()
    med = statistics.median
    result: dict = {"gradings": n_gradings, "latency_s": args.latency, "concurrency": args.concurrency,
                    "repeats": args.repeats, "ideal_one_request_a_grading_s": round(per_grading_ideal, 3),
                    "choices_per_call": {}, "cpus": os.cpu_count()}
    for c in modes:
        rs, fs = runs[c], floors[c]
        n_req = rs[0]["requests"]
        ideal = n_req * args.latency / args.concurrency
        cpu, floor = med([r["cpu"] for r in rs]), med([f["cpu"] for f in fs])
        wall = med([r["wall"] for r in rs])
        result["choices_per_call"][str(c)] = {
            "requests": n_req, "ideal_s": round(ideal, 3), "wall_s": round(wall, 3),
            "wall_over_ideal": round(wall / ideal, 3),
            "wall_over_one_request_a_grading_ideal": round(wall / per_grading_ideal, 3),
            "client_cpu_ms_per_grading": round(1000 * cpu / n_gradings, 3),
            "client_cpu_ms_per_request": round(1000 * cpu / n_req, 3),
            "baseline_bare_sdk": {"cpu_ms_per_request": round(1000 * floor / fs[0]["requests"], 3),
                                  "wall_over_ideal": round(med([f["wall"] for f in fs]) / ideal, 3)},
            "judge_cpu_over_bare_sdk": round(cpu / floor, 3),
            "warmup_call_s": round(rs[0]["warmup"], 3),
            "cached_rerun_calls": max(r["cached_calls"] for r in rs),
            "cached_rerun_s": round(med([r["cached_wall"] for r in rs]), 3),
            "per_run": [{"cpu_ms_per_grading": round(1000 * r["cpu"] / n_gradings, 3),
                         "wall_over_ideal": round(r["wall"] / ideal, 3),
                         "bare_sdk_cpu_ms_per_request": round(1000 * f["cpu"] / f["requests"], 3)}
                        for r, f in zip(rs, fs)],
        }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
