"""skillmix-datagen end to end against local OpenAI- and Anthropic-protocol servers playing
teacher and judge: only full-mark conversations are kept, duplicates dropped, the leakage guard
and the audit catch held-out content, a killed run resumes without repeating a finished call,
and the output loads with ``datasets``."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fake_llm_server import Action, FakeLLMServer, rubric_of
from grading_helpers import FAKE_KEY

from skillmix.datagen.cli import main
from skillmix.datagen.leakage import LeakageError, check_leakage
from skillmix.datagen.pool import default_splits, eval_combinations, sample_pool
from skillmix_tasks.catalog import default_catalog
from skillmix_tasks.jsonl import iter_objects
from skillmix_tasks.prompts import PROMPT_VERSION
from skillmix_tasks.sampling import Item

CATALOG = default_catalog()
TRAIN_TOPICS = sorted(t.name for t in CATALOG.topics_in("train"))
# The scripted judge: full marks for a third of the train topics, one failed criterion for a
# third, an unparsable reply for the rest.
FULL = set(TRAIN_TOPICS[0::3])
PARTIAL = set(TRAIN_TOPICS[1::3])
_JUDGE_TOPIC = re.compile(r"in the context of (.+?) that shows all")
_TEACHER_TOPIC = re.compile(r"set in the context of (.+?)\. The text")


def final_answer(topic: str) -> str:
    return f"Talk of {topic} filled the room."


def handler(request: dict) -> Action:
    messages = [m for m in request["body"]["messages"] if m["role"] != "system"]  # the grader has one
    first = messages[0]["content"]
    if first.startswith("You are grading"):
        topic = _JUDGE_TOPIC.search(first).group(1)
        n = len(rubric_of(first))
        if topic in FULL:
            return Action(points=[1] * n)
        if topic in PARTIAL:
            return Action(points=[0] + [1] * (n - 1))
        return Action(text="I cannot grade this.")
    topic = _TEACHER_TOPIC.search(first).group(1)
    if len(messages) == 1:
        return Action(text=f"Answer: A first loose draft about {topic}, far too long.\nExplanation: a draft.")
    return Action(text=f"Answer: {final_answer(topic)}\nExplanation: it shows each skill.")


@pytest.fixture
def srv():
    with FakeLLMServer() as s:
        s.handler = handler
        yield s


@pytest.fixture
def env(tmp_path, monkeypatch, srv):
    for var in ("SKILLMIX_JUDGE", "SKILLMIX_CACHE", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", srv.openai_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.anthropic_url)
    return tmp_path


def args(out: Path, *extra: str, teacher="openai:gpt-4o-mini", judge="openai:gpt-4o") -> list[str]:
    return ["--teacher", teacher, "--judge", judge, "--out", str(out), "--cache", str(out.parent / "cache.sqlite"),
            "--timeout", "5", "--max-retries", "1", "--no-progress", *extra]


def audit_main(argv: list[str]) -> int:
    return main(["audit", *argv])


def read_rows(path: Path) -> list[dict]:
    return [row for _, row in iter_objects(path)]  # not splitlines(): texts may hold U+2028


def pool(k: int, n: int, seed: int = 1234, exclude=()) -> list[Item]:
    return sample_pool(k, n, skills_split=default_splits(k)[0], topics_split="train", seed=seed, exclude=exclude)


def cli_pool(k: int, n: int) -> list[Item]:
    """The pool skillmix-datagen draws by default: the benchmark's own eval items left out."""
    return pool(k, n, exclude=eval_combinations(k))


# ----------------------------------------------------------------------------- the pool
def test_pool_follows_the_paper_recipe_and_is_a_seeded_prefix():
    heldout_skills = {s.name for s in CATALOG.skills_in("heldout")}
    k1, k2 = pool(1, 4000), pool(2, 300)
    assert [i.id for i in k2[:3]] == ["d-k2-00000", "d-k2-00001", "d-k2-00002"]
    assert {i.topic for i in k1 + k2} <= set(TRAIN_TOPICS)
    assert any(i.skills[0] in heldout_skills for i in k1)  # k=1 spans all 101 skills
    assert not any(s in heldout_skills for i in k2 for s in i.skills)
    assert len({(frozenset(i.skills), i.topic) for i in k1}) == 4000
    assert pool(2, 50) == k2[:50] and pool(2, 50, seed=7) != k2[:50]
    with pytest.raises(ValueError, match="larger than the 5050 distinct"):
        pool(1, 5051)


def _eval_keys(k):
    from skillmix_tasks.sampling import sample_items

    return {(frozenset(i.skills), i.topic) for split in ("train", "all") for i in sample_items(split, k)}


# -- the benchmark's own eval items stay out of the pools unless asked for (issue 14, defect 8)
def test_default_plan_leaves_the_eval_items_out_and_caps_the_k1_pool():
    from skillmix.datagen.cli import build_parser, plan_from_args

    plan = plan_from_args(build_parser().parse_args(["--teacher", "openai:x", "--k", "1,2"]))
    assert plan.exclude_eval is True
    k1 = plan.items(1)
    # 5050 k=1 combinations, 144 of them benchmark items: the paper's 5000 cannot all be drawn.
    assert len(k1) == 5050 - 144 and plan.pools[1] == 4906
    assert not {(frozenset(i.skills), i.topic) for i in k1} & _eval_keys(1)
    k2 = {(frozenset(i.skills), i.topic) for i in plan.items(2)}
    assert len(k2) == 10000 and not k2 & _eval_keys(2)
    included = plan_from_args(build_parser().parse_args(["--teacher", "openai:x", "--k", "1,2",
                                                         "--include-eval-items"]))
    assert included.exclude_eval is False and included.pools == {1: 5000, 2: 10000}
    assert len({(frozenset(i.skills), i.topic) for i in included.items(1)} & _eval_keys(1)) > 100
    # a pool asked for explicitly is never shrunk: too large is an error that names the way out
    with pytest.raises(ValueError, match="--include-eval-items"):
        plan_from_args(build_parser().parse_args(["--teacher", "openai:x", "--k", "1", "--pool", "5000"])).items(1)


def test_leakage_guard():
    sewing = next(t for t in TRAIN_TOPICS)
    heldout_topic = CATALOG.topics_in("heldout")[0].name
    heldout_skill = CATALOG.skills_in("heldout")[0].name
    assert check_leakage([Item("a", "d", 1, (heldout_skill,), sewing)]) == 0  # the paper's k=1 recipe
    for planted in (Item("b", "d", 2, ("metaphor", heldout_skill), sewing), Item("c", "d", 1, ("metaphor",), heldout_topic)):
        with pytest.raises(LeakageError, match="--allow-heldout"):
            check_leakage([planted])
        assert check_leakage([planted], allow=True) == 1


def test_row_grade_is_the_judges_grade_with_unscored_gradings_apart(tmp_path):
    """The row's ``grades`` is TextGrade.to_dict() less what the row holds itself, and loads with datasets
    when one of the gradings is unscored (Arrow: one type per column)."""
    import datasets

    from skillmix.datagen.conversation import Conversation
    from skillmix.datagen.pool import Plan
    from skillmix.datagen.row import make_row
    from skillmix.grading.judge import TextGrade
    from skillmix_tasks.scoring import GenerationScore, Unscored

    item = Item("d-k2-00001", "datagen", 2, ("metaphor", "simile"), TRAIN_TOPICS[0])
    conv = Conversation(item, 0, [{"role": r, "content": r} for r in ("user", "assistant") * 2], answer="x")
    plan = Plan([2], {2: 1}, {2: ("train", "train")})
    rows = []
    for second in ((1, 1, 1, 1, None), Unscored("no grading table", "no table")):
        grade = TextGrade(item, "x", GenerationScore((1,) * 5, 1.0, 1.0, 1.0), ["a", "b", "c"],
                          [(1, 1, 1, 1, None), second, (1,) * 5], (1, 1, 1, 1, None), [True, False, False], "j:x")
        rows.append(make_row(conv, grade, plan, "t:x"))
        judge = grade.to_dict()
        assert {k: v for k, v in rows[-1]["grades"].items() if k not in ("gradings", "unscored_gradings")} == {
            k: judge[k] for k in ("criteria", "status", "points", "full_marks", "all_skills", "skills_fraction",
                                  "voted", "replies")}
    assert rows[1]["grades"]["gradings"] == [[1, 1, 1, 1, None], None, [1] * 5]
    assert rows[1]["grades"]["unscored_gradings"] == [None, {"unscored": "no grading table", "detail": "no table"}, None]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds[1]["grades"]["unscored_gradings"][1]["unscored"] == "no grading table"


def test_the_run_form_needs_a_teacher_and_audit_is_a_sub_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--k", "1"])
    assert e.value.code == 2 and "--teacher" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["audit"])
    assert e.value.code == 2 and "skillmix-datagen audit: error" in capsys.readouterr().err


# ----------------------------------------------------------------------------- end to end
def expected_kept(k: int, n: int) -> set[str]:
    return {i.id for i in cli_pool(k, n) if i.topic in FULL}


def test_openai_teacher_and_judge_keep_exactly_the_full_mark_conversations(env, srv, tmp_path, capsys):
    out = env / "data"
    assert main(args(out, "--k", "1,2", "--pool", "15,12", "--dry-run")) == 0
    est = json.loads(capsys.readouterr().out)
    assert srv.requests == [] and est["per_k"]["1"]["teacher_calls"] == 30
    # The openai judge asks for a text's 3 gradings in one request (n=3): 12 requests, 36 gradings.
    assert (est["per_k"]["2"]["judge_calls"], est["per_k"]["2"]["judge_replies"]) == (12, 36)
    assert est["total_cost_est"] > 0

    assert main(args(out, "--k", "1,2", "--pool", "15,12")) == 0
    summary = json.loads(capsys.readouterr().out)
    # Two teacher turns and three gradings (one n=3 judge request) per conversation.
    assert (srv.calls, srv.samples) == (27 * 3, 27 * 5)
    for k, n in ((1, 15), (2, 12)):
        rows = read_rows(out / f"d_skillmix_k{k}.jsonl")
        assert {r["id"] for r in rows} == expected_kept(k, n) and rows
        stats = summary["per_k"][str(k)]
        items = cli_pool(k, n)
        assert stats["pool"] == n and stats["kept"] == len(rows) == stats["full_marks"]
        assert stats["judged"] == sum(i.topic in FULL | PARTIAL for i in items)
        assert stats["unscored_by_reason"] == {"judge no grading table": sum(
            i.topic not in FULL | PARTIAL for i in items)}
        for r in rows:
            assert [m["role"] for m in r["messages"]] == ["user", "assistant", "user", "assistant"]
            assert "first loose draft" in r["messages"][1]["content"]
            assert r["answer"] == final_answer(r["topic"]) and r["grades"]["full_marks"] == 1.0
            assert r["grades"]["points"] == [1] * (k + 3) and len(r["grades"]["gradings"]) == 3
            assert r["grades"]["status"] == "scored" and r["grades"]["unscored_gradings"] == [None] * 3
            assert (r["teacher"], r["judge"], r["prompt_version"]) == ("openai:gpt-4o-mini", "openai:gpt-4o", PROMPT_VERSION)
            assert r["k"] == k and r["heldout_allowed"] is False
    card = (out / "README.md").read_text()
    assert "openai:gpt-4o-mini" in card and PROMPT_VERSION in card and "held-out content: none" in card
    assert "benchmark evaluation items left out of the pools: yes" in card
    assert summary["eval_items_excluded"] is True and all(
        not {(frozenset(r["skills"]), r["topic"])} & _eval_keys(r["k"]) for r in read_rows(out / "d_skillmix_k1.jsonl"))
    assert "judge no grading table" in card and "config_name: k2" in card

    import datasets

    ds = datasets.load_dataset("json", data_files=str(out / "d_skillmix_k2.jsonl"), split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert len(ds) == len(expected_kept(2, 12)) and ds[0]["messages"][3]["role"] == "assistant"
    both = datasets.load_dataset(str(out), "k1", split="train", cache_dir=str(tmp_path / "hf"))
    assert len(both) == len(expected_kept(1, 15))
    assert audit_main([str(out / "d_skillmix_k1.jsonl"), str(out / "d_skillmix_k2.jsonl")]) == 0

    # Everything is cached now: a re-run makes no call and writes the same rows.
    before = srv.calls
    assert main(args(out, "--k", "1,2", "--pool", "15,12")) == 0
    capsys.readouterr()
    assert srv.calls == before
    assert main(args(out, "--k", "1,2", "--pool", "15,12", "--dry-run")) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["per_k"]["2"]["teacher_calls"] == 0 and est["per_k"]["2"]["judge_calls"] == 0

    # Another k into the same folder: the card and the configs cover every file there.
    assert main(args(out, "--k", "3", "--pool", "3", "--include-eval-items")) == 0
    capsys.readouterr()
    card = (out / "README.md").read_text()
    assert all(f"config_name: k{k}" in card for k in (1, 2, 3)) and "k=1, 2: from an earlier run" in card
    assert "benchmark evaluation items were allowed (--include-eval-items) at k=3: 0 pool item(s)" in card
    assert all(r["eval_items_excluded"] is False for r in read_rows(out / "d_skillmix_k3.jsonl"))


def test_anthropic_teacher_and_judge_drop_duplicates_and_respect_the_budget(env, srv, capsys):
    out = env / "data"
    spec = dict(teacher="anthropic:claude-haiku-4-5", judge="anthropic:claude-sonnet-4-6")
    assert main(args(out, "--k", "3", "--pool", "9", "--generations", "2", **spec)) == 0
    summary = json.loads(capsys.readouterr().out)["per_k"]["3"]
    rows = read_rows(out / "d_skillmix_k3.jsonl")
    kept = expected_kept(3, 9)
    # The scripted teacher writes the same answer twice: the second copy of a kept one is dropped.
    assert {r["item_id"] for r in rows} == kept and all(r["generation"] == 0 for r in rows)
    assert summary["full_marks"] == 2 * len(kept) and summary["duplicates_dropped"] == len(kept)
    assert any(r["path"].endswith("/messages") for r in srv.requests)
    assert rows[0]["teacher"] == "anthropic:claude-haiku-4-5"

    # A budget that covers a few calls: the rest are not made and are counted as unscored. No
    # conversation reaches the judge, so the run made no data: exit 1 with the reason, nothing written.
    before = srv.calls
    assert main(args(env / "b", "--k", "2", "--pool", "10", "--max-cost", "0.004", "--cache", "off", **spec)) == 1
    captured = capsys.readouterr()
    stats = json.loads(captured.out)
    made = srv.calls - before
    assert 0 < made < 50 and stats["this_run"]["teacher"]["budget_skipped"] > 0
    assert any("budget" in r for r in stats["per_k"]["2"]["unscored_by_reason"])
    assert stats["per_k"]["2"]["judged"] == 0 and "teacher budget" in captured.err and not (env / "b").exists()


def test_guard_refuses_heldout_pools_and_the_audit_catches_planted_content(env, srv, capsys):
    out = env / "data"
    assert main(args(out, "--k", "2", "--pool", "4", "--topics", "heldout")) == 2
    assert "held-out topic" in capsys.readouterr().err
    assert main(args(out, "--k", "2", "--pool", "4", "--skills", "all")) == 2
    assert "held-out skill" in capsys.readouterr().err and srv.requests == []

    assert main(args(out, "--k", "2", "--pool", "6")) == 0
    capsys.readouterr()
    path = out / "d_skillmix_k2.jsonl"
    assert audit_main([str(path)]) == 0
    capsys.readouterr()
    rows = read_rows(path)
    heldout_skill, heldout_topic = "modus ponens", "Beekeeping"
    assert CATALOG.skill(heldout_skill).split == "heldout" and CATALOG.topic(heldout_topic).split == "heldout"
    by_meta = dict(rows[0], id="planted-meta", skills=[rows[0]["skills"][0], heldout_skill], topic=heldout_topic)
    by_text = json.loads(json.dumps(rows[0]))
    by_text["id"] = "planted-text"
    by_text["messages"][3]["content"] = "Answer: Like Beekeeping, it follows by Modus-Ponens.\nExplanation: x"
    planted = env / "planted.jsonl"
    planted.write_text("".join(json.dumps(r) + "\n" for r in rows + [by_meta, by_text]))
    assert audit_main([str(planted), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    found = {(f["id"], f["kind"], f["name"], f["where"]) for f in report["findings"]}
    assert found == {
        ("planted-meta", "held-out topic", heldout_topic, "metadata"),
        ("planted-meta", "held-out skill", heldout_skill, "metadata"),
        ("planted-text", "held-out topic", heldout_topic, "text: messages[3]"),
        ("planted-text", "held-out skill", heldout_skill, "text: messages[3]"),
    }
    assert audit_main([str(planted), "--names", "warn"]) == 1  # the metadata hits still fail
    # The console script does the same.
    r = subprocess.run([sys.executable, "-m", "skillmix.datagen", "audit", str(planted)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "HELD-OUT CONTENT FOUND" in r.stdout and "planted-text" in r.stderr

    # Asked explicitly, held-out content is generated, and the card and the audit both say so.
    allowed = env / "allowed"
    assert main(args(allowed, "--k", "2", "--pool", "6", "--topics", "all", "--skills", "all", "--allow-heldout")) == 0
    capsys.readouterr()
    assert "HELD-OUT CONTENT WAS ALLOWED" in (allowed / "README.md").read_text()
    rows = read_rows(allowed / "d_skillmix_k2.jsonl")
    assert all(r["heldout_allowed"] for r in rows)


def test_killed_run_resumes_without_repeating_finished_calls(env, tmp_path):
    out, cache = env / "data", env / "kill.sqlite"
    n = 12  # 12 conversations: 24 teacher calls + 36 gradings
    with FakeLLMServer(latency=0.1) as srv:
        srv.handler = handler
        cmd = [sys.executable, "-m", "skillmix.datagen", "--teacher", f"openai-compatible:t@{srv.openai_url}",
               "--judge", f"openai-compatible:j@{srv.openai_url}", "--k", "2", "--pool", str(n), "--out", str(out),
               "--cache", str(cache), "--concurrency", "2", "--judge-concurrency", "3", "--no-progress"]
        srv.kill_after(cmd, calls=25)
        first = srv.calls
        done = sqlite3.connect(cache).execute("select count(*) from replies").fetchone()[0]
        assert 25 <= first < 5 * n and not (out / "d_skillmix_k2.jsonl").exists()
        assert first - 5 <= done <= first  # only the calls in flight were lost
        received_before = len(srv.requests)
        subprocess.run(cmd, env=dict(os.environ), check=True, stdout=subprocess.DEVNULL, timeout=120)
        # Every call the first run had finished is read from the cache; only the rest is asked.
        assert srv.calls - first == len(srv.requests) - received_before == 5 * n - done
    run = json.loads((out / "datagen_summary.json").read_text())["this_run"]
    assert run["teacher"]["cached"] + run["judge"]["cached"] == done
    assert {r["id"] for r in read_rows(out / "d_skillmix_k2.jsonl")} == expected_kept(2, n)


def test_hf_teacher_with_the_fake_judge(env, srv, tiny_model, capsys):
    """A local checkpoint as the teacher (the judge still speaks HTTP); a re-run generates nothing."""
    out = env / "data"
    a = args(out, "--k", "1", "--pool", "4", "--max-tokens", "12", "--temperature", "0", "--batch-size", "4",
             teacher=f"hf:{tiny_model}")
    assert main(a) == 0
    stats = json.loads(capsys.readouterr().out)
    k1, run = stats["per_k"]["1"], stats["this_run"]
    assert k1["pool"] == 4 and run["teacher"]["calls"] == 8 and k1["teacher_tokens"]["output_tokens"] > 0
    assert k1["generated"] + sum(n for r, n in k1["unscored_by_reason"].items() if r.startswith("teacher")) == 4
    assert main(a) == 0
    assert json.loads(capsys.readouterr().out)["this_run"]["teacher"]["calls"] == 0


def test_batch_mode_rounds_each_resumable_with_no_wait(env, srv, capsys):
    """--batch --no-wait: turn 1, turn 2 and the gradings are rounds of batches; each run goes one round on."""
    out, n = env / "batch", 9
    srv.batch.polls = 1  # each batch answers "in progress" once, so every run leaves one round pending
    cmd = args(out, "--k", "2", "--pool", str(n), "--prices", '{"gpt-4o-mini": {"input": 1000, "output": 2000}}',
               "--batch", "--no-wait", "--poll-interval", "0.01", judge="anthropic:claude-sonnet-4-6")
    assert main(cmd + ["--dry-run"]) == 0  # online and batch cost side by side
    est = json.loads(capsys.readouterr().out)
    assert est["mode"] == "batch" and est["per_k"]["2"]["teacher_calls"] == 2 * n
    assert est["total_batch_cost_est"] == pytest.approx(est["total_cost_est"] / 2, abs=2e-4) and srv.batch.lines == 0
    lines = []
    for _ in range(3):
        assert main(cmd) == 0
        assert "batch_pending" in json.loads(capsys.readouterr().out) and not (out / "d_skillmix_k2.jsonl").exists()
        lines.append(srv.batch.lines)
    # Turn 1 (9 lines), turn 2 (9), then 3 gradings each on the anthropic judge (27): one round a run.
    assert lines == [9, 18, 45] and srv.calls == 0
    assert main(cmd) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in read_rows(out / "d_skillmix_k2.jsonl")} == expected_kept(2, n)
    assert srv.batch.lines == 45 and srv.calls == 0  # nothing submitted twice, nothing online
    run = summary["this_run"]
    assert summary["per_k"]["2"]["pool"] == n and run["judge"]["batched"] == 27 and run["judge"]["cached"] == 0
    k2 = summary["per_k"]["2"]
    u = k2["teacher_tokens"]  # the whole dataset's teacher tokens, at the batch price: half the given one
    assert u["input_tokens"] > 0 and k2["teacher_cost"] == pytest.approx(
        (u["input_tokens"] * 500 + u["output_tokens"] * 1000) / 1e6, abs=1e-4)
