"""No credential in any message, and no silent success: a malformed spec or base URL carrying a
password never echoes it, and a run in which nothing was scored (every call refused for its key,
say) exits non-zero with the reason, writing nothing over an earlier result."""

from __future__ import annotations

import json

import pytest
from fake_llm_server import Action
from grading_helpers import FAKE_KEY, TEXT, items

from skillmix.harness.regrade import main as grade_main
from skillmix.grading.specs import JudgeConfigError, parse_spec, redact
from skillmix.datagen.cli import main as datagen_main

PASSWORD = "sk-pw-HUNTER2-9c1e7a55"


def texts(path):
    with open(path, "w") as f:
        for it in items(3):
            f.write(json.dumps({"id": it.id, "skills": list(it.skills), "topic": it.topic, "text": TEXT}) + "\n")
    return path


def assert_clean(*texts: str) -> None:
    for t in texts:
        assert PASSWORD not in t and FAKE_KEY not in t and "HUNTER2" not in t, t


def test_redact_removes_userinfo_and_keylike_tokens():
    msg = (f"POST http://user:{PASSWORD}@host:8000/v1 failed; https://{PASSWORD}@h/x?api_key=abc123&n=1 "
           f"Authorization: Bearer tok-123456; key sk-ant-api03-abcdefghijkl; hf_{'a1' * 17}")
    out = redact(msg)
    assert out.startswith("POST http://***@host:8000/v1 failed; https://***@h/x?*** &n=1".replace(" &", "&"))
    assert "tok-123456" not in out and "abcdefghijkl" not in out and "a1a1a1" not in out
    assert redact("risk-taking and task-force, 3 of 4 valid") == "risk-taking and task-force, 3 of 4 valid"
    # A server's host name may look like a key; only user:password@, the path and the query are refused.
    assert parse_spec("openai-compatible:m@http://sk-inference-cluster-01:8000/v1").base_url.endswith(":8000/v1")


@pytest.mark.parametrize("spec", [
    f"openai-compatible:http://user:{PASSWORD}@host/v1",  # no model before the @
    f"openai-compatibel:m@http://user:{PASSWORD}@host/v1",  # provider misspelt
    f"openai-compatible:m@http://user:{PASSWORD}@host/v1",  # well formed, credentials refused
    f"openai-compatible:m@ftp://user:{PASSWORD}@host/v1",
    f"openai-compatible:m@http://user:{PASSWORD}@host/v1 trailing words",
    f"http://user:{PASSWORD}@host/v1",
    f"openai:{PASSWORD}",  # a key pasted where the model goes
    f"openai-compatible:m@http://host/v1?api_key={PASSWORD}",  # would be echoed in every results file
])
def test_malformed_specs_never_echo_a_password(spec, openai_env, fake_server, capsys):
    with pytest.raises(JudgeConfigError) as e:
        parse_spec(spec)
    assert_clean(str(e.value))
    assert grade_main(["--judge", spec, "--input", str(texts(openai_env / "t.jsonl")), "--output", str(openai_env / "g.jsonl"),
                       "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert_clean(captured.out, captured.err)
    assert "skillmix-grade: error" in captured.err and fake_server.requests == []


def test_base_url_with_credentials_is_refused_before_any_call(openai_env, fake_server, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_url.replace("http://", f"http://user:{PASSWORD}@"))
    inp = texts(openai_env / "t.jsonl")
    assert grade_main(["--judge", "openai:gpt-4o", "--input", str(inp), "--output", str(openai_env / "g.jsonl"),
                       "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert "OPENAI_BASE_URL" in captured.err and "credentials" in captured.err
    assert_clean(captured.out, captured.err)
    assert datagen_main(["--teacher", "openai:gpt-4o-mini", "--judge", "openai:gpt-4o", "--k", "1", "--pool", "2",
                         "--out", str(openai_env / "data"), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert "OPENAI_BASE_URL" in captured.err
    assert_clean(captured.out, captured.err)
    assert fake_server.requests == [] and not (openai_env / "g.jsonl").exists() and not (openai_env / "data").exists()


def test_grading_where_every_call_is_refused_exits_nonzero_and_keeps_the_old_output(openai_env, fake_server, capsys):
    inp, out = texts(openai_env / "t.jsonl"), openai_env / "g.jsonl"
    out.write_text("an earlier run\n")
    fake_server.default = Action(status=401, error_message="Incorrect API key provided")
    rc = grade_main(["--judge", "openai:gpt-4o", "--input", str(inp), "--output", str(out), "--cache", "off",
                     "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 1 and "scored none of the 3 texts" in captured.err and "auth error" in captured.err
    assert "Incorrect API key" in captured.err and "Nothing was written" in captured.err
    assert out.read_text() == "an earlier run\n" and not (openai_env / "g.summary.json").exists()
    assert_clean(captured.out, captured.err)
    assert fake_server.requests and all({k.lower(): v for k, v in r["headers"].items()}["authorization"] == f"Bearer {FAKE_KEY}"
                                for r in fake_server.requests)

    # Two judges, one refused: the other's grades are written, and the run still exits 1.
    fake_server.default = Action()
    fake_server.handler = lambda r: Action(status=401) if r["body"]["model"] == "locked" else None
    rc = grade_main(["--judge", "openai:gpt-4o", "--judge", f"openai-compatible:locked@{fake_server.openai_url}",
                     "--input", str(inp), "--output", str(out), "--cache", "off", "--no-progress", "--json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert rc == 1 and "judge openai-compatible:locked" in captured.err and summary["errors"]
    assert summary["judges"][0]["texts"]["scored"] == 3 and len(out.read_text().splitlines()) == 6


def test_datagen_where_every_call_is_refused_exits_nonzero_and_keeps_the_old_data(openai_env, fake_server, capsys):
    out = openai_env / "data"
    out.mkdir()
    (out / "d_skillmix_k1.jsonl").write_text("earlier data\n")
    fake_server.default = Action(status=401, error_message="Incorrect API key provided")
    rc = datagen_main(["--teacher", "openai:gpt-4o-mini", "--judge", "openai:gpt-4o", "--k", "1", "--pool", "3",
                       "--out", str(out), "--cache", "off", "--max-retries", "0", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 1 and "none of the 3 conversations was judged" in captured.err
    assert "teacher auth error: 3" in captured.err and "Incorrect API key" in captured.err
    assert (out / "d_skillmix_k1.jsonl").read_text() == "earlier data\n" and not (out / "README.md").exists()
    assert_clean(captured.out, captured.err)


def test_pipeline_refuses_a_spec_with_a_password_at_load(monkeypatch, capsys):
    from skillmix.pipeline.cli import main

    monkeypatch.setenv("SKILLMIX_TINY_MODEL", "m")
    monkeypatch.setenv("SKILLMIX_TINY_SERVER", f"http://user:{PASSWORD}@127.0.0.1:9/v1")
    assert main(["--config", "tiny", "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert "datagen.teacher" in captured.err and "credentials" in captured.err
    assert_clean(captured.out, captured.err)
