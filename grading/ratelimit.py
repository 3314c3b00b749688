"""Pacing online calls by the providers' rate-limit headers, so a run holds near its
tokens-per-minute limit instead of sending until it is refused (and storming 429s).

Every response carries how much of the limit is left and when it refills: OpenAI
``x-ratelimit-{limit,remaining,reset}-{tokens,requests}`` (resets as durations, "6m0s", "20ms"),
Anthropic ``anthropic-ratelimit-{tokens,requests}-{limit,remaining,reset}`` (resets as RFC 3339
times). The providers refill continuously, so the refill rate is (limit - remaining) / reset.

:class:`RateLimiter` keeps the newest such reading (from the response of the latest-sent request
that has one) and, before each request, estimates what is left now: the reading, plus the refill
since that request was sent, minus what the requests sent after it will take. A request that does
not fit waits for the refill. Before the first reading only one request is in flight (a probe).
The estimate of a request is what OpenAI counts against the limit when it is admitted: prompt
tokens (4 characters a token) plus ``max_tokens`` for every sample asked for. The SDK still
retries any 429 with its Retry-After; this only keeps them rare.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping

# The limiter's number for the request being sent; the response hook reads it (same task).
current_request: contextvars.ContextVar[int | None] = contextvars.ContextVar("skillmix_request", default=None)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_reset(text: str | None) -> float | None:
    """Seconds until a limit refills: "1s", "6m0s", "20ms", "1h2m3.5s", "0.5", or an RFC 3339 time."""
    if not text:
        return None
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        return sum(float(n) * scale[u] for n, u in parts)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class Reading:
    """One limit (tokens or requests) as a response reported it."""

    limit: float
    remaining: float
    rate: float | None  # refill per second; None when the bucket was full (nothing to infer from)


def read_limits(headers: Mapping[str, str]) -> dict[str, Reading]:
    """{"tokens": Reading, "requests": Reading} from OpenAI or Anthropic rate-limit headers."""
    h = {k.lower(): v for k, v in headers.items()}
    out = {}
    for kind in ("tokens", "requests"):
        for limit, remaining, reset in ((f"x-ratelimit-limit-{kind}", f"x-ratelimit-remaining-{kind}",
                                         f"x-ratelimit-reset-{kind}"),
                                        (f"anthropic-ratelimit-{kind}-limit", f"anthropic-ratelimit-{kind}-remaining",
                                         f"anthropic-ratelimit-{kind}-reset")):
            try:
                lim, rem = float(h[limit]), float(h[remaining])
            except (KeyError, ValueError):
                continue
            seconds = parse_reset(h.get(reset))
            rate = (lim - rem) / seconds if seconds and lim > rem else None
            out[kind] = Reading(lim, max(0.0, rem), rate)
            break
    return out


class RateLimiter:
    """One per backend (an API key and model share a limit). Not thread-safe: one event loop."""

    def __init__(self, margin: float = 0.02):
        self.margin = margin  # of the limit, kept free for estimation error
        self._seq = 0
        self._sent: deque[tuple[int, float, float]] = deque()  # (seq, monotonic send time, tokens)
        self._basis: dict[str, tuple[int, float, Reading]] = {}  # kind -> (seq, sent at, reading)
        self._rates: dict[str, float] = {}
        self._paced: bool | None = None  # None: not known yet whether the server sends limits
        self._probe: int | None = None  # the request in flight while that is found out
        self.waited = 0.0  # seconds requests spent waiting for the refill, for stats

    def observe(self, seq: int | None, headers: Mapping[str, str]) -> None:
        """A response's headers, for the request numbered ``seq``."""
        if seq is None:
            return
        readings = read_limits(headers)
        if not readings:
            if self._paced is None and seq == self._probe:
                self._paced, self._probe = False, None  # a server without limits (vLLM, a local one)
            return
        self._paced = True
        self._probe = None
        sent_at = next((t for s, t, _ in self._sent if s == seq), time.monotonic())
        for kind, r in readings.items():
            if r.rate:
                self._rates[kind] = r.rate
            old = self._basis.get(kind)
            if old is None or seq >= old[0]:
                self._basis[kind] = (seq, sent_at, r)
        oldest = min(b[0] for b in self._basis.values())
        while self._sent and self._sent[0][0] <= oldest:
            self._sent.popleft()

    def done(self, seq: int) -> None:
        """The request ended; a probe that failed without a response lets the next one probe."""
        if seq == self._probe:
            self._probe = None

    def _wait_for(self, kind: str, need: float, now: float) -> float:
        """Seconds until ``need`` of ``kind`` is estimated free (0: now)."""
        basis = self._basis.get(kind)
        if basis is None:
            return 0.0
        seq, sent_at, r = basis
        rate = self._rates.get(kind) or r.limit / 60.0  # per minute, the providers' unit
        ahead = sum((tokens if kind == "tokens" else 1.0) for s, _, tokens in self._sent if s > seq)
        free = min(r.limit, r.remaining + rate * (now - sent_at)) - ahead - self.margin * r.limit
        need = min(need, r.limit * (1 - self.margin))  # a request larger than the whole limit still goes, alone
        return 0.0 if free >= need else (need - free) / rate

    async def acquire(self, tokens: float) -> int:
        """Wait until a request of ``tokens`` fits; returns its number (set it in ``current_request``)."""
        while True:
            if self._paced is None:
                wait = 0.0 if self._probe is None else 0.01  # one request at a time until one answers
            elif self._paced:
                now = time.monotonic()
                wait = max(self._wait_for("tokens", tokens, now), self._wait_for("requests", 1.0, now))
            else:
                wait = 0.0
            if wait <= 0:
                break
            wait = min(max(wait, 0.002), 1.0)
            self.waited += wait
            await asyncio.sleep(wait)
        self._seq += 1
        if self._paced is None:
            self._probe = self._seq
        if self._paced is not False:
            self._sent.append((self._seq, time.monotonic(), float(tokens)))
        return self._seq
