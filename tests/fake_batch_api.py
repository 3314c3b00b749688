"""The providers' batch endpoints for :class:`fake_llm_server.FakeLLMServer`, so the real SDKs'
``files`` / ``batches`` (OpenAI) and ``messages.batches`` (Anthropic) clients can be driven in tests.

    srv.batch.polls = 2        # retrieves answered "in progress" before a batch ends (0: ends at once)
    srv.batch.hold = True      # batches stay in progress until released (to kill a run mid-wait)
    srv.batch.expire_after = 3 # a batch runs only its first 3 lines; the rest expire
    srv.batch.garble_line = 0  # the next OpenAI output file has its first line unreadable
    srv.batch.lines            # request lines received in all batches (resubmissions show here)
    srv.batch.statuses         # what each status poll answered ("validating", "in_progress", ...)

Each line is answered like an online request when its batch ends: the server's script, handler
and default decide it (an ``Action`` with an error status makes that line errored; an OpenAI
line with ``n`` takes one action per choice). OpenAI: POST /v1/files (multipart), POST
/v1/batches, GET /v1/batches/{id}, GET /v1/files/{id}/content. Anthropic: POST
/v1/messages/batches, GET /v1/messages/batches/{id}, GET /v1/messages/batches/{id}/results.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone


@dataclass
class _Batch:
    id: str
    provider: str  # "openai" | "anthropic"
    requests: list[dict]  # {"custom_id", "body"} (the chat body, or the Anthropic params)
    input_file_id: str | None = None
    polls_left: int = 0
    ended: bool = False
    expired: bool = False
    results: list[dict] = field(default_factory=list)  # per line: {"custom_id", "ok", "payload" | "status"...}
    output_file_id: str | None = None
    error_file_id: str | None = None
    created: float = field(default_factory=time.time)


class BatchAPI:
    def __init__(self, server):
        self.server = server
        self.polls = 2
        self.hold = False
        self.expire_after: int | None = None
        self.garble_line: int | None = None  # this output line (0-based) is written unreadable, once
        self.lines = 0
        self.created: list[str] = []  # batch ids, in order of creation
        self.statuses: list[str] = []  # the status each retrieve answered, in order
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, _Batch] = {}
        self._lock = threading.Lock()
        self._n = 0

    def _id(self, prefix: str) -> str:
        with self._lock:
            self._n += 1
            return f"{prefix}{self._n:04d}"

    # -- routing: (status, payload as dict or bytes) or None when the path is not a batch path
    def handle(self, method: str, path: str, headers, body: bytes):
        path = path.split("?")[0].rstrip("/")
        parts = path.split("/")
        if method == "POST" and path == "/v1/files":
            return self._upload(headers, body)
        if method == "GET" and len(parts) == 5 and parts[2] == "files" and parts[4] == "content":
            data = self.files.get(parts[3])
            return (200, data) if data is not None else (404, {"error": {"message": "no such file"}})
        if method == "POST" and path == "/v1/batches":
            return self._create_openai(json.loads(body or b"{}"))
        if method == "GET" and len(parts) == 4 and parts[2] == "batches":
            return self._retrieve(parts[3], "openai")
        if method == "POST" and path == "/v1/messages/batches":
            return self._create_anthropic(json.loads(body or b"{}"))
        if method == "GET" and len(parts) == 5 and parts[2:4] == ["messages", "batches"]:
            return self._retrieve(parts[4], "anthropic")
        if method == "GET" and len(parts) == 6 and parts[2:4] == ["messages", "batches"] and parts[5] == "results":
            b = self.batches.get(parts[4])
            if b is None or not b.ended:
                return 404, {"type": "error", "error": {"type": "not_found_error", "message": "no results yet"}}
            return 200, self._anthropic_results(b)
        return None

    def _upload(self, headers, body: bytes):
        msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(
            b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body)
        data = purpose = None
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                data = part.get_payload(decode=True)
            elif name == "purpose":
                purpose = part.get_content().strip()
        if data is None or purpose != "batch":
            return 400, {"error": {"message": "expected a file with purpose=batch"}}
        fid = self._id("file-")
        self.files[fid] = data
        return 200, {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                     "filename": "batch.jsonl", "purpose": "batch", "status": "processed"}

    def _create_openai(self, body: dict):
        data = self.files.get(body.get("input_file_id", ""))
        if data is None or body.get("endpoint") != "/v1/chat/completions":
            return 400, {"error": {"message": "bad input_file_id or endpoint"}}
        requests = []
        for line in data.decode().split("\n"):
            if line.strip():
                row = json.loads(line)
                assert row["method"] == "POST" and row["url"] == "/v1/chat/completions", row
                requests.append({"custom_id": row["custom_id"], "body": row["body"]})
        return 200, self._openai_view(self._add(_Batch(self._id("batch_"), "openai", requests, body["input_file_id"])))

    def _create_anthropic(self, body: dict):
        requests = [{"custom_id": r["custom_id"], "body": r["params"]} for r in body.get("requests", [])]
        return 200, self._anthropic_view(self._add(_Batch(self._id("msgbatch_"), "anthropic", requests)))

    def _add(self, b: _Batch) -> _Batch:
        b.polls_left = self.polls
        with self._lock:
            self.batches[b.id] = b
            self.created.append(b.id)
            self.lines += len(b.requests)
        return b

    def _retrieve(self, bid: str, provider: str):
        b = self.batches.get(bid)
        if b is None or b.provider != provider:
            return 404, {"error": {"message": f"no batch {bid}"}}
        if not b.ended and not self.hold:
            if b.polls_left > 0:
                b.polls_left -= 1
            else:
                self._finish(b)
        view = self._openai_view(b) if provider == "openai" else self._anthropic_view(b)
        self.statuses.append(view["status" if provider == "openai" else "processing_status"])
        return 200, view

    def _finish(self, b: _Batch) -> None:
        from fake_llm_server import _fails, _Handler

        srv = self.server
        for i, r in enumerate(b.requests):
            if self.expire_after is not None and i >= self.expire_after:
                b.expired = True
                b.results.append({"custom_id": r["custom_id"], "expired": True})
                continue
            anthropic = b.provider == "anthropic"
            n = 1 if anthropic else int(r["body"].get("n") or 1)
            request = {"path": "batch", "body": r["body"], "headers": {}}
            actions = srv._choice_actions(request, n)
            a = actions[0]
            status = a.status if a.status != 200 or not _fails(a) else 500
            if status != 200:
                b.results.append({"custom_id": r["custom_id"], "status": status,
                                  "error": _Handler._error(a, anthropic)})
            else:
                b.results.append({"custom_id": r["custom_id"], "status": 200,
                                  "payload": _Handler._reply(actions, r["body"], anthropic)})
        b.ended = True
        if b.provider == "openai":
            ok = [x for x in b.results if x.get("status") == 200]
            bad = [x for x in b.results if x.get("status") != 200]
            if ok:
                b.output_file_id = self._id("file-")
                if self.garble_line is not None and self.garble_line < len(ok):
                    ok[self.garble_line] = dict(ok[self.garble_line], garbled=True)
                    self.garble_line = None
                self.files[b.output_file_id] = "".join(("{\"custom_id\": \"" + x["custom_id"] + "\", garbage\n")
                    if x.get("garbled") else json.dumps({
                    "id": f"batch_req_{x['custom_id'][:8]}", "custom_id": x["custom_id"], "error": None,
                    "response": {"status_code": 200, "request_id": "req_fake", "body": x["payload"]}},
                    ensure_ascii=False) + "\n" for x in ok).encode()  # raw UTF-8, U+2028 included, as JSON allows
            if bad:
                b.error_file_id = self._id("file-")
                self.files[b.error_file_id] = "".join(json.dumps(
                    {"id": f"batch_req_{x['custom_id'][:8]}", "custom_id": x["custom_id"], "response": None,
                     "error": {"code": "batch_expired", "message": "This request could not be executed before "
                               "the completion window expired."}} if x.get("expired") else
                    {"id": f"batch_req_{x['custom_id'][:8]}", "custom_id": x["custom_id"], "error": None,
                     "response": {"status_code": x["status"], "request_id": "req_fake", "body": x["error"]}}) + "\n"
                    for x in bad).encode()

    def _openai_view(self, b: _Batch) -> dict:
        done = [x for x in b.results if x.get("status") == 200]
        status = ("expired" if b.expired else "completed") if b.ended else \
            ("validating" if b.polls_left == self.polls and self.polls > 0 else "in_progress")
        return {"id": b.id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": None,
                "input_file_id": b.input_file_id, "completion_window": "24h", "status": status,
                "output_file_id": b.output_file_id, "error_file_id": b.error_file_id,
                "created_at": int(b.created), "in_progress_at": int(b.created),
                "expires_at": int(b.created) + 86400, "completed_at": int(time.time()) if b.ended else None,
                "request_counts": {"total": len(b.requests), "completed": len(done),
                                   "failed": len(b.results) - len(done)}, "metadata": None}

    def _anthropic_view(self, b: _Batch) -> dict:
        created = datetime.fromtimestamp(b.created, timezone.utc)
        counts = {"processing": 0 if b.ended else len(b.requests), "succeeded": 0, "errored": 0, "canceled": 0,
                  "expired": 0}
        for x in b.results:
            counts["expired" if x.get("expired") else "succeeded" if x["status"] == 200 else "errored"] += 1
        base = self.server.url
        return {"id": b.id, "type": "message_batch", "processing_status": "ended" if b.ended else "in_progress",
                "request_counts": counts, "created_at": created.isoformat(),
                "expires_at": (created + timedelta(days=1)).isoformat(),
                "ended_at": datetime.now(timezone.utc).isoformat() if b.ended else None,
                "archived_at": None, "cancel_initiated_at": None,
                "results_url": f"{base}/v1/messages/batches/{b.id}/results" if b.ended else None}

    def _anthropic_results(self, b: _Batch) -> bytes:
        out = []
        for x in reversed(b.results):  # "not guaranteed to be in request order": they are not here
            if x.get("expired"):
                result = {"type": "expired"}
            elif x["status"] == 200:
                result = {"type": "succeeded", "message": x["payload"]}
            else:
                result = {"type": "errored", "error": x["error"]}
            out.append(json.dumps({"custom_id": x["custom_id"], "result": result}, ensure_ascii=False) + "\n")
        return "".join(out).encode()
