"""skillmix-pipeline: the bundled tiny config runs datagen -> train D(1), D(1,2), D(1,2,3) -> eval
(both protocols, through the real lm_eval CLI) -> leaderboard, offline, against a
local OpenAI-protocol server playing teacher and judge. A run killed mid-way resumes without
repeating finished work; a finished run re-runs as all skips. Config errors name the field; the
paper config's dry run prints its judge calls and cost and calls nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_llm_server import Action, FakeLLMServer

from skillmix.pipeline.config import PipelineConfig, PipelineConfigError
from skillmix.pipeline.stages import plan

_TEACHER_TOPIC = re.compile(r"set in the context of (.+?)\. The text")


def handler(request: dict) -> Action | None:
    """Teacher turns get a short on-topic answer (distinct per topic, so datagen keeps them);
    grader prompts fall through to the default full-marks table."""
    first = request["body"]["messages"][0]["content"]
    m = _TEACHER_TOPIC.search(first)
    if not m:
        return None
    return Action(text=f"Answer: Talk of {m.group(1)} filled the room.\nExplanation: it shows each skill.")


@pytest.fixture
def server():
    with FakeLLMServer() as srv:
        srv.handler = handler
        yield srv


def _env(tiny_model: Path, server: FakeLLMServer) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLMIX_")}
    env.update(SKILLMIX_TINY_MODEL=str(tiny_model), SKILLMIX_TINY_SERVER=server.openai_url,
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def _pipeline(out: Path, env: dict, *extra: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skillmix.pipeline", "--config", "tiny", f"out={out}", *extra],
                          env=env, capture_output=True, text=True, timeout=1200, **kw)


def _teacher_calls(server: FakeLLMServer) -> int:
    return sum(1 for r in server.requests if _TEACHER_TOPIC.search(r["body"]["messages"][0]["content"]))


def test_tiny_pipeline_runs_end_to_end_resumes_after_a_kill_and_skips_when_done(tmp_path, tiny_model, server):
    out = tmp_path / "run"
    env = _env(tiny_model, server)
    # 1. Start the pipeline and kill it (the whole process group) as soon as the first eval unit finished.
    proc = subprocess.Popen([sys.executable, "-m", "skillmix.pipeline", "--config", "tiny", f"out={out}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    stamps = out / ".pipeline"
    deadline = time.time() + 900
    while time.time() < deadline and proc.poll() is None and not list(stamps.glob("eval-*.json")):
        time.sleep(0.2)
    assert proc.poll() is None, f"pipeline ended before it could be killed:\n{proc.stdout.read()[-3000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "leaderboard" / "index.html").exists()
    done_before = {p.name: p.read_text() for p in stamps.glob("*.json")}
    assert {"datagen.json", "train-tiny-d1.json", "train-tiny-d12.json", "train-tiny-d123.json"} <= set(done_before)
    teacher_calls = _teacher_calls(server)
    assert teacher_calls > 0

    # 2. The same command resumes: finished units are skipped, the rest run.
    second = _pipeline(out, env)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert "[skip] datagen" in second.stdout and second.stdout.count("[skip] train") == 3
    assert _teacher_calls(server) == teacher_calls  # no teacher call repeated
    for name, text in done_before.items():
        assert (stamps / name).read_text() == text  # the finished units were not run again

    # The data: three D(k) files of kept, full-mark conversations.
    for k in (1, 2, 3):
        rows = [json.loads(line) for line in (out / "data" / f"d_skillmix_k{k}.jsonl").read_text().splitlines()]
        assert rows and all(r["k"] == k and [m["role"] for m in r["messages"]].count("assistant") == 2 for r in rows)
    # Three checkpoints, each trained on its own mixture.
    for mix, ks in (("d1", [1]), ("d12", [1, 2]), ("d123", [1, 2, 3])):
        final = out / "train" / f"tiny-{mix}" / "final"
        prov = json.loads((final / "skillmix_provenance.json").read_text())
        assert prov["complete"] and sorted(Path(d["path"]).name for d in prov["data"]["files"]) == \
            [f"d_skillmix_k{k}.jsonl" for k in ks]
    # Every (model, protocol, task) has an lm-eval results file with the judged metrics.
    results = sorted((out / "eval").glob("*/*/*/**/results_*.json"))
    assert len(results) == 4 * 2 * 1, [str(r) for r in results]  # 4 models x 2 protocols x k=3
    protocols = set()
    for f in results:
        data = json.loads(f.read_text())
        (task,) = [t for t in data["results"] if t.startswith("skillmix_")]
        row = data["results"][task]
        assert 0.0 <= row["full_marks,judged"] <= 1.0 and row["unscored,judged"] == 0
        protocols.add(data["configs"][task]["metadata"]["protocol"])
    assert protocols == {"single-turn", "two-turn"}
    # The leaderboard: a row per (model, protocol), the fine-tuned ones with deltas against the base.
    board = (out / "leaderboard" / "leaderboard.md").read_text()
    for label in ("tiny-d1/final", "tiny-d12/final", "tiny-d123/final"):
        assert label in board
    csv_rows = (out / "leaderboard" / "leaderboard.csv").read_text().splitlines()
    assert len([r for r in csv_rows[1:] if r]) == 8

    # 3. Done: a third run skips every unit and calls nobody.
    calls = len(server.requests)
    third = _pipeline(out, env)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "[run]  datagen" not in third.stdout and "[run]  train" not in third.stdout
    assert "[run]  eval" not in third.stdout and third.stdout.count("[skip] eval") == 8
    assert len(server.requests) == calls


def test_a_changed_command_reruns_its_unit_only(tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLMIX_TINY_MODEL", str(tmp_path / "m"))
    monkeypatch.setenv("SKILLMIX_TINY_SERVER", "http://127.0.0.1:9/v1")
    config = PipelineConfig.load("tiny", [f"out={tmp_path}"])
    unit = next(u for u in plan(config) if u.id == "train-tiny-d12")
    final = tmp_path / "train" / "tiny-d12" / "final"
    final.mkdir(parents=True)
    (final / "config.json").write_text("{}")
    stamp = unit.stamp_path(tmp_path)
    stamp.parent.mkdir(parents=True)
    stamp.write_text(json.dumps({"key": unit.key()}))
    assert unit.status(tmp_path) == "done"
    changed = PipelineConfig.load("tiny", [f"out={tmp_path}", "train.overrides=[max_steps=3]"])
    assert next(u for u in plan(changed) if u.id == "train-tiny-d12").status(tmp_path) == "changed"
    (final / "config.json").unlink()  # outputs gone: run again
    assert unit.status(tmp_path) == "todo"


def test_batch_key_sends_datagen_and_the_eval_judge_through_batch_apis(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKILLMIX_TINY_MODEL", str(tmp_path / "m"))
    monkeypatch.setenv("SKILLMIX_TINY_SERVER", "http://127.0.0.1:9/v1")
    online, batch = (plan(PipelineConfig.load("tiny", [f"out={tmp_path}", *extra])) for extra in ([], ["batch=true"]))
    datagen = [next(u for u in units if u.stage == "datagen") for units in (online, batch)]
    assert "--batch" not in datagen[0].cmd and "--batch" in datagen[1].cmd
    evals = [next(u for u in units if u.stage == "eval") for units in (online, batch)]
    metadata = [json.loads(u.cmd[u.cmd.index("--metadata") + 1]) for u in evals]
    assert "batch" not in metadata[0]["judge_config"] and metadata[1]["judge_config"]["batch"] is True
    # Its dry run: batch mode (which needs a cache) estimates without creating the pipeline's cache.
    from skillmix.pipeline.cli import main as pipeline_main

    monkeypatch.setenv("OPENAI_API_KEY", "sk-dry")
    config = tmp_path / "batch.yaml"
    config.write_text(json.dumps({"out": str(tmp_path / "run"), "batch": True, "stages": ["datagen", "eval"],
                                  "students": [{"name": "s", "model": "m"}],
                                  "datagen": {"teacher": "openai:gpt-4o", "judge": "openai:gpt-4o", "k": [2], "pool": [5]},
                                  "eval": {"judge": "openai:gpt-4o", "splits": ["heldout"], "k": [2], "limit": 2}}))
    capsys.readouterr()
    assert pipeline_main(["--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{"):])
    assert report["mode"] == "batch" and report["datagen"]["mode"] == "batch"
    assert 0 < report["total_batch_cost_est_usd"] < report["total_cost_est_usd"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override, message", [
    ("eval.limit=0", "eval.limit: must be >= 1"),
    ("eval.splits=[train,bogus]", "eval.splits: unknown ['bogus']"),
    ("eval.protocols=[three-turn]", "eval.protocols: unknown ['three-turn']"),
    ("eval.limitt=3", "eval.limitt: unknown field"),
    ("train.mixtures={d4: [4]}", "train.mixtures.d4: k=[4] is not generated"),
    ("students=[{name: a}]", "students[0]"),
    ("datagen.pool=[1,2]", "datagen.pool: 2 sizes for 3 k values"),
    ("eval.k=two", "eval.k[0]: expected an integer"),
    ("stages=[datagen,deploy]", "stages: unknown ['deploy']"),
])
def test_config_errors_name_the_field(tmp_path, monkeypatch, override, message):
    monkeypatch.setenv("SKILLMIX_TINY_MODEL", "m")
    monkeypatch.setenv("SKILLMIX_TINY_SERVER", "http://127.0.0.1:9/v1")
    with pytest.raises(PipelineConfigError) as e:
        PipelineConfig.load("tiny", [override])
    assert message in str(e.value) and "tiny.yaml" in str(e.value)


def test_unset_environment_variable_is_named(monkeypatch, capsys):
    from skillmix.pipeline.cli import main

    monkeypatch.delenv("SKILLMIX_TINY_MODEL", raising=False)
    monkeypatch.setenv("SKILLMIX_TINY_SERVER", "http://127.0.0.1:9/v1")
    assert main(["--config", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "students[0].model: environment variable SKILLMIX_TINY_MODEL is not set" in err


def test_paper_dry_run_prints_calls_and_cost_and_calls_nothing(tmp_path, monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SKILLMIX_JUDGE", "SKILLMIX_CACHE"):
        monkeypatch.delenv(var, raising=False)
    proc = subprocess.run([sys.executable, "-m", "skillmix.pipeline", "--config", "paper", "--dry-run",
                           f"out={tmp_path / 'paper'}"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})  # unreachable
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    d, e, t = report["datagen"], report["eval"], report["train"]
    # datagen: 4,906 (the paper's 5,000 less the benchmark's own items) + 10,000 + 10,000 conversations,
    # two teacher turns each, 3 gradings each.
    assert [d["per_k"][k]["conversations"] for k in ("1", "2", "3")] == [4906, 10000, 10000]
    assert sum(v["teacher_calls"] for v in d["per_k"].values()) == 2 * 24906
    # The judge is openai: a text's 3 gradings are one request's 3 choices (the API's n).
    assert sum(v["judge_replies"] for v in d["per_k"].values()) == 3 * 24906
    assert sum(v["judge_calls"] for v in d["per_k"].values()) == 24906
    # eval: 2 students + 6 checkpoints, 8 tasks, 100 items x 3 generations x 3 gradings.
    assert len(e["models"]) == 8 and len(e["tasks"]) == 8
    assert e["judge_replies"] == 8 * 8 * 100 * 3 * 3 and e["judge_calls"] == 8 * 8 * 100 * 3
    assert e["judge_cost_est"] > 100 and report["total_cost_est_usd"] > e["judge_cost_est"]
    # Through the Batch APIs the same run costs half.
    assert report["mode"] == "online" and e["judge_batch_cost_est"] == pytest.approx(e["judge_cost_est"] / 2, abs=0.02)
    assert report["total_batch_cost_est_usd"] == pytest.approx(report["total_cost_est_usd"] / 2, abs=0.1)
    assert t.pop("config").endswith("training/configs/paper.yaml")
    assert t == {"runs": 6, "steps_per_run": 4000, "sequences_per_run": 256000, "max_tokens_per_run": 262144000}
    assert "[   todo] datagen" in proc.stdout
    assert not (tmp_path / "paper").exists()  # a dry run writes nothing
