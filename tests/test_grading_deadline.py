"""A request's total deadline: httpx's timeouts are per read, so a server trickling its reply one
byte at a time held each request for as long as the body took. Each attempt is now cut at
``timeout`` whatever the server streams, and a call, retries included, at ``backend.deadline``;
a cut is an ordinary failure of that grading ("timeout", unscored, never a grade)."""

import time

import anthropic  # noqa: F401  imported here, so that no timing below counts the SDKs' import (seconds)
import openai  # noqa: F401
import pytest

from fake_llm_server import Action, FakeLLMServer
from grading_helpers import TEXT, items, judge_for
from skillmix.grading import backends


@pytest.fixture
def srv():
    with FakeLLMServer() as s:
        yield s


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_trickled_reply_is_cut_at_the_deadline(provider, http, srv, tmp_path, monkeypatch):
    # ~300 bytes at one every 0.1 s: ~30 s for the body, though no read waits more than 0.1 s.
    srv.default = Action(trickle=0.1)
    judge = judge_for(provider, srv, tmp_path, monkeypatch, timeout=1, max_retries=0, n_gradings=1, http=http)
    start = time.monotonic()
    [g] = judge.grade([(items(1)[0], TEXT)], progress=False)
    wall = time.monotonic() - start
    assert wall < 4, wall
    assert not g.scored and g.score.reason == "timeout" and g.gradings[0].reason == "timeout"
    assert g.replies == [None] and judge.cache is not None and len(judge.cache) == 0  # nothing cached
    st = judge.stats.to_dict()
    assert st["failed_calls"] == {"timeout": 1} and st["http_attempts"] == 1


def test_each_retry_is_cut_too_and_the_total_is_bounded(srv, tmp_path, monkeypatch):
    srv.default = Action(trickle=0.1)
    judge = judge_for("openai", srv, tmp_path, monkeypatch, timeout=0.5, max_retries=2, n_gradings=1)
    assert judge.backend.deadline == 3 * 0.5 + 2 * backends.RETRY_WAIT_CAP + 1
    start = time.monotonic()
    [g] = judge.grade([(items(1)[0], TEXT)], progress=False)
    wall = time.monotonic() - start
    # 3 attempts of 0.5 s and the SDK's backoff between them (0.5 s, 1 s, less jitter).
    assert wall < 5, wall
    assert g.gradings[0].reason == "timeout" and judge.stats.to_dict()["http_attempts"] == 3


def test_a_long_retry_after_is_cut_by_the_call_deadline(srv, tmp_path, monkeypatch):
    # The Anthropic SDK waits as long as a Retry-After says; the call's deadline still holds.
    monkeypatch.setattr(backends, "RETRY_WAIT_CAP", 0.5)
    srv.default = Action(status=429, headers={"Retry-After": "30"})
    judge = judge_for("anthropic", srv, tmp_path, monkeypatch, timeout=0.5, max_retries=1, n_gradings=1)
    start = time.monotonic()
    [g] = judge.grade([(items(1)[0], TEXT)], progress=False)
    assert time.monotonic() - start < 4
    assert g.gradings[0].reason == "timeout" and "no reply within 2.5 s" in g.gradings[0].detail
    assert judge.stats.to_dict()["rate_limited_429"] == 1  # cut while waiting to retry


def test_a_reply_within_the_deadline_is_untouched(srv, tmp_path, monkeypatch):
    srv.default = Action(trickle=0.001)  # ~0.3 s for the body, inside a 2 s deadline
    judge = judge_for("openai", srv, tmp_path, monkeypatch, timeout=2, max_retries=0, n_gradings=1)
    [g] = judge.grade([(items(1)[0], TEXT)], progress=False)
    assert g.scored and judge.stats.to_dict()["judged"] == 1
