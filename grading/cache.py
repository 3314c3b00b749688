"""SQLite reply cache: one row per call, written the moment the reply arrives.

The key hashes everything that determines a reply (namespace, judge spec, reply settings,
prompt version, messages, grading index) and nothing secret. Only successful replies are
stored, raw: parsing happens on read, so a parser fix re-scores without calls, and a failed
call is simply absent and retried next time. WAL and a busy timeout let several processes
(lm-eval ranks, parallel re-grades) share one file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    spec TEXT NOT NULL,
    reply TEXT NOT NULL,
    finish_reason TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    created REAL NOT NULL,
    elapsed REAL
)
"""


def cache_key(**parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class CachedReply:
    reply: str
    finish_reason: str | None
    input_tokens: int
    output_tokens: int
    created: float
    elapsed: float | None


class ReplyCache:
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, used from the event loop thread and occasionally a worker thread.
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._conn.execute("PRAGMA busy_timeout=60000")
            self._conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a crash may lose the last commits but never corrupts the file.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(SCHEMA)

    def get(self, key: str) -> CachedReply | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedReply]:
        keys = list(keys)
        out: dict[str, CachedReply] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i: i + 500]
                rows = self._conn.execute(
                    f"SELECT key, reply, finish_reason, input_tokens, output_tokens, created, elapsed "
                    f"FROM replies WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall()
                for r in rows:
                    out[r[0]] = CachedReply(*r[1:])
        return out

    def put(self, key: str, *, namespace: str, spec: str, reply: str, finish_reason: str | None,
            input_tokens: int, output_tokens: int, elapsed: float | None = None) -> None:
        with self._lock:
            # Autocommit: each reply is durable on its own, so a kill loses only calls in flight.
            self._conn.execute(
                "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, namespace, spec, reply, finish_reason, int(input_tokens), int(output_tokens),
                 time.time(), elapsed))

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
