"""An asyncio (aiohttp) OpenAI-protocol server for the judge benchmark.

The tests' threaded stdlib server spends a thread and a few ms of CPU per request, which on a
2-core machine is a large share of what the benchmark is trying to measure (the client).
This one sleeps on the event loop instead; it answers with the same full-marks grading tables
(``tests/fake_llm_server.grading_table``). Prints ``PORT <n>`` and serves until killed.

With ``--tpm N`` it enforces a tokens-per-minute limit the way OpenAI does: a bucket of N tokens
refilled continuously (N per ``--window`` seconds, 60 by default; a shorter window scales the minute
down), each request charged its prompt tokens (4 characters a token) plus ``max_tokens`` for each of
its ``n`` choices when admitted, refused with 429 and ``retry-after-ms`` when the bucket cannot take
it, ``x-ratelimit-*`` headers on every answer. ``GET /stats`` has what was admitted and refused;
``POST /reset`` refills the bucket and clears them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_llm_server import grading_table  # noqa: E402


class TokenBucket:
    def __init__(self, limit: float, window: float):
        self.limit, self.rate = limit, limit / window
        self.reset()

    def reset(self) -> None:
        self.level, self.t = self.limit, time.monotonic()
        self.admitted: list[tuple[float, float]] = []  # (monotonic time, tokens)
        self.refused = 0
        self.first_low: float | None = None  # when the bucket first could not take a request

    def take(self, cost: float) -> tuple[bool, dict]:
        now = time.monotonic()
        self.level = min(self.limit, self.level + (now - self.t) * self.rate)
        self.t = now
        ok = self.level >= cost
        if ok:
            self.level -= cost
            self.admitted.append((now, cost))
        else:
            self.refused += 1
            self.first_low = self.first_low or now
        headers = {"x-ratelimit-limit-tokens": str(int(self.limit)),
                   "x-ratelimit-remaining-tokens": str(int(self.level)),
                   "x-ratelimit-reset-tokens": f"{(self.limit - self.level) / self.rate:.3f}s",
                   "x-ratelimit-limit-requests": "100000", "x-ratelimit-remaining-requests": "99999",
                   "x-ratelimit-reset-requests": "1ms"}
        if not ok:
            headers["retry-after-ms"] = str(int(1000 * (cost - self.level) / self.rate) + 1)
        elif self.level < cost and self.first_low is None:
            self.first_low = now
        return ok, headers


def make_app(latency: float, tpm: float | None = None, window: float = 60.0) -> web.Application:
    bucket = TokenBucket(tpm, window) if tpm else None

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        n = int(body.get("n") or 1)  # the OpenAI API's n: that many choices, the prompt counted once
        headers = {}
        if bucket is not None:
            ok, headers = bucket.take(max(1, len(prompt) // 4) + n * int(body.get("max_tokens") or 0))
            if not ok:
                return web.json_response({"error": {"message": "Rate limit reached for tokens per min",
                                                    "type": "tokens", "code": "rate_limit_exceeded"}},
                                         status=429, headers=headers)
        await asyncio.sleep(latency)
        text = grading_table(prompt)
        n_in, n_out = max(1, len(prompt) // 4), n * (len(text) // 4)
        return web.json_response({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "bench"),
            "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                        for i in range(n)],
            "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}},
            headers=headers)

    async def stats(request: web.Request) -> web.Response:
        b = bucket
        return web.json_response({} if b is None else {
            "limit": b.limit, "rate_per_s": b.rate, "admitted": b.admitted, "refused": b.refused,
            "first_low": b.first_low, "now": time.monotonic()})

    async def reset(request: web.Request) -> web.Response:
        if bucket is not None:
            bucket.reset()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    return app


async def serve(latency: float, tpm: float | None = None, window: float = 60.0) -> None:
    runner = web.AppRunner(make_app(latency, tpm, window), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=512)
    await site.start()
    print(f"PORT {site._server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--tpm", type=float, help="enforce this many tokens per --window seconds")
    p.add_argument("--window", type=float, default=60.0, help="seconds the --tpm limit is over (default 60)")
    a = p.parse_args()
    asyncio.run(serve(a.latency, a.tpm, a.window))
