"""A scriptable local LLM server speaking the OpenAI chat-completions and Anthropic messages
wire protocols, for driving the real SDK clients in tests and benchmarks.

    with FakeLLMServer() as srv:                       # 127.0.0.1, a free port
        OpenAI(base_url=srv.openai_url, ...)           # POST /v1/chat/completions
        Anthropic(base_url=srv.anthropic_url, ...)     # POST /v1/messages
        srv.script.extend([Action(status=429, headers={"Retry-After": "0.01"}), Action()])
        srv.calls                                      # completions answered with 200

By default every request is answered with a well-formed grading table giving full marks to
each criterion listed in the grader prompt. Scripted ``Action``s are used first, in order;
then ``srv.handler(request) -> Action | None`` if set; then ``srv.default``.

An OpenAI request with ``n`` > 1 takes one action per choice, in order; the first action that is
not a 200 reply (an error, drop, hang, partial body) stops there and decides the whole request.
``srv.n_mode`` plays servers without ``n``: "ignore" answers one choice, "reject" answers 400.
``Action(trickle=0.1)`` sends the reply's body one byte every 0.1 s (no read ever waits long).

The providers' batch endpoints (OpenAI Files + Batches, Anthropic Message Batches) are served by
``srv.batch`` (``fake_batch_api.BatchAPI``), whose lines are answered by the same actions.

As a program (``python tests/fake_llm_server.py --latency 0.2``) it prints ``PORT <n>`` and serves
until killed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run as a program too
from fake_batch_api import BatchAPI  # noqa: E402


@dataclass
class Action:
    text: str | None = None  # reply text; None: a table from the prompt's rubric
    points: Sequence[int] | None = None  # with text None: these points instead of all 1s
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    hang: float = 0.0  # seconds to hold the request, then drop it (a client timeout)
    drop: bool = False  # close the connection without any response
    partial: bool = False  # send headers and half the body, then close
    trickle: float = 0.0  # send the body one byte at a time, this many seconds apart (a slow stream)
    refusal: bool = False
    finish_reason: str = "stop"
    error_message: str = "scripted error"


_RUBRIC_RE = re.compile(r"rubric[^\n]*\n((?:- [^\n]*\n?)+)")  # the "- criterion" lines after "...rubric..."


def rubric_of(prompt: str) -> list[str]:
    """The criterion lines of a grader prompt (empty if it is not one)."""
    m = _RUBRIC_RE.search(prompt)
    return [line[2:].strip() for line in m.group(1).splitlines() if line.startswith("- ")] if m else []


def grading_table(prompt: str, points: Sequence[int] | None = None) -> str:
    criteria = rubric_of(prompt)
    if not criteria:
        return "Answer: a short reply.\nExplanation: not a grader prompt."
    points = list(points) if points is not None else [1] * len(criteria)
    rows = "\n".join(f"| {c} | {p} |" for c, p in zip(criteria, points))
    return (f"| Criteria | Points Earned |\n|---|---|\n{rows}\n| Total Points Earned | {sum(points)} |\n\n"
            f"Explanation: scripted grading.")


class FakeLLMServer:
    def __init__(self, latency: float = 0.0, default: Action | None = None):
        self.latency = latency
        self.default = default or Action()
        self.script: collections.deque[Action] = collections.deque()
        self.handler: Callable[[dict], Action | None] | None = None
        self.requests: list[dict] = []  # every request received: path, body, headers
        self.calls = 0  # 200 replies sent
        self.samples = 0  # choices (or Anthropic messages) in those replies
        self.n_mode = "honour"  # "honour" | "ignore" | "reject" the OpenAI ``n``
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self.batch = BatchAPI(self)

    # -- lifecycle
    def start(self, port: int = 0) -> "FakeLLMServer":
        server = self

        class Handler(_Handler):
            owner = server

        httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_url(self) -> str:
        return self.url

    def kill_after(self, cmd: Sequence[str], calls: int = 0, timeout: float = 60.0,
                   until: Callable[[], bool] | None = None) -> None:
        """Run ``cmd``, SIGKILL it once this server has answered ``calls`` requests (or once
        ``until()`` is true), then let the server finish the requests it still had (their replies
        reach no one)."""
        proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        done = until or (lambda: self.calls >= calls)
        while not done() and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)

    def _next_action(self, request: dict) -> Action:
        with self._lock:
            if self.script:
                return self.script.popleft()
        if self.handler is not None:
            action = self.handler(request)
            if action is not None:
                return action
        return self.default

    def _choice_actions(self, request: dict, n: int) -> list[Action]:
        """One scripted action per choice of a request; a failing one stands for the whole request."""
        actions: list[Action] = []
        while len(actions) < n:
            actions.append(self._next_action(request))
            if _fails(actions[-1]):
                return [actions[-1]]
        return actions


ThreadingHTTPServer.request_queue_size = 256  # many clients connect at once in the benchmark


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FakeLLMServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._batch_route("GET", b"") or self._send(404, {"error": {"message": f"no route {self.path}"}})

    def _batch_route(self, method: str, body: bytes) -> bool:
        routed = self.owner.batch.handle(method, self.path, self.headers, body)
        if routed is None:
            return False
        self._send(*routed)
        return True

    def _send(self, status: int, payload) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if isinstance(payload, bytes) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        srv = self.owner
        body_raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self._batch_route("POST", body_raw):
            return
        try:
            body = json.loads(body_raw or b"{}")
        except json.JSONDecodeError:
            body = {}
        request = {"path": self.path, "body": body, "headers": dict(self.headers)}
        with srv._lock:
            srv.requests.append(request)
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            self._answer(srv, request)
        finally:
            with srv._lock:
                srv.in_flight -= 1

    def _answer(self, srv: FakeLLMServer, request: dict) -> None:
        anthropic = self.path.rstrip("/").endswith("/messages")
        n = 1 if anthropic else int(request["body"].get("n") or 1)
        if n > 1 and srv.n_mode == "reject":
            n, actions = 1, [Action(status=400, error_message="Only one completion choice is allowed")]
        else:
            n = 1 if srv.n_mode == "ignore" else n
            actions = srv._choice_actions(request, n)
        action = actions[0]
        if srv.latency or action.delay:
            time.sleep(srv.latency + action.delay)
        if action.hang:
            time.sleep(action.hang)
            self.close_connection = True
            return
        if action.drop:
            self.close_connection = True
            return
        if action.status != 200:
            payload = self._error(action, anthropic)
        else:
            payload = self._reply(actions, request["body"], anthropic)
            with srv._lock:
                srv.calls += 1
                srv.samples += len(actions)
        data = json.dumps(payload).encode()
        self.send_response(action.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in action.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if action.partial:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if action.trickle:
            # Each byte well within any per-read timeout, the whole body far slower than a deadline.
            try:
                for i in range(len(data)):
                    self.wfile.write(data[i: i + 1])
                    self.wfile.flush()
                    time.sleep(action.trickle)
            except OSError:  # the client gave up and closed the connection
                self.close_connection = True
            return
        self.wfile.write(data)

    @staticmethod
    def _error(action: Action, anthropic: bool) -> dict:
        if anthropic:
            kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                    429: "rate_limit_error", 529: "overloaded_error"}.get(action.status, "api_error")
            return {"type": "error", "error": {"type": kind, "message": action.error_message}}
        return {"error": {"message": action.error_message, "type": "server_error", "code": action.status}}

    @staticmethod
    def _reply(actions: Sequence[Action], body: dict, anthropic: bool) -> dict:
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        texts = []
        for action in actions:
            text = action.text if action.text is not None else grading_table(prompt, action.points)
            texts.append(("" if anthropic else None) if action.refusal else text)
        # The prompt is counted once a request, however many choices (as the OpenAI API reports it).
        usage_in, usage_out = max(1, len(prompt) // 4), sum(len(t or "") // 4 for t in texts)
        model = body.get("model", "fake")
        if anthropic:
            action, text = actions[0], texts[0]
            return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": text}] if text else [],
                    "stop_reason": "refusal" if action.refusal else
                    ("max_tokens" if action.finish_reason == "length" else "end_turn"),
                    "stop_sequence": None, "usage": {"input_tokens": usage_in, "output_tokens": usage_out}}
        choices = []
        for i, (action, text) in enumerate(zip(actions, texts)):
            message = {"role": "assistant", "content": text}
            if action.refusal:
                message["refusal"] = "I can't help with grading this."
            choices.append({"index": i, "message": message, "finish_reason": action.finish_reason})
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": choices, "usage": {"prompt_tokens": usage_in, "completion_tokens": usage_out,
                                              "total_tokens": usage_in + usage_out}}


def _fails(action: Action) -> bool:
    return action.status != 200 or action.drop or bool(action.hang) or action.partial


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0)
    args = p.parse_args(argv)
    srv = FakeLLMServer(latency=args.latency).start(args.port)
    print(f"PORT {srv.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
