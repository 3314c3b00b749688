"""SQLite reply cache: one row per call, written the moment the reply arrives.

The key hashes everything that determines a reply (namespace, judge spec, reply settings,
prompt version, messages, grading index) and nothing secret. Only successful replies are
stored, raw: parsing happens on read, so a parser fix re-scores without calls, and a failed
call is simply absent and retried next time. WAL and a busy timeout let several processes
(lm-eval ranks, parallel re-grades) share one file.

Sharing the work, not only the file: a process about to send a request first *claims* its keys
(``claim``: a row per key naming the holder, host + pid + a random token, with a lease it renews
while it works). Another process that wants a claimed key waits for the reply to appear instead of
sending it too (``claimable`` says when to look again); a claim whose lease ran out, whose holder
died (same host: the pid is checked at once) or that was released without a reply (the call
failed) is taken over. The first reply stored under a key wins (``INSERT OR IGNORE``) and a writer
that lost learns the stored one (``put(on_conflict=...)``): every output can be rebuilt from the
cache alone.

Batch mode (``batch.py``) keeps two more tables here: the provider batches a run submitted and,
per reply key, which batch and line will answer it. They are written the moment a batch is
created, so a killed run's successor polls the same batches instead of submitting again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)

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

CLAIM_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    expires REAL NOT NULL
)
"""

# The first reply stored under a key is the one every reader uses, this process or another.
INSERT = "INSERT OR IGNORE INTO replies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
RELEASE = "DELETE FROM claims WHERE key = ? AND holder = ?"

# A claim's lease: long enough that renewing it (every LEASE_RENEW s while held) costs nothing,
# short enough that a holder that vanished without a trace (another host) blocks little.
CLAIM_LEASE = 180.0
LEASE_RENEW = 60.0


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


# claim(): the replies already stored, the keys claimed now, the keys a live holder is asking for.
Claimed = tuple[dict[str, CachedReply], list[str], list[str]]


@functools.lru_cache(maxsize=1)
def host_id() -> str:
    """Where a pid names one process: the host name and, on Linux, the pid namespace and the boot,
    so that two containers or two boots never judge each other's pids."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    return "|".join(parts)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host is running (a zombie, killed but not yet reaped, is not)."""
    if os.name != "posix":
        return True  # no cheap probe (os.kill(pid, 0) sends a signal on Windows): the lease decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process, alive
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        return stat[stat.rindex(b")") + 2:][:1] != b"Z"
    except (OSError, ValueError):
        return True


def _wake(futures: list, results: list | None = None, error: BaseException | None = None,
          undelivered: Callable[[Any], None] | None = None) -> None:
    """Resolve futures (``written()``: None; ``aclaim()``: its answer), each on its own loop: a
    flush may run in another thread. With ``error``, fail them all with it. ``undelivered(value)``
    for a result whose future was cancelled meanwhile."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for i, fut in enumerate(futures):
        value = None if results is None else results[i]

        def resolve(fut=fut, value=value) -> None:
            if not fut.done():
                fut.set_exception(error) if error is not None else fut.set_result(value)
            elif value is not None and undelivered is not None:
                undelivered(value)

        loop = fut.get_loop()
        if loop is running:
            resolve()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(resolve)


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
            self._conn.execute(CLAIM_SCHEMA)
            # Claims whose lease ran out are free anyway; a killed run's would otherwise stay forever.
            self._conn.execute("DELETE FROM claims WHERE expires < ?", (time.time(),))
        self._pending: list[tuple[tuple, Callable[[CachedReply], None] | None]] = []  # (row, on_conflict)
        self._releases: list[str] = []  # claims to drop with the next write
        self._flush_loop: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on
        self._flush_waiters: list[asyncio.Future] = []
        self._claim_queue: list[tuple[list[str], bool, asyncio.Future]] = []  # aclaim()s of this iteration
        # Claims: this object is one holder (a random token; host and pid go in each claim row too).
        self.holder = secrets.token_hex(8)
        self._host, self._pid = host_id(), os.getpid()
        self._held: set[str] = set()
        self._renew_loop: asyncio.AbstractEventLoop | None = None

    def get(self, key: str) -> CachedReply | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedReply]:
        self.flush()
        return self._stored(keys)

    def _stored(self, keys: Iterable[str]) -> dict[str, CachedReply]:
        rows = self._rows_for_keys("SELECT key, reply, finish_reason, input_tokens, output_tokens, created, elapsed "
                                   "FROM replies WHERE key IN ({})", keys)
        return {r[0]: CachedReply(*r[1:]) for r in rows}

    def _rows_for_keys(self, sql: str, keys: Iterable[str], locked: bool = False) -> list[tuple]:
        """``sql`` (with ``{}`` where the key placeholders go) over ``keys`` in chunks within SQLite's
        variable limit (``locked``: the caller holds the lock)."""
        keys = list(keys)
        rows: list[tuple] = []
        with contextlib.nullcontext() if locked else self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i: i + 500]
                rows += self._conn.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
        return rows

    def put(self, key: str, *, namespace: str, spec: str, reply: str, finish_reason: str | None,
            input_tokens: int, output_tokens: int, elapsed: float | None = None,
            on_conflict: Callable[[CachedReply], None] | None = None) -> None:
        """Store a reply. The first reply stored under a key wins: when another (another process's,
        or an earlier one of this) was there first, ours is dropped and ``on_conflict(stored)`` is
        called so the caller uses the stored one; at once outside an event loop, in an event loop
        when the iteration's replies are written (``await written()`` to be sure it has run)."""
        row = (key, namespace, spec, reply, finish_reason, int(input_tokens), int(output_tokens), time.time(), elapsed)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            if loop is not None:
                # In an event loop, the replies that arrive in one loop iteration share one transaction,
                # written at the end of that iteration: a kill still loses only calls in flight (and
                # the replies of the iteration in progress), at a fraction of the per-commit CPU.
                self._pending.append((row, on_conflict))
                self._schedule_flush(loop)
                return
            # Autocommit: each reply is durable on its own, so a kill loses only calls in flight.
            if self._conn.execute(INSERT, row).rowcount:
                return
        self._settle([(row, on_conflict)])

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._flush_loop is not loop:  # (a loop that closed before its flush ran gets a new one)
            self._flush_loop = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what this event-loop iteration queued: replies, claim releases and claims, in one
        transaction."""
        self._write()

    def _write(self, claim: tuple[list[str], bool] | None = None):
        """One transaction: the queued replies and releases, then the queued claims (and ``claim``,
        a synchronous one, whose answer is returned); then the losers' ``on_conflict``, the
        ``written()`` waiters and the claims' futures."""
        with self._lock:
            queued, self._claim_queue = self._claim_queue, []
            if not self._pending and not self._releases and not queued and claim is None:
                self._flush_loop = None
                waiters, self._flush_waiters = self._flush_waiters, []
                lost, answers, answer = [], [], None
            else:
                # A claim reads, then writes: take the write lock up front (no upgrade to fail).
                self._conn.execute("BEGIN IMMEDIATE" if queued or claim is not None else "BEGIN")
                try:
                    lost = self._drain()
                    now = time.time()
                    # (a claim whose caller was cancelled meanwhile is not taken: nobody would release it)
                    answers = [self._claim(keys, steal, now) if not fut.done() else None for keys, steal, fut in queued]
                    answer = self._claim(*claim, now) if claim is not None else None
                    self._conn.execute("COMMIT")
                except BaseException as e:
                    self._conn.execute("ROLLBACK")
                    waiters, self._flush_waiters = self._flush_waiters, []
                    _wake(waiters + [fut for _, _, fut in queued], error=e)
                    raise
                waiters, self._flush_waiters = self._flush_waiters, []
                if any(a and a[1] for a in answers) or (answer is not None and answer[1]):
                    self._keep_renewed()
        self._settle(lost)
        _wake(waiters)
        _wake([fut for _, _, fut in queued], answers, undelivered=lambda answer: self.release(answer[1]))
        return answer

    async def written(self) -> None:
        """Wait until the replies put so far are written and their ``on_conflict`` has run."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._pending and not self._releases:
                return
            fut = loop.create_future()
            self._flush_waiters.append(fut)
            self._schedule_flush(loop)
        await fut

    def _drain(self) -> list:
        """Inside a transaction, lock held: write the queued replies and releases. Returns the
        replies that were not stored (a reply was there first) with their ``on_conflict``."""
        pending, self._pending = self._pending, []
        releases, self._releases = self._releases, []
        self._flush_loop = None
        lost: list = []
        if pending:
            before = self._conn.total_changes
            self._conn.executemany(INSERT, [row for row, _ in pending])
            if self._conn.total_changes - before < len(pending):  # rare: sort out which below
                lost = pending
        if releases:
            self._conn.executemany(RELEASE, [(k, self.holder) for k in releases])
        return lost

    def _settle(self, candidates: list) -> None:
        """Hand the stored reply to each writer whose own reply lost (see :meth:`put`)."""
        if not candidates:
            return
        stored = self._stored(row[0] for row, _ in candidates)
        for row, on_conflict in candidates:
            hit = stored.get(row[0])
            if hit is not None and (hit.reply, hit.created) != (row[3], row[7]):
                log.debug("a reply was stored under %s... before this one; using the stored one", row[0][:12])
                if on_conflict is not None:
                    on_conflict(hit)

    # -- claims: one request per key across the processes sharing this file
    def claim(self, keys: Iterable[str], *, steal: bool = False) -> Claimed:
        """Claim ``keys`` for a request about to be sent. Returns the replies already stored (use
        them), the keys claimed now (send them, then :meth:`release`) and the keys a live holder is
        asking for (wait: :meth:`claimable`). ``steal`` takes live holders' claims too (a waiter
        that waited longer than their request can take). The queued replies and releases of this
        process are written first, so the look-up sees them. In an event loop, :meth:`aclaim`."""
        return self._write((list(dict.fromkeys(keys)), steal))

    async def aclaim(self, keys: Iterable[str], *, steal: bool = False) -> Claimed:
        """:meth:`claim` in an event loop: the claims of one loop iteration share one transaction
        with its replies and releases (a commit costs more than the rest of a claim)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            self._claim_queue.append((list(dict.fromkeys(keys)), steal, fut))
            self._schedule_flush(loop)
        try:
            return await fut
        except asyncio.CancelledError:  # cancelled after the claim was taken: give it back
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.release(fut.result()[1])
            raise

    def _claim(self, keys: list[str], steal: bool, now: float) -> Claimed:
        """Inside a write transaction, lock held: see :meth:`claim`."""
        stored = {r[0]: CachedReply(*r[1:]) for r in self._rows_for_keys(
            "SELECT key, reply, finish_reason, input_tokens, output_tokens, created, elapsed "
            "FROM replies WHERE key IN ({})", keys, locked=True)}
        rest = [k for k in keys if k not in stored]
        claims = {r[0]: r[1:] for r in self._rows_for_keys(
            "SELECT key, holder, host, pid, expires FROM claims WHERE key IN ({})", rest, locked=True)} if rest else {}
        mine, busy = [], []
        for k in rest:
            c = claims.get(k)
            (mine if c is None or steal or not self._live(k, *c, now=now) else busy).append(k)
        if mine:
            self._conn.executemany("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?)",
                                   [(k, self.holder, self._host, self._pid, now + CLAIM_LEASE) for k in mine])
            self._held.update(mine)
        return stored, mine, busy

    def _keep_renewed(self) -> None:
        """Lock held, claims just taken: make sure their leases are renewed on this loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a synchronous caller: its requests end well within the lease
        if self._renew_loop is not loop:
            self._renew_loop = loop
            loop.call_later(LEASE_RENEW, self._renew, loop)

    def _live(self, key: str, holder: str, host: str, pid: int, expires: float, *, now: float) -> bool:
        """Whether a claim still stands: its lease runs, and on this host its process is alive (a
        killed holder's claims are taken over at once, not after the lease)."""
        if expires < now:
            return False
        if holder == self.holder:
            return key in self._held  # (a release whose write never ran, its loop gone: free)
        if host != self._host or pid == self._pid:
            return True  # another host (the lease decides), another cache object of this process
        return pid_alive(pid)

    def claimable(self, keys: Iterable[str]) -> bool:
        """Whether any of ``keys`` has a reply now or is no longer claimed by a live holder: time for
        a waiter to :meth:`claim` again. Reads only."""
        keys = list(keys)
        with self._lock:
            if self._rows_for_keys("SELECT key FROM replies WHERE key IN ({})", keys, locked=True):
                return True
            claims = {r[0]: r[1:] for r in self._rows_for_keys(
                "SELECT key, holder, host, pid, expires FROM claims WHERE key IN ({})", keys, locked=True)}
        now = time.time()
        return any(k not in claims or not self._live(k, *claims[k], now=now) for k in keys)

    def release(self, keys: Iterable[str]) -> None:
        """Drop this holder's claims on ``keys`` (a reply put before is written in the same
        transaction, so no reader sees the key neither claimed nor answered)."""
        keys = [k for k in keys if k in self._held]
        if not keys:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._held.difference_update(keys)
            self._releases.extend(keys)
            if loop is not None:
                self._schedule_flush(loop)
                return
        self.flush()

    def _renew(self, loop: asyncio.AbstractEventLoop) -> None:
        """Extend the leases of the claims held, every LEASE_RENEW s while any are (a request may
        wait for its turn, then take minutes with the SDK's retries)."""
        with self._lock:
            if not self._held or loop.is_closed():
                self._renew_loop = None
                return
            self._conn.execute("UPDATE claims SET expires = ? WHERE holder = ?",
                               (time.time() + CLAIM_LEASE, self.holder))
        loop.call_later(LEASE_RENEW, self._renew, loop)

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
            if self._held:  # claims of requests that never ended (a cancelled run): free them now
                self._conn.execute("DELETE FROM claims WHERE holder = ?", (self.holder,))
                self._held.clear()
            self._conn.close()
