"""Holding a tokens-per-minute limit: the judge against a local OpenAI-protocol server that enforces
60,000 tokens per minute (``bench/aio_server.py --tpm``), with and without pacing by the rate-limit
headers (``pace_by_rate_limits``), in the same run.

    python bench/ratelimit_bench.py [--tpm 60000] [--window 6] [--texts 300] [--concurrency 64]

To keep the run to about a minute the limit's minute is scaled down (``--window 6``: 60,000 tokens
per 6 s, refilled continuously; every number below scales with it). Reports per mode: sustained
throughput (tokens admitted after the bucket first ran low, per second) as a share of the limit's
refill rate (target >= 0.90), and the share of HTTP requests answered 429 (target <= 0.02). The
unpaced mode is the judge as it was: a semaphore, the SDK's retries honouring Retry-After.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from judge_bench import start_server  # noqa: E402


def _get(url: str, method: str = "GET") -> dict:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def run_mode(port: int, pairs, paced: bool, concurrency: int, max_tokens: int) -> dict:
    from skillmix.grading import resolve_judge

    base = f"http://127.0.0.1:{port}"
    _get(f"{base}/reset", "POST")
    judge = resolve_judge("openai:gpt-4o", {"cache": "off", "concurrency": concurrency, "max_tokens": max_tokens,
                                            "pace_by_rate_limits": paced, "max_retries": 20, "timeout": 60})
    start = time.monotonic()
    grades = judge.grade(pairs, progress=False)
    wall = time.monotonic() - start
    s = _get(f"{base}/stats")
    st = judge.stats.to_dict()
    low = s["first_low"] or s["admitted"][0][0]
    end = max(t for t, _ in s["admitted"])
    sustained = sum(c for t, c in s["admitted"] if t > low) / max(1e-9, end - low)
    attempts = len(s["admitted"]) + s["refused"]
    return {"paced": paced, "wall_s": round(wall, 2), "scored": sum(g.scored for g in grades),
            "requests_admitted": len(s["admitted"]), "answered_429": s["refused"],
            "share_429": round(s["refused"] / attempts, 4), "sustained_tokens_per_s": round(sustained, 1),
            "throughput_vs_limit": round(sustained / s["rate_per_s"], 3), "measured_over_s": round(end - low, 2),
            "client_retries": st["retries"]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tpm", type=float, default=60000)
    p.add_argument("--window", type=float, default=6.0, help="seconds the limit is over (60 = a real minute)")
    p.add_argument("--texts", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency", type=float, default=0.3)
    p.add_argument("--max-tokens", type=int, default=200)
    p.add_argument("--modes", default="paced,unpaced")
    args = p.parse_args(argv)
    proc, port = start_server(args.latency, extra=["--tpm", str(args.tpm), "--window", str(args.window)])
    try:
        os.environ.update(OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1")
        from skillmix_tasks import sample_items

        items = [it for k in (2, 3, 4) for it in sample_items("all", k, n=100)][: args.texts]
        pairs = [(it, "The tailor argued that all seams either hold or fail. So the hem held.") for it in items]
        with tempfile.TemporaryDirectory():
            modes = {m: run_mode(port, pairs, m == "paced", args.concurrency, args.max_tokens)
                     for m in args.modes.split(",")}
    finally:
        proc.kill()
    return {"tpm": args.tpm, "window_s": args.window, "texts": len(pairs), "concurrency": args.concurrency,
            "latency_s": args.latency, "max_tokens": args.max_tokens, "modes": modes}


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
