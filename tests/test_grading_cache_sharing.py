"""Several processes on one reply cache share the work: a sample one of them is asking for is not
sent by another (a claim per cache key, waited on), the first reply stored is the one everybody
uses, so every output can be rebuilt from the cache alone; a killed holder blocks nobody."""

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from fake_llm_server import Action, FakeLLMServer, grading_table
from skillmix.grading.cache import ReplyCache

TESTS = Path(__file__).resolve().parent
N_TEXTS, N_GRADINGS = 40, 3

# One grading run: build the judge and import the SDK first, then wait for the go file, so that
# both processes send their first requests at the same moment.
WORKER = """
import json, os, sys, time
sys.path.insert(0, {tests!r})
import openai  # noqa: F401
from grading_helpers import TEXT, items
from skillmix.grading import resolve_judge
spec, cache, out, go = sys.argv[1:5]
judge = resolve_judge(spec, {{"cache": cache, "concurrency": 4, "n_gradings": {n_gradings}, "timeout": 5,
                             "max_retries": 0}})
pairs = [(it, f"{{TEXT}} Draft {{i}}.") for i, it in enumerate(items({n_texts}))]
open(out + ".ready", "w").close()
while not os.path.exists(go):
    time.sleep(0.002)
grades = judge.grade(pairs, progress=False)
with open(out, "w") as f:
    json.dump({{"grades": [{{k: g.to_dict()[k] for k in ("status", "points", "gradings", "replies")}} for g in grades],
               "stats": judge.stats.to_dict()}}, f)
""".format(tests=str(TESTS), n_texts=N_TEXTS, n_gradings=N_GRADINGS)


def randomised(srv: FakeLLMServer) -> None:
    """Each request gets its own random grading (and a unique line): a request sent twice would
    give two different replies."""
    counter = iter(range(10**9))

    def handler(request):
        prompt = "\n".join(str(m.get("content", "")) for m in request["body"].get("messages", []))
        points = [random.randint(0, 1) for _ in range(12)]
        return Action(text=f"{grading_table(prompt, points)}\nRequest {next(counter)}.")

    srv.handler = handler


def prompts(srv: FakeLLMServer) -> Counter:
    return Counter(json.dumps(r["body"]["messages"]) for r in srv.requests if r["path"].endswith("/chat/completions"))


def start(srv, cache, out, go, tmp_path) -> subprocess.Popen:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    spec = f"openai-compatible:m@{srv.openai_url}"  # one request a grading: 120 for one process
    return subprocess.Popen([sys.executable, str(script), spec, str(cache), str(out), str(go)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run_together(srv, cache, tmp_path, n: int, tag: str) -> list[dict]:
    go = tmp_path / f"go-{tag}"
    outs = [tmp_path / f"{tag}-{i}.json" for i in range(n)]
    procs = [start(srv, cache, out, go, tmp_path) for out in outs]
    deadline = time.monotonic() + 30
    while not all(Path(f"{out}.ready").exists() or p.poll() is not None for out, p in zip(outs, procs)):
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.01)
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    return [json.loads(out.read_text()) for out in outs]


@pytest.fixture
def env(monkeypatch):
    for var in ("SKILLMIX_JUDGE", "SKILLMIX_CACHE", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)


def test_two_processes_share_the_requests_and_agree(env, tmp_path):
    cache = tmp_path / "shared.sqlite"
    one_process = N_TEXTS * N_GRADINGS
    with FakeLLMServer(latency=0.08) as srv:
        randomised(srv)
        a, b = run_together(srv, cache, tmp_path, 2, "pair")
        sent = prompts(srv)
        # Each (prompt, grading) asked for about once, not once per process.
        assert len(srv.requests) <= 1.15 * one_process, (len(srv.requests), one_process)
        assert len(sent) == N_TEXTS and min(sent.values()) >= N_GRADINGS
        calls = [a["stats"]["calls"], b["stats"]["calls"]]
        assert sum(calls) == len(srv.requests) and min(calls) > 0  # both did part of the work
        # Both processes hold the same replies, hence the same scores.
        assert a["grades"] == b["grades"]
        assert all(g["status"] == "scored" for g in a["grades"])
        assert a["stats"]["judged"] + a["stats"]["cached"] == one_process

        # A third run with every request failing rebuilds the same output from the cache alone.
        before = len(srv.requests)
        srv.handler = lambda request: Action(status=500)
        [c] = run_together(srv, cache, tmp_path, 1, "rebuild")
        assert len(srv.requests) == before and c["stats"]["cached"] == one_process
        assert c["grades"] == a["grades"]
    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # all released
        replies = dict(db.execute("SELECT key, reply FROM replies").fetchall())
    assert len(replies) == one_process
    assert sorted(r for g in a["grades"] for r in g["replies"]) == sorted(replies.values())


def test_a_killed_holders_claims_do_not_block_a_later_run(env, tmp_path):
    cache = tmp_path / "killed.sqlite"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    go = tmp_path / "go"
    go.touch()
    with FakeLLMServer() as srv:
        # Slow replies: the first run is killed with its claims taken and its requests in flight.
        srv.default = Action(delay=3)
        cmd = [sys.executable, str(script), f"openai-compatible:m@{srv.openai_url}", str(cache),
               str(tmp_path / "killed.json"), str(go)]
        srv.kill_after(cmd, timeout=30, until=lambda: srv.in_flight >= 4)
        with sqlite3.connect(cache) as db:
            held = db.execute("SELECT COUNT(*), MIN(expires) FROM claims").fetchone()
        assert held[0] >= 4 and held[1] > time.time() + 60  # live leases, left by a dead process
        srv.default = Action()
        t0 = time.monotonic()
        [later] = run_together(srv, cache, tmp_path, 1, "later")
        assert time.monotonic() - t0 < 12  # taken over at once, not after the lease
    assert all(g["status"] == "scored" for g in later["grades"])
    assert later["stats"]["judged"] == N_TEXTS * N_GRADINGS


def test_claims_in_one_file(tmp_path):
    """The claim protocol itself, two holders on one file (as two processes would be)."""
    path = tmp_path / "c.sqlite"
    a, b = ReplyCache(path), ReplyCache(path)
    stored, mine, busy = a.claim(["k1", "k2"])
    assert (stored, mine, busy) == ({}, ["k1", "k2"], [])
    stored, mine, busy = b.claim(["k1", "k2", "k3"])
    assert mine == ["k3"] and busy == ["k1", "k2"] and not b.claimable(["k1", "k2"])
    # A reply stored: the waiter may look again, and finds it on its next claim.
    a.put("k1", namespace="n", spec="s", reply="first", finish_reason="stop", input_tokens=1, output_tokens=1)
    a.release(["k1"])
    assert b.claimable(["k1"]) and b.claim(["k1"])[0]["k1"].reply == "first"
    # The first reply wins; a later writer hears of the stored one.
    lost = []
    b.put("k1", namespace="n", spec="s", reply="second", finish_reason="stop", input_tokens=1, output_tokens=1,
          on_conflict=lost.append)
    assert [x.reply for x in lost] == ["first"] and b.get("k1").reply == "first"
    # Released without a reply (the call failed): free for the waiter.
    a.release(["k2"])
    assert b.claimable(["k2"]) and b.claim(["k2"])[1] == ["k2"]
    # A holder that died on this host: its claims are free at once, lease or not.
    with sqlite3.connect(path) as db:
        db.execute("UPDATE claims SET pid = ?, holder = 'gone' WHERE key = 'k3'", (_dead_pid(),))
    assert a.claim(["k3"])[1] == ["k3"]
    # An expired lease (a holder on another host that vanished): free too.
    with sqlite3.connect(path) as db:
        db.execute("UPDATE claims SET host = 'elsewhere', holder = 'gone', expires = ? WHERE key = 'k3'",
                   (time.time() - 1,))
    assert b.claim(["k3"])[1] == ["k3"]
    b.close()  # frees what it still holds
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT key FROM claims WHERE holder = ?", (b.holder,)).fetchall() == []
    a.close()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_lost_race_uses_the_stored_reply_in_an_event_loop(tmp_path):
    import asyncio

    cache = ReplyCache(tmp_path / "r.sqlite")
    cache.put("k", namespace="n", spec="s", reply="first", finish_reason="stop", input_tokens=1, output_tokens=1)

    async def go():
        lost = []
        cache.put("k", namespace="n", spec="s", reply="late", finish_reason="stop", input_tokens=1, output_tokens=1,
                  on_conflict=lost.append)
        await cache.written()
        return lost

    assert [x.reply for x in asyncio.run(go())] == ["first"]
    assert cache.get("k").reply == "first" and len(cache) == 1
    cache.close()


def test_single_process_runs_leave_no_claims(tmp_path, monkeypatch):
    from grading_helpers import TEXT, items, judge_for

    with FakeLLMServer() as srv:
        judge = judge_for("openai-compatible", srv, tmp_path, monkeypatch, n_gradings=3)
        grades = judge.grade([(it, TEXT) for it in items(5)], progress=False)
        assert all(g.scored for g in grades) and srv.calls == 15
    with sqlite3.connect(tmp_path / "judge.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


def test_the_same_text_twice_in_one_run_is_asked_for_once(tmp_path, monkeypatch):
    from grading_helpers import TEXT, items, judge_for

    it = items(1)[0]
    with FakeLLMServer(latency=0.05) as srv:
        randomised(srv)
        judge = judge_for("openai-compatible", srv, tmp_path, monkeypatch, n_gradings=3)
        first, second = judge.grade([(it, TEXT), (it, TEXT)], progress=False)
        assert srv.calls == 3 and first.replies == second.replies and first.score == second.score
        assert judge.stats.to_dict()["cached"] == 3  # the second copy's, read once the first's were in


def test_a_cancelled_run_gives_its_claims_back(tmp_path, monkeypatch):
    import asyncio

    from grading_helpers import TEXT, items, judge_for

    pairs = [(it, TEXT) for it in items(4)]
    with FakeLLMServer(latency=0.5) as srv:
        judge = judge_for("openai-compatible", srv, tmp_path, monkeypatch, n_gradings=3)

        async def cut_short():
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(judge.agrade(pairs, progress=False), 0.2)

        asyncio.run(cut_short())
        with sqlite3.connect(tmp_path / "judge.sqlite") as db:
            assert db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0
        t0 = time.monotonic()
        assert all(g.scored for g in judge.grade(pairs, progress=False))  # the same judge, nothing to wait for
        assert time.monotonic() - t0 < 5
