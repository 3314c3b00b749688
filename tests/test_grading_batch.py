"""Batch mode against local servers speaking the OpenAI Files + Batches and Anthropic Message
Batches wire protocols, through the real SDKs: submit, poll through in-progress to completed,
partial errors, expiry, chunking, a SIGKILL while waiting then a resume that submits nothing,
--no-wait, batch prices, and batch and online replies in one cache."""

import json
import os
import sqlite3
import sys

import pytest

from fake_llm_server import Action, FakeLLMServer
from grading_helpers import FAKE_KEY, TEXT, items, judge_for
from skillmix.grading.batch import BatchPending, OpenAIBatches
from skillmix.harness.regrade import main
from skillmix.grading.cost import DEFAULT_PRICES
from skillmix_tasks import GenerationScore

PROVIDERS = ["openai", "anthropic"]
FAST = {"batch": True, "batch_poll_interval": 0.01}


@pytest.fixture
def srv():
    with FakeLLMServer() as s:
        yield s


def lines_per_text(provider):
    return 1 if provider == "openai" else 3  # openai keeps n=3 in a line; anthropic has no n


@pytest.mark.parametrize("provider", PROVIDERS)
def test_submit_poll_complete_and_cache(provider, srv, tmp_path, monkeypatch):
    srv.batch.polls = 3
    judge = judge_for(provider, srv, tmp_path, monkeypatch, **FAST)
    pairs = [(it, TEXT) for it in items(4)]
    grades = judge.grade(pairs, progress=False)
    assert all(isinstance(g.score, GenerationScore) for g in grades)
    assert srv.calls == 0 and srv.batch.lines == 4 * lines_per_text(provider) and len(srv.batch.created) == 1
    done = "completed" if provider == "openai" else "ended"
    assert "in_progress" in srv.batch.statuses and srv.batch.statuses[-1] == done
    assert srv.batch.statuses.index("in_progress") < srv.batch.statuses.index(done)
    st = judge.stats.to_dict()
    assert (st["batches"], st["batched"], st["judged"], st["calls"]) == (1, 12, 12, 4 * lines_per_text(provider))
    # The same replies as online: a fresh online judge on the same cache makes no request at all.
    online = judge_for(provider, srv, tmp_path, monkeypatch)
    assert [g.score for g in online.grade(pairs, progress=False)] == [g.score for g in grades]
    assert srv.calls == 0 and online.stats.to_dict()["cached"] == 12 and srv.batch.lines == 4 * lines_per_text(provider)
    # The collected batch is remembered as collected, its lines forgotten.
    with sqlite3.connect(tmp_path / "judge.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM batches WHERE collected IS NOT NULL").fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM batch_lines").fetchone()[0] == 0


def test_openai_lines_are_chat_completions_with_n(srv, tmp_path, monkeypatch):
    judge = judge_for("openai", srv, tmp_path, monkeypatch, temperature=0.3, max_tokens=77, **FAST)
    judge.grade([(items(1)[0], TEXT)], progress=False)
    [fid] = [f for f, data in srv.batch.files.items() if b'"method"' in data]
    [line] = [json.loads(x) for x in srv.batch.files[fid].decode().splitlines()]
    assert (line["method"], line["url"]) == ("POST", "/v1/chat/completions")
    assert line["body"]["n"] == 3 and line["body"]["temperature"] == 0.3 and line["body"]["max_tokens"] == 77
    assert line["body"]["model"] == "gpt-4o" and len(line["custom_id"]) == 64


@pytest.mark.parametrize("provider", PROVIDERS)
def test_partial_errors_retryable_retried_others_unscored(provider, srv, tmp_path, monkeypatch):
    # Line 1 is a bad request (not retried), line 2 a 500 (retried in a new batch, then fine).
    srv.script.extend([Action(status=400, error_message="bad request"), Action(status=500)])
    judge = judge_for(provider, srv, tmp_path, monkeypatch, n_gradings=1, choices_per_call=1, **FAST)
    grades = judge.grade([(it, TEXT) for it in items(3)], progress=False)
    bad = "http 400" if provider == "openai" else "batch invalid_request_error"
    assert [g.score.reason if not g.scored else "ok" for g in grades] == [bad, "ok", "ok"]
    assert "bad request" in grades[0].score.detail
    assert len(srv.batch.created) == 2 and srv.batch.lines == 3 + 1
    st = judge.stats.to_dict()
    assert st["failed_calls"] == {bad: 1} and st["batch_retried"] == 1 and st["unscored"] == {bad: 1}
    # Failures are not cached: a re-run asks for that one again.
    again = judge_for(provider, srv, tmp_path, monkeypatch, n_gradings=1, choices_per_call=1, **FAST)
    assert all(g.scored for g in again.grade([(it, TEXT) for it in items(3)], progress=False))
    assert srv.batch.lines == 5


@pytest.mark.parametrize("provider", PROVIDERS)
def test_expired_lines_retried_then_unscored(provider, srv, tmp_path, monkeypatch):
    srv.batch.expire_after = 2  # every batch runs its first 2 lines only
    judge = judge_for(provider, srv, tmp_path, monkeypatch, n_gradings=1, choices_per_call=1, batch_retries=1, **FAST)
    grades = judge.grade([(it, TEXT) for it in items(5)], progress=False)
    # 5 lines: 2 done, 3 expire; a new batch for the 3: 2 done, 1 expires; no retries left.
    assert srv.batch.lines == 5 + 3 and len(srv.batch.created) == 2
    assert sum(g.scored for g in grades) == 4
    [lost] = [g for g in grades if not g.scored]
    assert lost.score.reason == "batch expired" and judge.stats.to_dict()["failed_calls"] == {"batch expired": 1}


def test_an_unreadable_output_line_costs_that_line_only(srv, tmp_path, monkeypatch):
    srv.batch.garble_line = 1
    judge = judge_for("openai", srv, tmp_path, monkeypatch, **FAST)
    grades = judge.grade([(it, TEXT) for it in items(3)], progress=False)
    # The garbled line is missing from the results: asked for again in a new batch, then fine.
    assert all(g.scored for g in grades) and len(srv.batch.created) == 2 and srv.batch.lines == 3 + 1
    assert judge.stats.to_dict()["batch_retried"] == 3  # its 3 gradings (one n=3 line)


def test_requests_chunked_within_the_batch_limit(srv, tmp_path, monkeypatch):
    monkeypatch.setattr(OpenAIBatches, "max_requests", 2)
    judge = judge_for("openai", srv, tmp_path, monkeypatch, **FAST)
    assert all(g.scored for g in judge.grade([(it, TEXT) for it in items(5)], progress=False))
    assert len(srv.batch.created) == 3 and srv.batch.lines == 5
    monkeypatch.setattr(OpenAIBatches, "max_requests", 50_000)
    monkeypatch.setattr(OpenAIBatches, "max_bytes", 1)  # each line alone is over: one line a batch
    judge = judge_for("openai", srv, tmp_path, monkeypatch, cache=str(tmp_path / "other.sqlite"), **FAST)
    assert all(g.scored for g in judge.grade([(it, TEXT) for it in items(2)], progress=False))
    assert len(srv.batch.created) == 3 + 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_batch_and_online_replies_share_one_cache(provider, srv, tmp_path, monkeypatch):
    pairs = [(it, TEXT) for it in items(4)]
    online = judge_for(provider, srv, tmp_path, monkeypatch)
    online.grade(pairs[:2], progress=False)
    online_requests = srv.calls
    judge = judge_for(provider, srv, tmp_path, monkeypatch, **FAST)
    grades = judge.grade(pairs, progress=False)
    assert all(g.scored for g in grades) and [g.from_cache for g in grades[:2]] == [[True] * 3] * 2
    assert srv.batch.lines == 2 * lines_per_text(provider) and srv.calls == online_requests  # only the uncached 2
    again = judge_for(provider, srv, tmp_path, monkeypatch)
    again.grade(pairs, progress=False)
    assert srv.calls == online_requests and again.stats.to_dict()["cached"] == 12


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cost_at_batch_prices_and_dry_run_side_by_side(provider, srv, tmp_path, monkeypatch):
    judge = judge_for(provider, srv, tmp_path, monkeypatch, **FAST)
    pairs = [(it, TEXT) for it in items(3)]
    est = judge.estimate(pairs)
    assert est["batch_cost_est"] == pytest.approx(est["cost_est"] / 2, abs=1e-4)
    judge.grade(pairs, progress=False)
    st = judge.stats.to_dict()
    p = DEFAULT_PRICES["gpt-4o" if provider == "openai" else "claude-sonnet-4-6"]
    u = st["usage"]
    batch_cost = (u["input_tokens"] * p["batch_input"] + u["output_tokens"] * p["batch_output"]) / 1e6
    assert st["cost"] == pytest.approx(batch_cost, rel=1e-3) and p["batch_input"] == p["input"] / 2


def test_budget_caps_what_is_submitted(srv, tmp_path, monkeypatch):
    judge = judge_for("anthropic", srv, tmp_path, monkeypatch, max_cost=0.004, **FAST)
    grades = judge.grade([(it, TEXT) for it in items(6)], progress=False)
    st = judge.stats.to_dict()
    assert st["budget_skipped"] > 0 and srv.batch.lines == 18 - st["budget_skipped"]
    assert st["cost"] <= 0.004 and any(not g.scored and g.score.reason == "budget" for g in grades)


def test_batch_needs_a_provider_with_a_batch_api_and_the_cache(srv, tmp_path, monkeypatch):
    from skillmix.grading import JudgeConfigError

    with pytest.raises(JudgeConfigError, match="needs the reply cache"):
        judge_for("openai", srv, tmp_path, monkeypatch, cache="off", **FAST)
    tiny = tmp_path / "ckpt"
    tiny.mkdir()
    (tiny / "config.json").write_text("{}")
    from skillmix.grading import resolve_judge

    with pytest.raises(JudgeConfigError, match="no Batch API"):
        resolve_judge(f"hf:{tiny}", {"batch": True})
    with pytest.raises(JudgeConfigError, match="batch must be true or false"):
        judge_for("openai", srv, tmp_path, monkeypatch, batch="sometimes")


# ----------------------------------------------------------------------------- the CLI
@pytest.fixture
def env(monkeypatch, tmp_path, srv):
    monkeypatch.delenv("SKILLMIX_JUDGE", raising=False)
    monkeypatch.setenv("SKILLMIX_CACHE", str(tmp_path / "cache.sqlite"))
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", srv.openai_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.anthropic_url)
    path = tmp_path / "texts.jsonl"
    with open(path, "w") as f:
        for it in items(4):
            f.write(json.dumps({"id": it.id, "skills": list(it.skills), "topic": it.topic, "text": TEXT}) + "\n")
    return tmp_path


def grade_cmd(env, *extra, judge="openai:gpt-4o"):
    return ["--judge", judge, "--input", str(env / "texts.jsonl"), "--output", str(env / "g.jsonl"),
            "--batch", "--poll-interval", "0.01", "--no-progress", "--json", *extra]


def test_cli_dry_run_shows_online_and_batch_cost(env, srv, capsys):
    assert main(grade_cmd(env, "--dry-run")) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["mode"] == "batch" and est["total_calls"] == 4
    assert est["total_cost_est"] > 0 and est["total_batch_cost_est"] == pytest.approx(est["total_cost_est"] / 2, abs=1e-4)
    assert srv.batch.lines == 0 and srv.requests == []


def test_cli_no_wait_submits_and_a_later_run_collects(env, srv, capsys):
    srv.batch.hold = True
    assert main(grade_cmd(env, "--no-wait")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["batch_pending"][0]["batches"] == srv.batch.created and not (env / "g.jsonl").exists()
    assert main(grade_cmd(env, "--no-wait")) == 0  # still running: nothing submitted again
    assert srv.batch.lines == 4 and len(srv.batch.created) == 1
    capsys.readouterr()
    assert main(grade_cmd(env, "--dry-run")) == 0  # what is in a submitted batch costs no new call
    [est] = json.loads(capsys.readouterr().out)["judges"]
    assert (est["calls"], est["in_submitted_batches"], est["cached"]) == (0, 12, 0)
    srv.batch.hold = False
    assert main(grade_cmd(env)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["judges"][0]["texts"]["scored"] == 4 and srv.batch.lines == 4
    assert main(grade_cmd(env, "--no-wait")) == 0  # all cached: graded, nothing pending
    assert "judges" in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cli_killed_while_waiting_resumes_polling_the_same_batches(provider, env, srv):
    judge = "openai:gpt-4o" if provider == "openai" else "anthropic:claude-sonnet-4-6"
    lines = 4 * lines_per_text(provider)
    srv.batch.hold = True  # the batch stays in progress until the run is killed
    cmd = [sys.executable, "-m", "skillmix.harness.regrade", *grade_cmd(env, judge=judge)]
    srv.kill_after(cmd, until=lambda: len(srv.batch.statuses) >= 2)  # submitted, recorded, polled twice
    assert srv.batch.lines == lines and not (env / "g.jsonl").exists()
    with sqlite3.connect(env / "cache.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM batches WHERE collected IS NULL").fetchone()[0] == 1
    srv.batch.hold = False
    assert main(grade_cmd(env, judge=judge)) == 0
    assert srv.batch.lines == lines and len(srv.batch.created) == 1  # 0 requests submitted again
    rows = [json.loads(x) for x in (env / "g.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["status"] == "scored" for r in rows)


def test_no_wait_without_batch_is_an_error(env, capsys):
    assert main(["--judge", "openai:gpt-4o", "--input", str(env / "texts.jsonl"), "--output", str(env / "g.jsonl"),
                 "--no-wait"]) == 2
    assert "--no-wait needs --batch" in capsys.readouterr().err


def test_batch_pending_names_the_batches():
    e = BatchPending(["b1", "b2"], 7)
    assert "7 request(s) in 2 batch(es) (b1, b2)" in str(e) and "again" in str(e)
