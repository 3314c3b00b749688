"""Every CLI refuses an output path it could not write (read-only, a folder where a file goes, a
file where a folder goes, its own input) before any call: the fake server counts 0 requests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from grading_helpers import TEXT, items

from skillmix.harness.regrade import main as grade_main
from skillmix.datagen.cli import main as datagen_main
from skillmix_tasks.outputs import OutputPathError, check_output_dir, check_output_file


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder nobody can create files in. Root ignores modes, so there it is made immutable, or,
    where chattr is not supported, it is /proc (no process may create a file there)."""
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    immutable = False
    if os.geteuid() == 0:
        immutable = subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0
        if not immutable:
            d.chmod(0o755)
            if not Path("/proc/self").is_dir():
                pytest.skip("running as root with neither chattr nor /proc: no folder is read-only")
            d = Path("/proc")
    try:
        yield d
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(d)], check=True)
        if d != Path("/proc"):
            d.chmod(0o755)


def texts(path: Path) -> Path:
    with open(path, "w") as f:
        for it in items(3):
            f.write(json.dumps({"id": it.id, "skills": list(it.skills), "topic": it.topic, "text": TEXT}) + "\n")
    return path


# ----------------------------------------------------------------------------- the helper
def test_helper_accepts_new_nested_paths_and_changes_nothing(tmp_path):
    assert check_output_file(tmp_path / "a" / "b" / "g.jsonl") == tmp_path / "a" / "b" / "g.jsonl"
    assert check_output_dir(tmp_path / "x" / "y", files=["f.json"]) == tmp_path / "x" / "y"
    existing = tmp_path / "old.jsonl"
    existing.write_text("keep")
    check_output_file(existing)
    assert existing.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["old.jsonl"]


def test_helper_refusals(tmp_path, readonly_dir):
    inp = tmp_path / "in.jsonl"
    inp.write_text("{}\n")
    (tmp_path / "link.jsonl").symlink_to(inp)
    os.link(inp, tmp_path / "hard.jsonl")
    (tmp_path / "folder").mkdir()
    cases = {
        str(readonly_dir / "g.jsonl"): "cannot create files",
        str(readonly_dir / "new" / "deeper" / "g.jsonl"): "cannot create files",
        str(tmp_path / "folder"): "existing folder",
        str(tmp_path / "newdir") + "/": "names a folder",
        str(inp): "same path as the input",
        str(tmp_path / "folder" / ".." / "in.jsonl"): "same path as the input",
        str(tmp_path / "link.jsonl"): "same path as the input",
        str(tmp_path / "hard.jsonl"): "same path as the input",
        str(inp / "g.jsonl"): "is not a folder",
        "-": "standard output",
    }
    for path, why in cases.items():
        with pytest.raises(OutputPathError, match=why):
            check_output_file(path, inputs=[inp])
    for path, why in {str(inp): "existing file", str(readonly_dir): "cannot create files",
                      str(readonly_dir / "sub"): "cannot create files", "-": "standard output",
                      str(inp / "sub"): "is not a folder"}.items():
        with pytest.raises(OutputPathError, match=why):
            check_output_dir(path)
    with pytest.raises(OutputPathError, match="is a folder, but the command writes a file"):
        check_output_dir(tmp_path, files=["folder"])
    with pytest.raises(OutputPathError, match="same path as the input"):
        check_output_dir(tmp_path, inputs=[str(tmp_path) + "/."])


# ----------------------------------------------------------------------------- skillmix-grade
def test_grade_refuses_every_unwritable_output_before_any_judge_call(openai_env, fake_server, readonly_dir, capsys):
    inp = texts(openai_env / "texts.jsonl")
    before = inp.read_text()
    (openai_env / "folder").mkdir()
    (openai_env / "link.jsonl").symlink_to(inp)
    (openai_env / "taken.summary.json").mkdir()
    cache = openai_env / "cache.sqlite"
    refused = {
        str(readonly_dir / "g.jsonl"): "cannot create files",  # the issue: 90 calls, then lost
        str(openai_env / "folder"): "existing folder",
        str(inp): "same path as the input",
        "texts.jsonl": "same path as the input",  # relative spelling of the same file
        "./folder/../texts.jsonl": "same path as the input",
        str(openai_env / "link.jsonl"): "same path as the input",
        str(cache): "same path as the input",  # the reply cache is an input too
        str(openai_env / "taken.jsonl"): "existing folder",  # where its summary goes
        str(inp / "g.jsonl"): "is not a folder",
        "-": "standard output",
    }
    for output, why in refused.items():
        rc = grade_main(["--judge", "openai:gpt-4o", "--input", str(inp), "--output", output, "--cache", str(cache),
                         "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and why in err and "--output" in err, (output, err)
        assert fake_server.requests == [], output
    assert inp.read_text() == before
    # --cache off (nothing to resume from): still refused first.
    assert grade_main(["--judge", "openai:gpt-4o", "--input", str(inp), "--output", str(readonly_dir / "g.jsonl"),
                       "--cache", "off", "--no-progress"]) == 2
    assert fake_server.requests == []
    # A folder that does not exist yet is created.
    out = openai_env / "new" / "nested" / "g.jsonl"
    assert grade_main(["--judge", "openai:gpt-4o", "--input", str(inp), "--output", str(out), "--cache", str(cache),
                       "--no-progress"]) == 0
    assert len(out.read_text().split("\n")) == 4 and (out.parent / "g.summary.json").is_file()


# ----------------------------------------------------------------------------- skillmix-datagen
def test_datagen_refuses_every_unwritable_out_before_any_call(openai_env, fake_server, readonly_dir, capsys):
    afile = openai_env / "afile"
    afile.write_text("not a folder")
    blocked = openai_env / "blocked"
    (blocked / "d_skillmix_k1.jsonl").mkdir(parents=True)
    refused = {str(afile): "existing file", str(readonly_dir): "cannot create files",
               str(readonly_dir / "data"): "cannot create files", str(afile / "data"): "is not a folder",
               str(blocked): "is a folder, but the command writes a file", "-": "standard output"}
    for out, why in refused.items():
        rc = datagen_main(["--teacher", "openai:gpt-4o-mini", "--judge", "openai:gpt-4o", "--k", "1", "--pool", "3",
                           "--out", out, "--cache", str(openai_env / "cache.sqlite"), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and why in err and "--out" in err, (out, err)
        assert fake_server.requests == [], out
    assert afile.read_text() == "not a folder"


# ----------------------------------------------------------------------------- the other CLIs
def test_leaderboard_refuses_a_file_or_read_only_out_and_writes_nothing(tmp_path, readonly_dir, capsys):
    from skillmix.leaderboard.cli import main

    runs = tmp_path / "runs"
    runs.mkdir()
    afile = tmp_path / "site.html"
    afile.write_text("mine")
    site = tmp_path / "site"
    (site / "index.html").mkdir(parents=True)
    for out, why in {str(afile): "existing file", str(readonly_dir / "site"): "cannot create files",
                     str(site): "is a folder, but the command writes a file"}.items():
        assert main([str(runs), "--out", out]) == 2
        err = capsys.readouterr().err
        assert why in err and "--out" in err, (out, err)
    assert afile.read_text() == "mine" and sorted(p.name for p in site.iterdir()) == ["index.html"]


def test_pipeline_and_quickstart_refuse_out_before_any_stage(tmp_path, monkeypatch, readonly_dir, capsys):
    from skillmix.pipeline.cli import main as pipeline_main
    from skillmix.pipeline.quickstart import main as quickstart_main

    monkeypatch.setenv("SKILLMIX_TINY_MODEL", str(tmp_path / "m"))
    monkeypatch.setenv("SKILLMIX_TINY_SERVER", "http://127.0.0.1:9/v1")
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out, why in {str(afile): "existing file", str(readonly_dir / "p"): "cannot create files"}.items():
        assert pipeline_main(["--config", "tiny", f"out={out}"]) == 2
        err = capsys.readouterr().err
        assert why in err and "out" in err and "Traceback" not in err, err
        assert quickstart_main(["--out", out]) == 2
        assert why in capsys.readouterr().err
    assert afile.read_text() == "x"
    # A bundled config's name is not a path: out=tiny is a folder like any other.
    monkeypatch.chdir(tmp_path)
    pipeline_main(["--config", "tiny", "out=tiny", "--stages", "leaderboard"])  # no runs to show: fails later
    assert "same path" not in capsys.readouterr().err and (tmp_path / "tiny" / "pipeline_config.json").is_file()


def test_train_refuses_output_dir_before_loading_the_model(tmp_path, readonly_dir, capsys):
    from skillmix.training.__main__ import main

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}) + "\n")
    model = tmp_path / "model"  # no checkpoint in it: loading it would fail, so a refusal comes first
    model.mkdir()
    (tmp_path / "logdir").mkdir()
    (tmp_path / "logdir" / "train_log.jsonl").symlink_to(data)
    for out, why in {str(data): "existing file", str(readonly_dir / "run"): "cannot create files",
                     str(model): "same path as the input", str(tmp_path / "logdir"): "same path as the input"}.items():
        assert main([f"model={model}", f"data=[{data}]", f"output_dir={out}", "max_steps=1"]) == 2
        err = capsys.readouterr().err
        assert "output_dir" in err and why in err, (out, err)
