"""Conversations cut to nothing by max_length: counted per file and per k, shown, written to the
provenance (and the leaderboard's summary), and a source that loses too many stops the run before the
model loads (exit 2, naming the file and k)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from skillmix.training.checkpoint import PROVENANCE_FILE
from skillmix.training.config import ConfigError, TrainConfig
from test_training_data import conversation

MAX_LENGTH = 128


def write_rows(path: Path, k: int, n: int, n_long: int = 0, seed: int = 0) -> Path:
    """``n`` datagen-shaped rows of skill count ``k``; the last ``n_long`` have a first prompt far longer than
    MAX_LENGTH tokens, so no answer token is left after the cut."""
    rng = random.Random(seed)
    with open(path, "a") as f:
        for i in range(n):
            messages = conversation(rng)
            if i >= n - n_long:
                messages[0]["content"] += " " + " ".join(["sewing needle thread knot"] * 120)
            f.write(json.dumps({"id": f"k{k}-{i}", "k": k, "skills": ["metaphor"] * k, "messages": messages}) + "\n")
    return path


def run_cli(tiny_model: Path, tmp_path: Path, data: list[Path], *overrides: str) -> subprocess.CompletedProcess:
    """``python -m skillmix.training --config <yaml> [key=value ...]``, as a user runs it."""
    config = tmp_path / "train.yaml"
    config.write_text(
        f"model: {tiny_model}\ndata: [{', '.join(str(d) for d in data)}]\noutput_dir: {tmp_path / 'run'}\n"
        f"max_steps: 2\nglobal_batch_size: 4\nmicro_batch_size: 2\nwarmup_steps: 1\nlearning_rate: 1.0e-3\n"
        f"max_length: {MAX_LENGTH}\nsave_steps: 0\nreport_to: none\nbf16: false\n")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.run([sys.executable, "-m", "skillmix.training", "--config", str(config), *overrides],
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def d123(tmp_path) -> list[Path]:
    """D(1,2,3) where every k=3 conversation is too long for MAX_LENGTH."""
    return [write_rows(tmp_path / "d_skillmix_k1.jsonl", 1, 8, seed=1),
            write_rows(tmp_path / "d_skillmix_k2.jsonl", 2, 8, seed=2),
            write_rows(tmp_path / "d_skillmix_k3.jsonl", 3, 6, n_long=6, seed=3)]


def test_a_source_that_loses_its_k3_conversations_stops_before_the_model_loads(tiny_model, tmp_path, d123):
    proc = run_cli(tiny_model, tmp_path, d123)
    assert proc.returncode == 2, proc.stderr[-3000:]
    err = proc.stderr
    error = next(line for line in err.splitlines() if line.startswith("skillmix-train: data error:"))
    assert f"{d123[2]} k=3: 6 of 6 dropped (100.0%)" in error
    assert "d_skillmix_k1" not in error and "d_skillmix_k2" not in error  # only the offending source is named
    assert f"max_length={MAX_LENGTH}" in error and "larger max_length" in error and "prompt side" in error
    assert "max_dropped_share=0.05" in error and "Traceback" not in err
    # the table was shown, and the stop came before the model (the attention choice is logged just before
    # loading it) and before anything was written
    assert "conversations per source" in err and "total" in err
    assert "attention:" not in err
    assert not (tmp_path / "run" / "train_log.jsonl").exists() and not (tmp_path / "run" / "final").exists()


def test_a_small_dropped_share_trains_and_the_provenance_counts_what_was_trained(tiny_model, tmp_path):
    from skillmix.leaderboard.results import provenance_summary, read_provenance

    k1 = write_rows(tmp_path / "d_skillmix_k1.jsonl", 1, 8, seed=1)
    # one file holding two k: 1 of 25 k=2 conversations too long (4% < 5%), k=3 all fine
    mixed = write_rows(tmp_path / "d_skillmix_k23.jsonl", 2, 25, n_long=1, seed=2)
    write_rows(mixed, 3, 6, seed=3)
    proc = run_cli(tiny_model, tmp_path, [k1, mixed])
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the on-screen table: a row per (file, k), the file's own row when it holds several k, and a total
    table = proc.stderr[proc.stderr.index("conversations per source"):].splitlines()
    assert [line.split() for line in table[1:7]] == [
        ["source", "k", "conversations", "dropped", "share", "trained"],
        [str(k1), "1", "8", "0", "0.0%", "8"],
        [str(mixed), "2", "25", "1", "4.0%", "24"],
        [str(mixed), "3", "6", "0", "0.0%", "6"],
        [str(mixed), "all", "31", "1", "3.2%", "30"],
        ["total", "39", "1", "2.6%", "38"]]

    final = tmp_path / "run" / "final"
    data = json.loads((final / PROVENANCE_FILE).read_text())["data"]
    assert (data["conversations"], data["dropped_no_answer_tokens"], data["trained_conversations"]) == (39, 1, 38)
    assert data["sft_examples"] == 38 and data["max_dropped_share"] == 0.05 and data["max_length"] == MAX_LENGTH
    by_path = {s["path"]: s for s in data["sources"]}
    assert list(by_path) == [str(k1), str(mixed)]
    assert {k: (c["conversations"], c["dropped"], c["trained"]) for k, c in by_path[str(mixed)]["per_k"].items()} == \
        {"2": (25, 1, 24), "3": (6, 0, 6)}
    assert (by_path[str(mixed)]["trained"], by_path[str(k1)]["trained"]) == (30, 8)
    assert by_path[str(mixed)]["per_k"]["2"]["dropped_share"] == pytest.approx(0.04)

    # the leaderboard labels the row with what was trained on, not with what was generated
    summary = provenance_summary(read_provenance(str(final)))
    assert "38 conversations trained on (1 of 39 dropped: too long)" in summary
    assert "39 conversations" not in summary.replace("of 39", "")


def test_the_threshold_is_configurable(tiny_model, tmp_path, d123):
    # stricter: the 4% loss of the k=2 rows is now too much
    k2 = write_rows(tmp_path / "k2.jsonl", 2, 25, n_long=1, seed=2)
    proc = run_cli(tiny_model, tmp_path, [k2], "max_dropped_share=0.02")
    assert proc.returncode == 2 and f"{k2} k=2: 1 of 25 dropped (4.0%)" in proc.stderr, proc.stderr[-3000:]
    assert "max_dropped_share=0.02" in proc.stderr
    # 1.0 disables the check: D(1,2,3) trains on what is left, and says so in the provenance
    proc = run_cli(tiny_model, tmp_path, d123, "max_dropped_share=1.0", "max_steps=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "run" / "final" / PROVENANCE_FILE).read_text())["data"]
    assert data["sources"][2]["per_k"] == {"3": {"conversations": 6, "dropped": 6, "trained": 0, "dropped_share": 1.0}}
    assert data["trained_conversations"] == 16


@pytest.mark.parametrize("value, message", [
    ("1.5", "max_dropped_share: must be in [0, 1]"), ("-0.1", "max_dropped_share: must be in [0, 1]"),
    ("nan", "max_dropped_share: must be a finite number"), ("lots", "max_dropped_share: expected a number")])
def test_the_threshold_is_validated(value, message):
    assert TrainConfig.from_sources(None, ["model=m", "data=[d.jsonl]"]).max_dropped_share == 0.05
    assert TrainConfig.from_sources(None, ["model=m", "data=[d.jsonl]", "max_dropped_share=1"]).validate().max_dropped_share == 1
    with pytest.raises(ConfigError, match=rf"^{message.replace('[', '.').replace(']', '.')}"):
        TrainConfig.from_sources(None, ["model=m", "data=[d.jsonl]", f"max_dropped_share={value}"]).validate()


def test_nothing_left_to_train_on_stops_even_with_the_check_off(tiny_model, tmp_path):
    from transformers import AutoTokenizer
    from skillmix.training.data import DroppedDataError, build_dataset

    data = write_rows(tmp_path / "d.jsonl", 3, 3, n_long=3)
    config = TrainConfig.from_dict({"model": str(tiny_model), "data": [str(data)], "max_length": MAX_LENGTH,
                                    "max_dropped_share": 1.0}).validate()
    with pytest.raises(DroppedDataError, match="no conversation left to train on"):
        build_dataset(config, AutoTokenizer.from_pretrained(tiny_model))


def test_rows_without_k_are_checked_per_file(tiny_model, tmp_path):
    from transformers import AutoTokenizer
    from skillmix.training.data import DroppedDataError, build_dataset

    data = tmp_path / "chat.jsonl"
    rng = random.Random(0)
    rows = [conversation(rng) for _ in range(4)]
    rows[0][0]["content"] += " " + " ".join(["sewing needle thread knot"] * 120)
    data.write_text("".join(json.dumps({"messages": m}) + "\n" for m in rows))
    config = TrainConfig.from_dict({"model": str(tiny_model), "data": [str(data)], "max_length": MAX_LENGTH}).validate()
    with pytest.raises(DroppedDataError, match=rf"{data}: 1 of 4 dropped \(25.0%\)"):
        build_dataset(config, AutoTokenizer.from_pretrained(tiny_model))


def test_leaderboard_summary_of_older_provenance_files():
    from skillmix.leaderboard.results import provenance_summary

    # before trained_conversations was written: conversations less the dropped ones
    old = {"base_model": "b", "data": {"files": [], "conversations": 12, "dropped_no_answer_tokens": 5}}
    assert "7 conversations trained on (5 of 12 dropped: too long)" in provenance_summary(old)
    assert "40 conversations trained on" in provenance_summary({"data": {"conversations": 40}})
