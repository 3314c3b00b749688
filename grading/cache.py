"""SQLite reply cache: one row per call, written the moment the reply arrives.

The key hashes everything that determines a reply (namespace, judge spec, reply settings,
prompt version, messages, grading index) and nothing secret. Only successful replies are
stored, raw: parsing happens on read, so a parser fix re-scores without calls, and a failed
call is simply absent and retried next time. WAL and a busy timeout let several processes
(lm-eval ranks, parallel re-grades) share one file.

Batch mode (``batch.py``) keeps two more tables here: the provider batches a run submitted and,
per reply key, which batch and line will answer it. They are written the moment a batch is
created, so a killed run's successor polls the same batches instead of submitting again.
"""

from __future__ import annotations

import asyncio
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

BATCH_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    namespace TEXT NOT NULL,
    requests INTEGER NOT NULL,
    created REAL NOT NULL,
    collected REAL
);
CREATE TABLE IF NOT EXISTS batch_lines (
    key TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL,
    custom_id TEXT NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS batch_lines_by_batch ON batch_lines (batch_id);
"""

INSERT = "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


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
            self._conn.executescript(BATCH_SCHEMA)
        self._pending: list[tuple] = []
        self._flush_scheduled = False

    def get(self, key: str) -> CachedReply | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedReply]:
        self.flush()
        rows = self._rows_for_keys("SELECT key, reply, finish_reason, input_tokens, output_tokens, created, elapsed "
                                   "FROM replies WHERE key IN ({})", keys)
        return {r[0]: CachedReply(*r[1:]) for r in rows}

    def _rows_for_keys(self, sql: str, keys: Iterable[str]) -> list[tuple]:
        """``sql`` (with ``{}`` where the key placeholders go) over ``keys`` in chunks within SQLite's
        variable limit."""
        keys = list(keys)
        rows: list[tuple] = []
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i: i + 500]
                rows += self._conn.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
        return rows

    def put(self, key: str, *, namespace: str, spec: str, reply: str, finish_reason: str | None,
            input_tokens: int, output_tokens: int, elapsed: float | None = None) -> None:
        row = (key, namespace, spec, reply, finish_reason, int(input_tokens), int(output_tokens), time.time(), elapsed)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            if loop is None:
                # Autocommit: each reply is durable on its own, so a kill loses only calls in flight.
                self._conn.execute(INSERT, row)
                return
            # In an event loop, the replies that arrive in one loop iteration share one transaction,
            # written at the end of that iteration: a kill still loses only calls in flight (and
            # the replies of the iteration in progress), at a fraction of the per-commit CPU.
            self._pending.append(row)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write the replies queued by :meth:`put` in this event-loop iteration."""
        with self._lock:
            rows, self._pending, self._flush_scheduled = self._pending, [], False
            if rows:
                self._conn.execute("BEGIN")
                try:
                    self._conn.executemany(INSERT, rows)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise

    # -- batch bookkeeping
    def add_batch(self, batch_id: str, *, spec: str, namespace: str, lines: Iterable[tuple[str, list[str]]]) -> None:
        """Record a submitted batch and, per line (custom id, its reply keys in choice order), the
        keys it will answer; committed at once."""
        lines = list(lines)
        rows = [(key, batch_id, cid, pos) for cid, keys in lines for pos, key in enumerate(keys)]
        self.flush()
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.execute("INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, NULL)",
                                   (batch_id, spec, namespace, len(lines), time.time()))
                self._conn.executemany("INSERT OR REPLACE INTO batch_lines VALUES (?, ?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def pending_batches(self, keys: Iterable[str]) -> dict[str, str]:
        """key -> id of the uncollected batch that will answer it."""
        return dict(self._rows_for_keys("SELECT l.key, l.batch_id FROM batch_lines l JOIN batches b ON b.id = l.batch_id "
                                        "WHERE b.collected IS NULL AND l.key IN ({})", keys))

    def batch_lines(self, batch_id: str) -> dict[str, list[str]]:
        """custom id -> reply keys (in choice order) of a recorded batch."""
        with self._lock:
            rows = self._conn.execute("SELECT custom_id, position, key FROM batch_lines WHERE batch_id = ? "
                                      "ORDER BY custom_id, position", (batch_id,)).fetchall()
        out: dict[str, list[str]] = {}
        for cid, _, key in rows:
            out.setdefault(cid, []).append(key)
        return out

    def batch_collected(self, batch_id: str) -> None:
        """The batch's replies are in the cache (written before this): forget its lines."""
        self.flush()
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.execute("UPDATE batches SET collected = ? WHERE id = ?", (time.time(), batch_id))
                self._conn.execute("DELETE FROM batch_lines WHERE batch_id = ?", (batch_id,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        self.flush()
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._conn.close()
