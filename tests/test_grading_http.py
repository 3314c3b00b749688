"""The judge against local servers speaking the OpenAI and Anthropic wire protocols, through
the real SDK clients: latency, 429 + Retry-After, 5xx, timeouts, dropped connections,
malformed and partial tables, refusals, the cache, the budget and secrecy of the key."""

import asyncio
import sqlite3
import time

import pytest

from fake_llm_server import Action, FakeLLMServer, grading_table
from grading_helpers import FAKE_KEY, TEXT, items, judge_for
from skillmix_tasks import GenerationScore, Unscored, grader_prompt

PROVIDERS = ["openai", "anthropic"]
FAST_RETRY = {"Retry-After": "0.01"}


@pytest.fixture
def srv():
    with FakeLLMServer() as s:
        yield s


def scores(grades):
    return [g.score for g in grades]


@pytest.mark.parametrize("provider", PROVIDERS + ["openai-compatible"])
def test_full_marks_usage_and_cache(provider, srv, tmp_path, monkeypatch):
    judge = judge_for(provider, srv, tmp_path, monkeypatch)
    pairs = [(it, TEXT) for it in items(4)]
    grades = judge.grade(pairs, progress=False)
    # openai: a text's 3 gradings are the 3 choices of one request (the API's n); elsewhere 3 requests.
    requests = 4 if provider == "openai" else 12
    assert srv.calls == requests and srv.samples == 12 and all(isinstance(s, GenerationScore) for s in scores(grades))
    assert [r["body"].get("n") for r in srv.requests] == [3 if provider == "openai" else None] * requests
    # The length point is the sentence counter's (2 sentences > cap 1 for k=2), not the judge's 1.
    assert grades[0].voted[-1] == 1 and grades[0].score.points[-1] == 0
    st = judge.stats.to_dict()
    assert st["judged"] == 12 and st["calls"] == requests and st["cached"] == 0
    # Usage is the server's, counted once a request (the prompt once for n choices).
    prompt_tokens = sum(max(1, len("\n".join(m["content"] for m in r["body"]["messages"])) // 4)
                        for r in srv.requests)
    assert st["usage"]["input_tokens"] == prompt_tokens
    # A fresh judge on the same cache: no call at all.
    again = judge_for(provider, srv, tmp_path, monkeypatch)
    grades2 = again.grade(pairs, progress=False)
    assert srv.calls == requests and again.stats.to_dict()["cached"] == 12
    assert scores(grades2) == scores(grades)


def test_requests_carry_settings(srv, tmp_path, monkeypatch):
    judge = judge_for("anthropic", srv, tmp_path, monkeypatch, temperature=0.3, max_tokens=77, system_prompt="Be strict.")
    judge.grade([(items(1)[0], TEXT)], progress=False)
    body = srv.requests[0]["body"]
    assert body["temperature"] == 0.3 and body["max_tokens"] == 77 and body["system"] == "Be strict."
    assert body["messages"][0]["content"] == grader_prompt(items(1)[0], TEXT)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_default_grader_call_is_the_references(provider, srv, tmp_path, monkeypatch):
    # A short system prompt and the API's own default temperature (no temperature sent).
    from skillmix_tasks.prompts import GRADER_SYSTEM_PROMPT

    judge_for(provider, srv, tmp_path, monkeypatch).grade([(items(1)[0], TEXT)], progress=False)
    body = srv.requests[0]["body"]
    assert "temperature" not in body
    if provider == "openai":
        assert body["messages"][0] == {"role": "system", "content": GRADER_SYSTEM_PROMPT}
    else:
        assert body["system"] == GRADER_SYSTEM_PROMPT and body["messages"][0]["role"] == "user"
    # system_prompt: "" sends none
    judge_for(provider, srv, tmp_path, monkeypatch, system_prompt="", cache="off").grade([(items(2)[1], TEXT)],
                                                                                         progress=False)
    body = srv.requests[-1]["body"]
    assert "system" not in body and [m["role"] for m in body["messages"]] == ["user"]


def test_concurrency_is_bounded_and_used(tmp_path, monkeypatch):
    with FakeLLMServer(latency=0.2) as srv:
        judge = judge_for("openai", srv, tmp_path, monkeypatch, concurrency=8)
        start = time.monotonic()
        # 17 requests (a text's 3 gradings are one n=3 request): the first alone (it finds out the
        # server's rate limits, see ratelimit.py; this one sends none), then 2 waves of 8.
        judge.grade([(it, TEXT) for it in items(17)], progress=False)
        elapsed = time.monotonic() - start
    assert srv.max_in_flight == 8
    assert elapsed < 17 * 0.2 / 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_with_retry_after_is_retried_and_counted(provider, srv, tmp_path, monkeypatch):
    srv.script.extend([Action(status=429, headers=FAST_RETRY)] * 2)
    judge = judge_for(provider, srv, tmp_path, monkeypatch, concurrency=1)
    grades = judge.grade([(items(1)[0], TEXT)], progress=False)
    assert grades[0].scored
    st = judge.stats.to_dict()
    # openai: one request for the 3 gradings, 429 twice, then answered; anthropic: 3 requests.
    assert st["rate_limited_429"] == 2 and st["retries"] == 2
    assert st["http_attempts"] == (3 if provider == "openai" else 5)


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_retried_then_succeeds(status, srv, tmp_path, monkeypatch):
    srv.script.append(Action(status=status, headers={"retry-after-ms": "5"}))
    judge = judge_for("openai", srv, tmp_path, monkeypatch, concurrency=1)
    assert judge.grade([(items(1)[0], TEXT)], progress=False)[0].scored
    assert judge.stats.to_dict()["server_errors_5xx"] == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_persistent_errors_are_unscored_not_cached_and_retried_next_run(provider, srv, tmp_path, monkeypatch):
    srv.default = Action(status=500, headers={"retry-after-ms": "1"})
    judge = judge_for(provider, srv, tmp_path, monkeypatch, max_retries=1)
    [g] = judge.grade([(items(1)[0], TEXT)], progress=False)
    assert isinstance(g.score, Unscored) and g.score.reason == "http 500"
    assert g.replies == [None, None, None]
    st = judge.stats.to_dict()
    assert st["failed_calls"] == {"http 500": 3} and st["unscored"] == {"http 500": 1}
    assert st["retries"] == (1 if provider == "openai" else 3)  # one request for 3 gradings, or 3
    srv.default = Action()
    again = judge_for(provider, srv, tmp_path, monkeypatch)
    assert again.grade([(items(1)[0], TEXT)], progress=False)[0].scored
    assert again.stats.to_dict()["judged"] == 3


def test_timeout_and_dropped_connections(srv, tmp_path, monkeypatch):
    it = items(1)[0]
    # A hang longer than the timeout, then a drop: both retried by the SDK, then a success.
    srv.script.extend([Action(hang=1.0), Action(drop=True)])
    judge = judge_for("openai", srv, tmp_path, monkeypatch, timeout=0.3, concurrency=1, n_gradings=1)
    [g] = judge.grade([(it, TEXT)], progress=False)
    assert g.scored and judge.stats.to_dict()["retries"] == 2
    # With no retries left they are unscored with their reason.
    srv.script.extend([Action(hang=1.0), Action(drop=True), Action(partial=True)])
    judge = judge_for("openai", srv, tmp_path, monkeypatch, timeout=0.3, concurrency=1, max_retries=0, cache="off",
                      choices_per_call=1)
    [g] = judge.grade([(it, TEXT)], progress=False)
    assert [x.reason for x in g.gradings] == ["timeout", "connection error", "connection error"]
    assert g.score.reason == "too few valid gradings"


@pytest.mark.parametrize("http", ["aiohttp", "httpx"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_dropped_connection_is_a_connection_error_not_a_timeout(provider, http, srv, tmp_path, monkeypatch):
    # The SDKs' aiohttp transport (the default) raises a server's disconnect as ConnectTimeout, so
    # the SDK calls it APITimeoutError; the reason must say what happened.
    srv.script.extend([Action(drop=True), Action(hang=1.0)])
    judge = judge_for(provider, srv, tmp_path, monkeypatch, timeout=0.3, concurrency=1, max_retries=0, cache="off",
                      n_gradings=2, choices_per_call=1, http=http)
    [g] = judge.grade([(items(1)[0], TEXT)], progress=False)
    assert [x.reason for x in g.gradings] == ["connection error", "timeout"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_partial_and_refused_replies(provider, srv, tmp_path, monkeypatch):
    it = items(1, k=3)[0]
    prompt = grader_prompt(it, TEXT)
    table = grading_table(prompt)
    srv.script.extend([
        Action(text="I think it is quite good overall."),  # no table
        Action(text="\n".join(table.splitlines()[:4]), finish_reason="length"),  # table cut short
        Action(refusal=True),
    ])
    judge = judge_for(provider, srv, tmp_path, monkeypatch, concurrency=1)
    [g] = judge.grade([(it, TEXT)], progress=False)
    assert [x.reason for x in g.gradings] == ["no grading table", "missing criteria", "refusal"]
    assert isinstance(g.score, Unscored)
    assert g.replies[2] is None
    # Unparsable replies are cached (parsing is on read); the refusal is not, so it is asked again.
    con = sqlite3.connect(tmp_path / "judge.sqlite")
    assert con.execute("select count(*) from replies").fetchone()[0] == 2
    again = judge_for(provider, srv, tmp_path, monkeypatch)
    [g2] = again.grade([(it, TEXT)], progress=False)
    assert again.stats.to_dict()["calls"] == 1 and g2.gradings[2] == (1, 1, 1, 1, 1, 1)


def test_parser_fix_rescores_from_cache_without_calls(srv, tmp_path, monkeypatch):
    it = items(1)[0]
    srv.default = Action(points=[1, 0, 1, 1, 1])
    judge = judge_for("openai", srv, tmp_path, monkeypatch)
    [g] = judge.grade([(it, TEXT)], progress=False)
    assert g.voted == (1, 0, 1, 1, 1)
    calls = srv.calls
    import skillmix_tasks.scoring as scoring  # the one scoring path the judge reads replies with
    monkeypatch.setattr(scoring, "parse_grading", lambda reply, criteria: (1,) * len(criteria))  # "the fix"
    [g2] = judge_for("openai", srv, tmp_path, monkeypatch).grade([(it, TEXT)], progress=False)
    assert srv.calls == calls and g2.voted == (1, 1, 1, 1, 1)


def test_works_inside_a_running_event_loop(srv, tmp_path, monkeypatch):
    judge = judge_for("openai", srv, tmp_path, monkeypatch)

    async def notebook_cell():
        sync = judge.grade([(items(1)[0], TEXT)], progress=False)
        via_async = await judge.agrade([(items(2)[1], TEXT)], progress=False)
        return sync + via_async

    grades = asyncio.run(notebook_cell())
    assert all(g.scored for g in grades) and srv.samples == 6


COST_CAP = 3.0


@pytest.mark.parametrize("choices_per_call", [1, 3])
def test_budget_stops_calls_and_marks_the_rest(choices_per_call, srv, tmp_path, monkeypatch):
    # The fake server bills ~700 tokens a call: at $1000/Mtok ~$0.7 a call, so $3 allows about 4
    # one-grading calls; with n=3 the prompt is billed once for 3 gradings, so more fit.
    judge = judge_for("openai", srv, tmp_path, monkeypatch, concurrency=1, max_cost=COST_CAP,
                      prices={"input": 1000.0, "output": 1000.0}, choices_per_call=choices_per_call)
    grades = judge.grade([(it, TEXT) for it in items(8)], progress=False)
    st = judge.stats.to_dict()
    assert 0 < st["judged"] < 24 and st["judged"] + st["budget_skipped"] == 24 and srv.samples == st["judged"]
    assert st["cost"] <= 3.0
    assert "budget" in st["unscored"]
    assert any(g.score.reason == "budget" for g in grades if not g.scored)
    # The same money buys more gradings as n=3 (the prompt billed once a request): 15 vs 7 here.
    assert st["judged"] >= (12 if choices_per_call == 3 else 1) and st["judged"] <= (24 if choices_per_call == 3 else 8)


def test_server_that_rejects_or_ignores_n_falls_back_to_one_sample_a_request(srv, tmp_path, monkeypatch, caplog):
    pairs = [(it, TEXT) for it in items(4)]
    srv.n_mode = "reject"  # llama.cpp-style: 400 "Only one completion choice is allowed"
    judge = judge_for("openai-compatible", srv, tmp_path, monkeypatch, choices_per_call=3, concurrency=1)
    with caplog.at_level("WARNING"):
        grades = judge.grade(pairs, progress=False)
    assert all(g.scored for g in grades) and srv.samples == 12 and srv.calls == 12
    assert [r["body"].get("n") for r in srv.requests] == [3] + [None] * 12  # refused once, then never asked
    assert judge.stats.to_dict()["failed_calls"] == {} and "refused n=3" in caplog.text
    srv.requests.clear()
    srv.n_mode = "ignore"  # answers one choice whatever n says
    judge = judge_for("openai-compatible", srv, tmp_path, monkeypatch, choices_per_call=3, concurrency=1,
                      cache=str(tmp_path / "other.sqlite"))
    grades = judge.grade(pairs, progress=False)
    assert all(g.scored for g in grades) and srv.samples == 24
    assert [r["body"].get("n") for r in srv.requests] == [3] + [None] * 11  # the 2 missing asked singly


def test_n_asks_only_for_the_missing_gradings_and_caches_each_under_its_index(srv, tmp_path, monkeypatch):
    pairs = [(it, TEXT) for it in items(4)]
    judge_for("openai", srv, tmp_path, monkeypatch, n_gradings=1).grade(pairs, progress=False)
    assert [r["body"].get("n") for r in srv.requests] == [None] * 4
    srv.requests.clear()
    judge = judge_for("openai", srv, tmp_path, monkeypatch)  # 3 gradings: index 0 is cached
    grades = judge.grade(pairs, progress=False)
    assert [r["body"].get("n") for r in srv.requests] == [2] * 4 and all(g.scored for g in grades)
    assert [g.from_cache for g in grades] == [[True, False, False]] * 4
    # Anthropic has no n: one request a grading, whatever choices_per_call says.
    srv.requests.clear()
    judge = judge_for("anthropic", srv, tmp_path, monkeypatch, choices_per_call=3)
    judge.grade(pairs, progress=False)
    assert len(srv.requests) == 12 and all("n" not in r["body"] for r in srv.requests)


def test_dry_run_estimates_without_calls(srv, tmp_path, monkeypatch):
    judge = judge_for("openai", srv, tmp_path, monkeypatch)
    pairs = [(it, TEXT) for it in items(4)]
    est = judge.estimate(pairs)
    assert srv.requests == [] and (est["calls"], est["replies"]) == (4, 12) and est["cost_est"] > 0
    judge.grade(pairs[:2], progress=False)
    assert (judge.estimate(pairs)["calls"], judge.estimate(pairs)["replies"]) == (2, 6)
    single = judge_for("openai", srv, tmp_path, monkeypatch, choices_per_call=1).estimate(pairs)
    assert (single["calls"], single["replies"]) == (6, 6) and single["cost_est"] > est["cost_est"] / 2


@pytest.mark.parametrize("provider", PROVIDERS + ["openai-compatible"])
@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_refused_key_model_or_url_stops_the_calls_and_every_grading_says_why(provider, status, srv, tmp_path,
                                                                                 monkeypatch):
    srv.default = Action(status=status, error_message="refused: check the key, the model and the URL")
    judge = judge_for(provider, srv, tmp_path, monkeypatch, max_retries=0, concurrency=1)
    grades = judge.grade([(it, TEXT) for it in items(4)], progress=False)
    assert len(srv.requests) == 1  # the first refusal; the other requests would get the same answer
    reason = "auth error" if status == 401 else f"http {status}"
    gradings = [x for g in grades for x in g.gradings]
    assert len(gradings) == 12 and all(isinstance(x, Unscored) and x.reason == reason for x in gradings)
    assert all(not g.scored and g.score.reason == reason for g in grades)
    assert "not sent after an earlier refusal: " in gradings[-1].detail and "refused: check" in gradings[-1].detail
    s = judge.stats.to_dict()
    assert s["calls"] == 1 and s["failed_calls"] == {reason: 12} and s["not_sent"] in (9, 11)  # 3 or 1 in the first
    # A later run with the key fixed calls again: refusals are never cached.
    srv.default = Action()
    again = judge_for(provider, srv, tmp_path, monkeypatch, max_retries=0, concurrency=1)
    assert all(g.scored for g in again.grade([(it, TEXT) for it in items(4)], progress=False))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_api_key_never_leaks(provider, srv, tmp_path, monkeypatch, caplog):
    import json
    import logging

    caplog.set_level(logging.DEBUG)
    srv.script.append(Action())
    srv.default = Action(status=401, error_message=f"Incorrect API key provided: {FAKE_KEY}")
    judge = judge_for(provider, srv, tmp_path, monkeypatch, max_retries=0)
    [g] = judge.grade([(items(1)[0], TEXT)], progress=False)
    assert srv.requests, "the key was sent to the server"
    assert {x.reason for x in g.gradings if isinstance(x, Unscored)} == {"auth error"}
    texts = [json.dumps(g.to_dict()), json.dumps(judge.stats.to_dict()), str(g.gradings), caplog.text,
             repr(judge), (tmp_path / "judge.sqlite").read_bytes().decode("latin-1")]
    for t in texts:
        assert FAKE_KEY not in t


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_blank_answer_is_a_scored_zero_and_never_sent(provider, srv, tmp_path, monkeypatch):
    # The fake judge gives full marks to anything: a blank answer sent to it would score 1.
    judge = judge_for(provider, srv, tmp_path, monkeypatch)
    its = items(3)
    pairs = [(its[0], ""), (its[1], "  \n\t "), (its[2], TEXT)]
    assert judge.estimate(pairs)["gradings"] == 3
    grades = judge.grade(pairs, progress=False)
    assert srv.samples == 3 and all(r["body"]["messages"][-1]["content"] == grader_prompt(its[2], TEXT) for r in srv.requests)
    for g in grades[:2]:
        assert isinstance(g.score, GenerationScore) and g.score.reason == "empty answer"
        assert (g.score.full_marks, g.score.all_skills, g.score.skills_fraction) == (0, 0, 0)
        assert g.replies == [] and g.to_dict()["status"] == "scored" and g.to_dict()["reason"] == "empty answer"
    st = judge.stats.to_dict()
    assert st["texts"] == 3 and st["scored"] == 3 and st["gradings"] == 3
