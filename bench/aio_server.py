"""An asyncio (aiohttp) OpenAI-protocol server for the judge benchmark.

The tests' threaded stdlib server spends a thread and a few ms of CPU per request, which on a
2-core machine is a large share of what the benchmark is trying to measure (the client).
This one sleeps on the event loop instead; it answers with the same full-marks grading tables
(``tests/fake_llm_server.grading_table``). Prints ``PORT <n>`` and serves until killed.
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


def make_app(latency: float) -> web.Application:
    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(latency)
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        text = grading_table(prompt)
        n = int(body.get("n") or 1)  # the OpenAI API's n: that many choices, the prompt counted once
        n_in, n_out = max(1, len(prompt) // 4), n * (len(text) // 4)
        return web.json_response({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "bench"),
            "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                        for i in range(n)],
            "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


async def serve(latency: float) -> None:
    runner = web.AppRunner(make_app(latency), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=512)
    await site.start()
    print(f"PORT {site._server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--latency", type=float, default=0.0)
    asyncio.run(serve(p.parse_args().latency))
