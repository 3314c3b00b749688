"""Reading the providers' rate-limit headers and pacing by them (the throughput under a real
limit is measured in bench/ratelimit_bench.py; here the arithmetic and the wiring)."""

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest

from fake_llm_server import Action, FakeLLMServer
from grading_helpers import TEXT, items, judge_for
from skillmix.grading.ratelimit import RateLimiter, parse_reset, read_limits


def test_reset_formats():
    assert parse_reset("1s") == 1.0 and parse_reset("6m0s") == 360.0 and parse_reset("20ms") == pytest.approx(0.02)
    assert parse_reset("1h2m3.5s") == pytest.approx(3723.5) and parse_reset("0.5") == 0.5
    soon = (datetime.now(timezone.utc) + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    assert 28 < parse_reset(soon) <= 30
    assert parse_reset("soon") is None and parse_reset(None) is None


def test_openai_and_anthropic_headers():
    r = read_limits({"x-ratelimit-limit-tokens": "60000", "x-ratelimit-remaining-tokens": "30000",
                     "x-ratelimit-reset-tokens": "30s", "x-ratelimit-limit-requests": "500",
                     "x-ratelimit-remaining-requests": "499", "x-ratelimit-reset-requests": "120ms"})
    assert (r["tokens"].limit, r["tokens"].remaining, r["tokens"].rate) == (60000, 30000, 1000)
    assert r["requests"].rate == pytest.approx(1 / 0.12)
    reset = (datetime.now(timezone.utc) + timedelta(seconds=10)).isoformat()
    a = read_limits({"Anthropic-RateLimit-Tokens-Limit": "80000", "anthropic-ratelimit-tokens-remaining": "79000",
                     "anthropic-ratelimit-tokens-reset": reset})
    assert a["tokens"].limit == 80000 and 90 < a["tokens"].rate <= 101
    assert read_limits({"content-type": "application/json"}) == {}


def test_limiter_waits_for_the_refill_counting_requests_in_flight():
    async def go():
        lim = RateLimiter(margin=0)
        s1 = await lim.acquire(100)  # the probe: no reading yet
        lim.observe(s1, {"x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "250",
                         "x-ratelimit-reset-tokens": "0.75s"})  # refills 1000/s
        t = time.monotonic()
        await lim.acquire(200)  # fits in the 250 left
        await lim.acquire(200)  # 50 left and 200 in flight: waits ~0.15 s for the refill
        return time.monotonic() - t

    assert 0.1 < asyncio.run(go()) < 1.0


def test_a_server_without_limits_is_not_paced():
    async def go():
        lim = RateLimiter()
        s1 = await lim.acquire(10)
        lim.observe(s1, {})
        await asyncio.wait_for(asyncio.gather(*(lim.acquire(10 ** 9) for _ in range(50))), 1.0)

    asyncio.run(go())


@pytest.fixture
def srv():
    with FakeLLMServer() as s:
        yield s


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_judge_reads_the_headers_through_the_sdk(provider, srv, tmp_path, monkeypatch):
    prefix = "x-ratelimit-" if provider == "openai" else "anthropic-ratelimit-"
    names = (("limit-tokens", "remaining-tokens", "reset-tokens") if provider == "openai" else
             ("tokens-limit", "tokens-remaining", "tokens-reset"))
    reset = "2s" if provider == "openai" else (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat()
    srv.default = Action(headers=dict(zip((prefix + n for n in names), ("100000", "50000", reset))))
    judge = judge_for(provider, srv, tmp_path, monkeypatch)
    assert all(g.scored for g in judge.grade([(it, TEXT) for it in items(2)], progress=False))
    limiter = judge.backend.limiter
    assert limiter._paced is True and limiter._basis["tokens"][2].limit == 100000
    assert judge_for(provider, srv, tmp_path, monkeypatch, pace_by_rate_limits=False).backend.limiter is None
