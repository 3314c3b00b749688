"""skillmix-leaderboard on results written by real ``lm_eval`` runs (an API student and a tiny local
fine-tuned checkpoint with training provenance, judged by local fake servers), plus a malformed file,
a foreign lm-eval results file, an older run and a two-turn run; the page checked in headless Chromium."""

from __future__ import annotations

import copy
import dataclasses
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fake_llm_server import Action, FakeLLMServer, rubric_of
from lmeval_helpers import run_lm_eval
from skillmix.leaderboard.cli import main
from skillmix.leaderboard.published import load_published
from skillmix.leaderboard.results import METRICS, load, newest, parse_results

TASKS = ["skillmix_heldout_k2", "skillmix_heldout_k3", "skillmix_train_k2", "skillmix_train_k3"]
API_LIMIT = 12  # items per task for the API students (cheap); the tiny checkpoint runs 2
LEADERBOARD = str(Path(sys.executable).with_name("skillmix-leaderboard"))


def canonical(results: dict) -> dict:
    """A single-turn results file with its task names as the leaderboard reports them (no ``_single``)."""
    out = copy.deepcopy(results)
    for key in ("results", "configs", "n-samples", "versions", "higher_is_better"):
        if isinstance(out.get(key), dict):
            out[key] = {k.removesuffix("_single"): v for k, v in out[key].items()}
    return out


def topic_judge(salt: str, unscored: bool):
    """A judge whose grading depends on the item's topic only (so all 3 generations and 3 gradings of an
    item agree): full marks, a missed skill, a text that makes no sense, or (if ``unscored``) no table."""

    def handler(request):
        criteria = rubric_of(request["body"]["messages"][-1]["content"])
        if not criteria:
            return None  # the student's turn: the default "Answer: a short reply."
        topic = next(c for c in criteria if "pertains to" in c.lower())
        outcome = zlib.crc32((salt + topic).encode()) % (4 if unscored else 3)
        if outcome == 1:
            return Action(points=[0] + [1] * (len(criteria) - 1))
        if outcome == 2:
            return Action(points=[0 if "makes sense" in c.lower() else 1 for c in criteria])
        if outcome == 3:
            return Action(text="I would rather not grade this.")
        return None

    return handler


def flipped(topic: str) -> bool:
    """The topics student-b's judge grades full marks whatever student-a's judge (salt "a") gives."""
    return zlib.crc32(("flip" + topic).encode()) % 3 != 0


def better_judge(request):
    """student-b's judge: student-a's, except that flipped topics get full marks (a known, positive Δ)."""
    criteria = rubric_of(request["body"]["messages"][-1]["content"])
    if not criteria:
        return None
    topic = next(c for c in criteria if "pertains to" in c.lower()).split("ertains to", 1)[1].strip()
    return None if flipped(topic) else topic_judge("a", unscored=False)(request)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three real lm_eval single-turn runs and a real two-turn one in parallel, then a malformed file,
    a foreign results file and an older run of the API student with other numbers."""
    from tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("leaderboard")
    out = root / "runs"
    out.mkdir()
    ckpt = build_tiny_model(root / "ckpts" / "tiny-ft" / "final")
    provenance = {"base_model": "tiny-base", "step": 8, "max_steps": 8, "complete": True,
                  "data": {"files": [{"path": "data/d123.jsonl", "sha256": "ab" * 32}], "conversations": 40},
                  "skillmix_commit": "abc1234def"}
    (ckpt / "skillmix_provenance.json").write_text(json.dumps(provenance))
    api_srv, hf_srv, b_srv = FakeLLMServer().start(), FakeLLMServer().start(), FakeLLMServer().start()
    api_srv.handler = topic_judge("a", unscored=False)
    hf_srv.handler = topic_judge("b", unscored=True)
    b_srv.handler = better_judge
    procs: dict[str, subprocess.CompletedProcess] = {}

    def run(name, args, srv):
        env = {"SKILLMIX_JUDGE": f"openai-compatible:fake-judge@{srv.openai_url}",
               "SKILLMIX_CACHE": str(root / f"{name}.sqlite")}
        limit = "2" if name == "hf" else str(API_LIMIT)
        procs[name] = run_lm_eval([*args, "--tasks", ",".join(t + "_single" for t in TASKS), "--limit", limit,
                                   "--log_samples"], out, env)

    def two_turn():
        env = {"SKILLMIX_JUDGE": f"openai-compatible:fake-judge@{api_srv.openai_url}",
               "SKILLMIX_CACHE": str(root / "two-turn.sqlite")}
        (out / "two-turn").mkdir()
        procs["two-turn"] = run_lm_eval(
            ["--model", "local-chat-completions", "--apply_chat_template", "--model_args",
             f"model=student-a,base_url={api_srv.openai_url}/chat/completions,num_concurrent=4",
             "--tasks", ",".join(TASKS[:2]), "--limit", "2", "--log_samples"], out / "two-turn", env)

    jobs = [threading.Thread(target=two_turn),
            threading.Thread(target=run, args=("api", [
                "--model", "local-chat-completions", "--apply_chat_template", "--model_args",
                f"model=student-a,base_url={api_srv.openai_url}/chat/completions,num_concurrent=4"], api_srv)),
            threading.Thread(target=run, args=("hf", [
                "--model", "hf", "--model_args", f"pretrained={ckpt}", "--apply_chat_template",
                "--gen_kwargs", "max_gen_toks=12"], hf_srv)),
            threading.Thread(target=run, args=("student-b", [
                "--model", "local-chat-completions", "--apply_chat_template", "--model_args",
                f"model=student-b,base_url={b_srv.openai_url}/chat/completions,num_concurrent=4"], b_srv))]
    try:
        for j in jobs:
            j.start()
        for j in jobs:
            j.join()
    finally:
        api_srv.stop()
        hf_srv.stop()
        b_srv.stop()
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name}: {proc.stderr[-3000:]}"
    (two_file,) = (out / "two-turn").rglob("results_*.json")
    real = sorted(f for f in out.rglob("results_*.json") if f != two_file)
    assert len(real) == 3
    api_file = next(f for f in real if f.parent.name == "student-a")
    b_file = next(f for f in real if f.parent.name == "student-b")
    hf_file = next(f for f in real if f not in (api_file, b_file))
    api = canonical(json.loads(api_file.read_text()))

    # An older run of the same student, judge and protocol: hidden unless --all. With a group row,
    # as lm_eval writes when run on the group skillmix_train.
    older = copy.deepcopy(api)
    older["date"] = api["date"] - 86400
    for t in TASKS:
        older["results"][t].update({"full_marks,judged": 0.0, "all_skills,judged": 0.0, "skills_fraction,judged": 0.0})
    older["results"]["skillmix_train"] = {"alias": "skillmix_train", "full_marks,judged": 0.0}
    (api_file.parent / "results_2020-01-01T00-00-00.000000.json").write_text(json.dumps(older))
    # A foreign lm-eval results file: the same layout, only a non-SKILL-MIX task.
    foreign = copy.deepcopy(api)
    foreign["results"] = {"arc_easy": {"alias": "arc_easy", "acc,none": 0.5, "acc_stderr,none": 0.1}}
    foreign["configs"] = {"arc_easy": {"task": "arc_easy"}}
    foreign["n-samples"] = {"arc_easy": {"original": 2376, "effective": 2}}
    (out / "other-model").mkdir()
    (out / "other-model" / "results_2024-05-01T10-00-00.000000.json").write_text(json.dumps(foreign))
    # Malformed: truncated JSON, and a SKILL-MIX task whose metric is not a number.
    (out / "broken").mkdir()
    (out / "broken" / "results_2024-05-01T10-00-00.000000.json").write_text(api_file.read_text()[:500])
    bad_task = copy.deepcopy(api)
    bad_task["model_name"] = "student-bad"
    bad_task["config"]["model_args"] = {"model": "student-bad"}
    bad_task["results"]["skillmix_train_k2"]["full_marks,judged"] = "lots"
    (out / "student-bad").mkdir()
    (out / "student-bad" / "results_2024-05-01T10-00-00.000000.json").write_text(json.dumps(bad_task))
    return {"root": root, "out": out, "api": api, "hf": canonical(json.loads(hf_file.read_text())), "ckpt": str(ckpt),
            "api_file": api_file, "hf_file": hf_file, "two": json.loads(two_file.read_text()),
            "two_file": two_file, "b_file": b_file, "b": canonical(json.loads(b_file.read_text()))}


# ----------------------------------------------------------------------------- reading
def test_reads_real_results_keeps_newest_and_names_bad_files(runs):
    loaded = load([runs["out"]])
    assert len(loaded.files) == 8
    broken = str(runs["out"] / "broken" / "results_2024-05-01T10-00-00.000000.json")
    assert any(broken in w and "malformed" in w for w in loaded.warnings), loaded.warnings
    assert any("skillmix_train_k2" in w and "student-bad" in w for w in loaded.warnings), loaded.warnings
    assert loaded.ignored == [str(runs["out"] / "other-model" / "results_2024-05-01T10-00-00.000000.json")]
    assert all(e.task in TASKS for e in loaded.entries)  # no arc_easy, no group row

    kept = newest(loaded.entries)
    by = {(e.model, e.protocol, e.task): e for e in kept}
    assert len(by) == len(kept)
    for t in TASKS:
        for model, raw in (("student-a", runs["api"]), (runs["ckpt"], runs["hf"])):
            e = by[(model, "single-turn", t)]
            row = raw["results"][t]
            for m in METRICS:
                assert e.stats[m].value == row.get(f"{m},judged")
            assert e.unscored == row["unscored,judged"]
            assert e.n == raw["n-samples"][t]["effective"] == (2 if raw is runs["hf"] else API_LIMIT)
            assert e.judge == raw["configs"][t]["metadata"]["judge"]
    for t in TASKS[:2]:
        e = by[("student-a", "two-turn", t)]
        assert e.stats["full_marks"].value == runs["two"]["results"][t]["full_marks,judged"]
        assert e.judge == runs["two"]["configs"][t]["metadata"]["judge"]
    assert by[(runs["ckpt"], "single-turn", "skillmix_train_k2")].provenance["base_model"] == "tiny-base"
    # the student-bad file still contributes its readable tasks
    assert {e.task for e in kept if e.model == "student-bad"} == set(TASKS) - {"skillmix_train_k2"}


def test_fixture_runs_differ_and_have_unscored_items(runs):
    # guards the fixture itself: the page tests below need numbers that differ by model and metric
    hf, api = runs["hf"]["results"], runs["api"]["results"]
    assert any(hf[t]["unscored,judged"] > 0 for t in TASKS)
    assert any(hf[t].get("full_marks,judged") != api[t].get("full_marks,judged") for t in TASKS)
    assert any(api[t]["full_marks,judged"] != api[t]["all_skills,judged"] for t in TASKS)


def samples_of(results_file: Path, task: str) -> list[dict]:
    """The samples lm-eval wrote beside a results file, read directly (no project code); a single-turn
    run's file carries its task's ``_single`` name."""
    ts = results_file.name[len("results_"):-len(".json")]
    f = results_file.with_name(f"samples_{task}_single_{ts}.jsonl")
    if not f.is_file():
        f = results_file.with_name(f"samples_{task}_{ts}.jsonl")
    text = f.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def item_scores(results_file: Path, task: str) -> dict[str, dict]:
    out = {}
    for line in samples_of(results_file, task):
        v = json.loads(line["filtered_resps"][0])
        if v.get("scores"):
            out[line["doc"]["id"]] = v["scores"]
    return out


# ----------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def site(runs):
    out = runs["root"] / "site"
    proc = subprocess.run([LEADERBOARD, str(runs["out"]), "--out", str(out), "--baseline", "student-a"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {"out": out, "stderr": proc.stderr, "stdout": proc.stdout}


def _csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_cli_writes_markdown_csv_html_and_plots(runs, site):
    out = site["out"]
    for name in ("leaderboard.md", "leaderboard.csv", "published.csv", "index.html",
                 "plot_full_marks.png", "plot_all_skills.png", "plot_skills_fraction.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "broken/results_2024-05-01T10-00-00.000000.json" in site["stderr"]
    assert "student-bad" in site["stderr"] and "other-model" in site["stderr"]

    rows = _csv(out / "leaderboard.csv")
    keyed = {(r["model"], r["protocol"]): r for r in rows}
    assert set(keyed) == {("student-a", "single-turn"), ("student-a", "two-turn"), (runs["ckpt"], "single-turn"),
                          ("student-bad", "single-turn"), ("student-b", "single-turn")}
    api, hf = keyed[("student-a", "single-turn")], keyed[(runs["ckpt"], "single-turn")]
    assert api["is_baseline"] == "1" and hf["baseline"] == "student-a"
    assert "fine-tuned from tiny-base" in hf["provenance"] and "d123.jsonl#abababab" in hf["provenance"]
    for t in TASKS:
        split, k = t.split("_")[1], t.split("_k")[1]
        for m in METRICS:
            want_api = runs["api"]["results"][t][f"{m},judged"]  # the newest run, not the older copy
            assert float(api[f"{m}_{split}_k{k}"]) == want_api
            want_hf = runs["hf"]["results"][t].get(f"{m},judged")
            mine, base = item_scores(runs["hf_file"], t), item_scores(runs["api_file"], t)
            shared = [i for i in mine if i in base and m in mine[i]]
            if want_hf is None:
                assert hf[f"{m}_{split}_k{k}"] == "" and hf[f"{m}_{split}_k{k}_delta"] == ""
            else:
                assert float(hf[f"{m}_{split}_k{k}"]) == want_hf
                # paired: over the items both scored (the checkpoint ran the API run's first 2)
                assert float(hf[f"{m}_{split}_k{k}_delta"]) == pytest.approx(
                    sum(mine[i][m] - base[i][m] for i in shared) / len(shared))
                assert int(hf[f"{m}_{split}_k{k}_delta_n"]) == len(shared)
        assert int(hf[f"{split}_k{k}_unscored"]) == runs["hf"]["results"][t]["unscored,judged"]
        assert int(hf[f"{split}_k{k}_n"]) == 2
    # the baseline model is a baseline under each protocol; other rows compare with the same protocol
    assert keyed[("student-a", "two-turn")]["is_baseline"] == "1"
    assert keyed[("student-bad", "single-turn")]["baseline"] == "student-a"
    assert not any(r["model"].startswith("published") or "GPT-4" in r["model"] for r in rows)

    md = (out / "leaderboard.md").read_text()
    for label in ("student-a (baseline)", "…/tiny-ft/final", "student-bad", "two-turn"):
        assert label in md
    assert "## Ratio of Full Marks" in md and "## Ratio of All Skills" in md and "## Skills Fraction" in md
    measured, published = md.split("## Reference numbers: published (GPT-4 grader)")
    assert "GPT-4" not in measured.replace("published (GPT-4 grader)", "")
    assert "| SKILL-MIX leaderboard | GPT-4 | as published | GPT-4 | all | 3 | Ratio of Full Marks | 0.66 |" in published
    assert "Mistral-7B-Instruct-v0.2" in published and "not stated" not in published


def test_all_metric_and_bad_baseline_options(runs, tmp_path, capsys):
    assert main([str(runs["out"]), "--out", str(tmp_path / "all"), "--all", "--metric", "all_skills"]) == 0
    rows = _csv(tmp_path / "all" / "leaderboard.csv")
    assert sum(r["model"] == "student-a" and r["protocol"] == "single-turn" for r in rows) == 2  # older run too
    md = (tmp_path / "all" / "leaderboard.md").read_text()
    assert "## Ratio of All Skills" in md and "## Ratio of Full Marks" not in md
    html = (tmp_path / "all" / "index.html").read_text()
    assert '"initial": {"metric": "all_skills"' in html

    assert main([str(runs["out"]), "--out", str(tmp_path / "x"), "--baseline", "no-such-model"]) == 2
    assert "no-such-model" in capsys.readouterr().err
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "y")]) == 2


def test_published_rows_are_labelled_and_faithful():
    pub = load_published()
    assert {p.label for p in pub} == {"published (GPT-4 grader)"}
    got = {(p.source, p.model, p.variant, p.split, p.k, p.metric): p.value for p in pub}
    lb = "SKILL-MIX leaderboard"
    assert got[(lb, "GPT-4", "as published", "all", 3, "full_marks")] == 0.66
    assert got[(lb, "GPT-4", "as published", "all", 4, "all_skills")] == 0.50
    assert got[(lb, "GPT-4", "as published", "all", 5, "skills_fraction")] == 0.79
    paper = "Zhao et al. 2024 (arXiv 2409.19808)"
    assert got[(paper, "LLaMA-2-13B-Chat", "fine-tuned on D_SKILL-MIX(1,2,3)", "heldout", 3, "full_marks")] == 0.37
    assert got[(paper, "Mistral-7B-Instruct-v0.2", "before fine-tuning", "heldout", 3, "full_marks")] == 0.08
    # A number whose model, split or data set is not stated is not shown with a guess.
    assert not [p for p in pub if "not stated" in f"{p.model} {p.variant} {p.split}"]
    assert all(p.split in ("train", "heldout", "all") and p.model and p.variant for p in pub)


def test_page_is_self_contained(site):
    html = (site["out"] / "index.html").read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "<link" not in html and "@import" not in html
    assert 'src="http' not in html and "src='http" not in html
    assert "data:image/png;base64," in html


# ----------------------------------------------------------------------------- the page's files (page/)
def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is not installed but CI is set: the page's scripts would go unchecked")
        pytest.skip("node not installed (apt-get install nodejs): cannot check the page's scripts")
    return exe


def node_check(exe: str, path: Path) -> None:
    """Parses only (``node --check`` runs nothing), so a syntax error fails here, not in a reader's browser."""
    proc = subprocess.run([exe, "--check", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]


def empty_page() -> str:
    from skillmix.leaderboard.render import index_html, page_data
    return index_html(page_data([], {}, [], "full_marks", [], [], None, {}))


def test_page_scripts_pass_node_check(tmp_path):
    from importlib import resources
    exe = node()
    site = resources.files("skillmix.leaderboard") / "page"
    with resources.as_file(site / "app.js") as app:
        node_check(exe, app)
    # Inlined into index.html: a closing tag in either file would end its element early.
    assert "</script" not in (site / "app.js").read_text(encoding="utf-8").lower()
    assert "</style" not in (site / "style.css").read_text(encoding="utf-8").lower()
    scripts = [body for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", empty_page(), re.S)
               if 'type="application/json"' not in attrs]
    assert scripts
    for i, body in enumerate(scripts):
        (tmp_path / f"inline{i}.js").write_text(body, encoding="utf-8")
        node_check(exe, tmp_path / f"inline{i}.js")


def test_page_slots_are_filled_once():
    """A name that reads like a template slot stays as typed (one pass over the template, nothing re-read)."""
    from skillmix.leaderboard.render import NOTE, index_html
    page = index_html({"note": NOTE, "banner": "__DATA__", "x": "__BANNER__ __STATIC_NOTE__ __SCRIPT__"})
    data = json.loads(page.split('id="leaderboard-data">', 1)[1].split("</script>", 1)[0])
    assert data["x"] == "__BANNER__ __STATIC_NOTE__ __SCRIPT__" and data["banner"] == "__DATA__"
    assert '<p class="banner" id="banner">__DATA__</p>' in page and '<p class="note" id="note">Means over' in page


# ----------------------------------------------------------------------------- the page in Chromium
def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed but CI is set: .ci/run must install it (apt-get install chromium)")
        pytest.skip("headless Chromium not installed (apt-get install chromium); CI installs it")
    return exe


def run_chromium(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


class Board(HTMLParser):
    """The measured table of a dumped DOM: its attributes and, per row, model -> {k: data-value}."""

    def __init__(self):
        super().__init__()
        self.attrs: dict = {}
        self.rows: dict[tuple[str, str], dict[str, str]] = {}  # (model, protocol) -> {k: data-value}
        self.published_rows = 0
        self._in_board = False
        self._row: str | None = None
        self.active: list[str] = []
        self.plot_alt = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "board":
            self._in_board, self.attrs = True, a
        elif tag == "table":
            self._in_board = False
        elif self._in_board and tag == "tr" and "data-model" in a:
            self._row = (a["data-model"], a["data-protocol"])
            self.rows[self._row] = {}
        elif self._in_board and tag == "td" and self._row and "data-k" in a:
            self.rows[self._row][a["data-k"]] = a.get("data-value", "")
        elif tag == "tr" and a.get("class") == "published-row":
            self.published_rows += 1
        elif tag == "button" and a.get("class") == "active":
            self.active.append(a.get("id", ""))
        elif tag == "img" and a.get("id") == "plot-img":
            self.plot_alt = a.get("alt", "")


def dump(exe: str, profile: Path, url: str) -> Board:
    proc = run_chromium(exe, profile, "--dump-dom", url)
    board = Board()
    board.feed(proc.stdout)
    return board


def expected(runs, metric: str, split: str) -> dict[str, dict[str, str]]:
    want = {}
    for model, raw in (("student-a", runs["api"]), (runs["ckpt"], runs["hf"])):
        want[model] = {t.split("_k")[1]: raw["results"][t].get(f"{metric},judged")
                       for t in TASKS if t.startswith(f"skillmix_{split}_")}
    return want


def test_page_in_headless_chromium_shows_every_row_and_switches(runs, site, tmp_path):
    exe = chromium()
    page = (site["out"] / "index.html").as_uri()
    models = {("student-a", "single-turn"), ("student-a", "two-turn"), (runs["ckpt"], "single-turn"),
              ("student-bad", "single-turn"), ("student-b", "single-turn")}

    first = dump(exe, tmp_path / "p1", page)
    assert first.attrs["data-metric"] == "full_marks" and first.attrs["data-split"] == "heldout"
    assert set(first.rows) == models
    assert first.published_rows == sum(p.metric == "full_marks" for p in load_published())
    assert {"metric-full_marks", "split-heldout"} <= set(first.active)

    for metric, split in (("all_skills", "train"), ("skills_fraction", "heldout")):
        board = dump(exe, tmp_path / f"p-{metric}", f"{page}#metric={metric}&split={split}")
        assert board.attrs["data-metric"] == metric and board.attrs["data-split"] == split
        assert set(board.rows) == models
        for model, cells in expected(runs, metric, split).items():
            for k, v in cells.items():
                shown = board.rows[(model, "single-turn")][k]
                assert (shown == "") if v is None else float(shown) == pytest.approx(v), (metric, split, model, k)
        assert board.plot_alt.startswith({"all_skills": "Ratio of All Skills", "skills_fraction": "Skills Fraction"}[metric])

    # the real click handlers: buttons, then a sortable column header (ascending on a second click)
    clicked = dump(exe, tmp_path / "p-click", f"{page}#click=metric-all_skills,split-train,sort-k3,sort-k3")
    assert clicked.attrs["data-metric"] == "all_skills" and clicked.attrs["data-split"] == "train"
    assert {"metric-all_skills", "split-train"} <= set(clicked.active)
    values = [float(cells["3"]) if cells.get("3") else None for cells in clicked.rows.values()]
    present = [v for v in values if v is not None]
    assert present == sorted(present) and values[: len(present)] == present  # missing cells last

    shot = tmp_path / "leaderboard.png"
    run_chromium(exe, tmp_path / "p-shot", "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1400,1000",
                 f"{page}#metric=all_skills&split=train")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    keep = os.environ.get("SKILLMIX_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "leaderboard.png")


def test_task_with_every_item_unscored_shows_its_count_not_a_zero(runs):
    from skillmix.leaderboard.render import cell_text
    from skillmix.leaderboard.results import parse_results
    from skillmix.leaderboard.table import build_rows

    raw = copy.deepcopy(runs["api"])
    row = raw["results"]["skillmix_heldout_k3"]
    for m in METRICS:  # what lm-eval writes when no item produced the metric
        row.pop(f"{m},judged")
        row.pop(f"{m}_stderr,judged")
    row["unscored,judged"] = API_LIMIT
    raw["config"]["model_args"] = "model=student-z,num_concurrent=4"  # the string form
    entries, warnings = parse_results(raw, "x/results_2024-01-01T00-00-00.json")
    assert not warnings
    e = next(e for e in entries if e.task == "skillmix_heldout_k3")
    assert e.model == "student-z" and e.unscored == API_LIMIT and all(e.stats[m].value is None for m in METRICS)
    (r,) = build_rows(entries)
    assert cell_text(r, "full_marks", "heldout", 3) == f"— (n={API_LIMIT}, {API_LIMIT} unscored) ⚠"  # 100% > 5%
    # The plot's empty panel says why it is empty, not "no results".
    from skillmix.leaderboard.plots import _empty_reason
    only = copy.copy(r)
    only.cells = {key: c for key, c in r.cells.items() if key == ("heldout", 3)}
    assert _empty_reason([only], "heldout").startswith("every item unscored")
    only.cells = {("heldout", 3): dataclasses.replace(e, judged=False)}
    assert _empty_reason([only], "heldout").startswith("not judged")
    assert _empty_reason([only], "train") == "not measured"
    e.unscored = 0  # 0% is not flagged; the cut is "above 5%"
    assert "⚠" not in cell_text(r, "full_marks", "heldout", 3)
    from skillmix.leaderboard.render import unscored_flag
    assert not unscored_flag(100, 5) and unscored_flag(100, 6) and not unscored_flag(None, 3)


# ----------------------------------------------------------------------------- hostile files
HOSTILE_NAME = '=HYPERLINK("http://x")</script><!--<script>alert(1)</script> | *x* \u2028end'
HOSTILE_NOTE = "demo </script><!--<script> <b>bold</b> | pipe"
HOSTILE_TEXT = "Answer </script><!--<script>alert(1)</script> \u2028 line \u2029 end"


def test_hostile_files_are_skipped_by_name_and_field_and_the_rest_is_written(runs, tmp_path):
    d = tmp_path / "runs"
    good = d / "good"
    good.mkdir(parents=True)
    shutil.copy(runs["api_file"], good / runs["api_file"].name)
    api_text = runs["api_file"].read_text()

    def put(name: str, text: str) -> Path:
        f = d / name / "results_2024-05-01T10-00-00.000000.json"
        f.parent.mkdir(parents=True)
        f.write_text(text, encoding="utf-8")
        return f

    # Infinity where a count, a stderr and the date belong (json.dumps writes them as Infinity)
    inf = copy.deepcopy(runs["api"])
    inf["config"]["model_args"] = {"model": "student-inf"}
    inf["results"]["skillmix_train_k2"]["unscored,judged"] = float("inf")
    inf["results"]["skillmix_train_k3"]["full_marks_stderr,judged"] = float("inf")
    inf["results"]["skillmix_heldout_k2"]["all_skills,judged"] = float("-inf")
    inf["date"] = 1e300
    f_inf = put("inf", json.dumps(inf))
    f_deep = put("deep", "[" * 50_000_000)
    f_list = put("list", "[1, 2, 3]")
    f_null = put("null", "null")
    f_badutf = d / "badutf" / "results_2024-05-01T10-00-00.000000.json"
    f_badutf.parent.mkdir()
    f_badutf.write_bytes(b'{"results": "\xff\xfe"}')
    # wrong types everywhere a shape is assumed
    wrong = copy.deepcopy(runs["api"])
    wrong["config"]["model_args"] = ["model", "student-wrong"]
    wrong["model_name"] = "student-wrong"
    wrong["n-samples"]["skillmix_train_k2"] = {"effective": "two"}
    wrong["date"] = "yesterday"
    wrong["configs"]["skillmix_train_k2"]["metadata"] = ["not", "a", "dict"]
    wrong["results"]["skillmix_heldout_k3"] = "not a row"
    f_wrong = put("wrong", json.dumps(wrong))
    f_results_list = put("results-list", json.dumps({**runs["api"], "results": [1, 2]}))
    # a model name and a note that try to end the page's script, add HTML to the Markdown, and run in a spreadsheet
    evil = copy.deepcopy(runs["api"])
    evil["config"]["model_args"] = {"model": HOSTILE_NAME}
    f_evil = put("evil", json.dumps(evil, ensure_ascii=False))
    # its samples: an answer made to end the item script or the page, a raw U+2028, a broken verdict
    lines = samples_of(runs["api_file"], "skillmix_heldout_k2")
    v = json.loads(lines[0]["filtered_resps"][0])
    v["generations"][0]["text"] = HOSTILE_TEXT
    lines[0]["filtered_resps"] = [json.dumps(v, ensure_ascii=False)]
    lines[1]["filtered_resps"] = ["{not json"]
    ts = f_evil.name[len("results_"):-len(".json")]
    (f_evil.parent / f"samples_skillmix_heldout_k2_{ts}.jsonl").write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    (f_evil.parent / f"samples_skillmix_heldout_k3_{ts}.jsonl").write_text(
        "[" * 100_000, encoding="utf-8")

    out = tmp_path / "site"
    proc = subprocess.run([LEADERBOARD, str(d), "--out", str(out), "--note", HOSTILE_NOTE, "--baseline", "student-a"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "Traceback" not in err
    for f in (f_deep, f_list, f_null, f_badutf, f_results_list):
        assert f"skipping malformed results file {f}" in err, (f, err)
    assert "nested too deeply" in err and "not a JSON object" in err
    assert f"{f_inf}: results.skillmix_train_k2['unscored,judged'] = inf is not a count" in err
    assert f"{f_inf}: results.skillmix_train_k3['full_marks_stderr,judged'] = inf" in err
    assert f"skipping task skillmix_heldout_k2 in {f_inf}: 'all_skills,judged' = -inf is outside [0, 1]" in err
    assert f"{f_inf}: date = 1e+300 is not a time" in err
    assert f"{f_wrong}: n-samples.skillmix_train_k2.effective = 'two' is not a count" in err
    assert f"skipping task skillmix_heldout_k3 in {f_wrong}: task row is not an object" in err

    for name in ("leaderboard.md", "leaderboard.csv", "published.csv", "index.html", "plot_full_marks.png"):
        assert (out / name).stat().st_size > 0
    rows = {r["model"]: r for r in _csv(out / "leaderboard.csv")}
    assert set(rows) == {"student-a", "student-inf", "student-wrong", "'" + HOSTILE_NAME}  # neutralised
    inf_row = rows["student-inf"]
    assert inf_row["train_k2_unscored"] == "" and inf_row["full_marks_train_k3_stderr"] == ""
    assert inf_row["full_marks_heldout_k2"] == ""  # the task with -inf is dropped, the rest kept
    assert float(inf_row["full_marks_train_k2"]) == runs["api"]["results"]["skillmix_train_k2"]["full_marks,judged"]

    # CSV: a cell starting with = + - @ tab or CR is text to a spreadsheet, not a formula
    with open(out / "leaderboard.csv", newline="", encoding="utf-8") as fh:
        for line in csv.reader(fh):
            for cell in line:
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
                if cell.startswith("-"):
                    float(cell)  # only negative numbers (deltas) may start with a minus

    md = (out / "leaderboard.md").read_text()
    assert "<script" not in md and "</script" not in md and "<!--" not in md and "<b>" not in md
    assert "&lt;/script&gt;&lt;!--&lt;script&gt;" in md and "&lt;b&gt;bold&lt;/b&gt; \\| pipe" in md
    model_lines = [line for line in md.splitlines() if "HYPERLINK" in line]
    assert model_lines and all(len(re.findall(r"(?<!\\)\|", line)) == 7 for line in model_lines[:1])  # one cell per column
    assert all(line.startswith(("| \\=HYPERLINK", "- ")) for line in model_lines), model_lines

    html_text = (out / "index.html").read_text()
    script = html_text.split('<script type="application/json" id="leaderboard-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in script and "\u2028" not in script
    # strict JSON: a bare Infinity/NaN would fail here (a text search would hit the plots' base64)
    data = json.loads(script, parse_constant=lambda c: pytest.fail(f"{c} in the page data"))
    assert HOSTILE_NAME in {r["model"] for r in data["rows"]}

    exe = chromium()
    board = dump(exe, tmp_path / "p", (out / "index.html").as_uri())
    assert {m for m, _ in board.rows} == {"student-a", "student-inf", "student-wrong", HOSTILE_NAME}
    proc = run_chromium(exe, tmp_path / "p2", "--dump-dom", (out / "index.html").as_uri())
    assert "demo &lt;/script&gt;&lt;!--&lt;script&gt; &lt;b&gt;bold&lt;/b&gt;" in proc.stdout  # the note, as text

    # the hostile model's items: every line of the readable file shown, its texts as text; the unreadable file named
    assert any("samples_skillmix_heldout_k3_" in line and "skipping samples file" in line for line in err.splitlines())
    (row,) = [r for r in data["rows"] if r["model"] == HOSTILE_NAME]
    cid = row["cells"]["heldout"]["2"]["items"]
    script = (out / data["items"][cid]["file"]).read_text(encoding="ascii")  # ASCII: U+2028 escaped
    assert "\\u2028" in script
    page = browse(exe, tmp_path / "p3", f"{(out / 'index.html').as_uri()}#view=samples&cell={cid}")
    assert [it["id"] for it in page.items] == [x["doc"]["id"] for x in lines]
    assert page.items[1]["outcome"] == "unscored"  # the broken verdict: unscored, never a grade
    proc = run_chromium(exe, tmp_path / "p4", "--virtual-time-budget=10000", "--dump-dom",
                        f"{(out / 'index.html').as_uri()}#view=samples&cell={cid}")
    assert "Answer &lt;/script&gt;&lt;!--&lt;script&gt;alert(1)&lt;/script&gt;" in proc.stdout


# ----------------------------------------------------------------------------- skills, paired Δ, sample browser
def page_json(out: Path) -> dict:
    html_text = (out / "index.html").read_text(encoding="utf-8")
    return json.loads(html_text.split('id="leaderboard-data">', 1)[1].split("</script>", 1)[0])


SAMPLED = (("student-a", "single-turn", "api_file", TASKS), ("student-b", "single-turn", "b_file", TASKS),
           ("ckpt", "single-turn", "hf_file", TASKS), ("student-a", "two-turn", "two_file", TASKS[:2]))


def direct_skill_counts(results_file: Path, tasks) -> dict[str, tuple[int, int]]:
    """Per skill (earned, items): an item earns a skill when one of its scored generations has the point."""
    want: dict[str, tuple[int, int]] = {}
    for t in tasks:
        for line in samples_of(results_file, t):
            v = json.loads(line["filtered_resps"][0])
            if v["status"] != "scored":
                continue
            gens = [g for g in v["generations"] if g["status"] == "scored"]
            for i, skill in enumerate(line["doc"]["skills"]):
                e, n = want.get(skill, (0, 0))
                want[skill] = (e + max(g["points"][i] for g in gens), n + 1)
    return want


def test_per_skill_rates_equal_a_direct_count_from_the_samples(runs, site):
    from skillmix_tasks.catalog import default_catalog

    catalog = default_catalog()
    got = {(r["model"], r["protocol"], r["skill"]): r for r in _csv(site["out"] / "skills.csv")}
    rates = set()
    for model, protocol, key, tasks in SAMPLED:
        model = runs["ckpt"] if model == "ckpt" else model
        want = direct_skill_counts(runs[key], tasks)
        assert want, key
        mine = {s: r for (m, p, s), r in got.items() if (m, p) == (model, protocol)}
        assert set(mine) == set(want), (model, protocol)
        for skill, (earned, items) in want.items():
            r = mine[skill]
            assert (int(r["earned"]), int(r["items"])) == (earned, items), (model, skill)
            assert float(r["rate"]) == pytest.approx(earned / items)
            assert r["category"] == catalog.skill(skill).category
            assert r["skill_split"] == catalog.skill(skill).split
            rates.add(r["rate"])
    assert len(rates) > 2  # the fixture's judges miss the first skill of some topics

    # per category: the pooled tallies of its skills, in the Markdown and the page
    data = page_json(site["out"])
    ri = next(i for i, r in enumerate(data["rows"]) if (r["model"], r["protocol"]) == ("student-a", "single-turn"))
    want = direct_skill_counts(runs["api_file"], TASKS)
    for cat in {catalog.skill(s).category for s in want}:
        e = sum(v[0] for s, v in want.items() if catalog.skill(s).category == cat)
        n = sum(v[1] for s, v in want.items() if catalog.skill(s).category == cat)
        assert data["skills"]["per_row_category"][ri][cat] == [e, n]
    heldout = [v for s, v in want.items() if catalog.skill(s).split == "heldout"]
    assert data["skills"]["per_row_category"][ri]["heldout"] == [sum(v[0] for v in heldout), sum(v[1] for v in heldout)]
    hardest = data["skills"]["hardest"][ri]
    assert hardest[0][1] / hardest[0][2] == min(e / n for e, n in want.values())
    md = (site["out"] / "leaderboard.md").read_text()
    assert "## Skills" in md and "### Hardest skills" in md and "heatmap_categories.png" in md
    for name in ("heatmap_categories.png", "heatmap_skills.png"):
        assert (site["out"] / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paired_interval_covers_the_known_difference_and_excludes_zero(runs, site):
    t = "skillmix_heldout_k2"
    # by construction: student-b = student-a, plus full marks on the flipped topics
    a_items = {line["doc"]["id"]: line for line in samples_of(runs["api_file"], t)}
    b_items = {line["doc"]["id"]: line for line in samples_of(runs["b_file"], t)}
    assert list(a_items) == list(b_items) and len(b_items) == API_LIMIT
    known = sum(flipped(line["doc"]["topic"]) and json.loads(line["filtered_resps"][0])["scores"]["full_marks"] == 0
                for line in a_items.values()) / API_LIMIT
    assert known >= 0.2, known  # the fixture's constructed gain
    rows = {(r["model"], r["protocol"]): r for r in _csv(site["out"] / "leaderboard.csv")}
    b = rows[("student-b", "single-turn")]
    col = "full_marks_heldout_k2"
    d, lo, hi = (float(b[f"{col}{x}"]) for x in ("_delta", "_delta_ci95_low", "_delta_ci95_high"))
    assert d == pytest.approx(known)
    assert 0 < lo <= known <= hi
    assert b[f"{col}_delta_significant"] == "1" and int(b[f"{col}_delta_n"]) == API_LIMIT
    # significance is the interval excluding 0, in every cell of every row
    for r in rows.values():
        for key, v in r.items():
            if key.endswith("_delta_significant") and v != "":
                stem = key[: -len("_significant")]
                if r[f"{stem}_ci95_low"] == "":  # one shared item: a Δ, no interval, never significant
                    assert v == "0" and int(r[f"{stem}_n"]) < 2
                    continue
                lo_, hi_ = float(r[f"{stem}_ci95_low"]), float(r[f"{stem}_ci95_high"])
                assert v == ("1" if lo_ > 0 or hi_ < 0 else "0"), (r["model"], key)
    md = (site["out"] / "leaderboard.md").read_text()
    assert f"Δ {d:+.3f} [{lo:+.3f}, {hi:+.3f}]*" in md
    data = page_json(site["out"])
    (row,) = [r for r in data["rows"] if r["model"] == "student-b"]
    cell = row["cells"]["heldout"]["2"]["full_marks"]
    assert (cell["d"], cell["dlo"], cell["dhi"], cell["sig"]) == (pytest.approx(d), pytest.approx(lo), pytest.approx(hi), True)
    assert (site["out"] / "plot_delta_full_marks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["plots"]["delta_full_marks"].startswith("data:image/png;base64,")


def test_paired_bootstrap_is_scipys_paired_percentile_interval():
    import numpy as np
    from scipy import stats

    from skillmix.leaderboard.paired import N_RESAMPLES, paired_intervals

    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, 40).astype(float)
    y = np.where(rng.random(40) < 0.8, x, 1 - x)  # strongly paired
    lo, hi = paired_intervals(x[None], y[None])
    ref = stats.bootstrap((x, y), lambda a, b, axis=-1: np.mean(a - b, axis=axis), paired=True, vectorized=True,
                          method="percentile", n_resamples=N_RESAMPLES, random_state=np.random.default_rng(0))
    assert (lo[0], hi[0]) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    unpaired = stats.bootstrap((x, y), lambda a, b, axis=-1: np.mean(a, axis=axis) - np.mean(b, axis=axis),
                               vectorized=True, method="percentile", n_resamples=N_RESAMPLES,
                               random_state=np.random.default_rng(0))
    assert hi[0] - lo[0] < unpaired.confidence_interval.high - unpaired.confidence_interval.low


class Items(HTMLParser):
    """The sample browser of a dumped DOM: item cards, their skills, drafts, reasons, and the count."""

    def __init__(self):
        super().__init__()
        self.items: list[dict] = []
        self.count = ""
        self.links: list[str] = []
        self.hidden: dict[str, bool] = {}
        self._text_of: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class") or ""
        if tag == "section":
            self.hidden[a.get("id", "")] = "hidden" in a
        if tag == "div" and cls == "item":
            self.items.append({"id": a["data-item-id"], "outcome": a["data-outcome"], "topic": a["data-topic"],
                               "skills": [], "drafts": 0, "answers": 0, "reasons": []})
        elif self.items and tag == "span" and cls.startswith("skill"):
            self.items[-1]["skills"].append(a["data-skill"])
        elif self.items and tag == "pre" and "draft" in cls:
            self.items[-1]["drafts"] += 1
        elif self.items and tag == "pre" and "answer" in cls:
            self.items[-1]["answers"] += 1
        elif self.items and tag == "div" and cls == "reason":
            self._text_of = "reason"
        elif tag == "span" and a.get("id") == "items-count":
            self._text_of = "count"
        elif tag == "a" and cls == "items-link":
            self.links.append(a["href"])

    def handle_data(self, data):
        if self._text_of == "count":
            self.count += data
        elif self._text_of == "reason":
            self.items[-1]["reasons"].append(data)

    def handle_endtag(self, tag):
        if tag in ("span", "div"):
            self._text_of = None


def browse(exe: str, profile: Path, url: str) -> Items:
    # the virtual time budget lets the page load the task's item script before the DOM is dumped
    proc = run_chromium(exe, profile, "--virtual-time-budget=10000", "--dump-dom", url)
    p = Items()
    p.feed(proc.stdout)
    return p


@pytest.fixture(scope="module")
def http_site(site):
    """The same site over http://127.0.0.1 (users open it from disk; both must work)."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site["out"]))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/index.html"
    srv.shutdown()


def cell_of(data: dict, model: str, protocol: str, split: str, k: int) -> str:
    (row,) = [r for r in data["rows"] if (r["model"], r["protocol"]) == (model, protocol)]
    return row["cells"][split][str(k)]["items"]


def test_browser_shows_every_item_of_a_task_over_file_and_http(runs, site, http_site, tmp_path):
    exe = chromium()
    data = page_json(site["out"])
    t = "skillmix_heldout_k2"
    lines = samples_of(runs["api_file"], t)
    cid = cell_of(data, "student-a", "single-turn", "heldout", 2)
    for i, base in enumerate(((site["out"] / "index.html").as_uri(), http_site)):
        page = browse(exe, tmp_path / f"p{i}", f"{base}#view=samples&cell={cid}")
        assert page.hidden == {"board-view": True, "skills-view": True, "samples-view": False}
        assert [it["id"] for it in page.items] == [line["doc"]["id"] for line in lines]
        assert page.count.strip() == f"{len(lines)} of {len(lines)} items"
        for it, line in zip(page.items, lines):
            assert it["skills"] == line["doc"]["skills"] and it["topic"] == line["doc"]["topic"]
            assert it["answers"] == len(json.loads(line["filtered_resps"][0])["generations"]) == 3
            assert it["drafts"] == 0  # single-turn: no draft

    # the checkpoint's run has unscored items: the outcome filter shows exactly those, with their reasons
    hf_lines = [line for t_ in TASKS for line in samples_of(runs["hf_file"], t_)]
    unscored_task = next(t_ for t_ in TASKS if any(json.loads(x["filtered_resps"][0])["status"] == "unscored"
                                                  for x in samples_of(runs["hf_file"], t_)))
    assert hf_lines
    split, k = unscored_task.split("_")[1], int(unscored_task.split("_k")[1])
    hcid = cell_of(data, runs["ckpt"], "single-turn", split, k)
    want = [(x["doc"]["id"], json.loads(x["filtered_resps"][0])["reason"]) for x in samples_of(runs["hf_file"], unscored_task)
            if json.loads(x["filtered_resps"][0])["status"] == "unscored"]
    page = browse(exe, tmp_path / "pu", f"{(site['out'] / 'index.html').as_uri()}#view=samples&cell={hcid}&outcome=unscored")
    assert [it["id"] for it in page.items] == [w[0] for w in want]
    for it, (_, reason) in zip(page.items, want):
        assert it["outcome"] == "unscored" and f"unscored: {reason}" in it["reasons"]

    # skill and topic filters
    skill = lines[0]["doc"]["skills"][1]
    page = browse(exe, tmp_path / "ps", f"{http_site}#view=samples&cell={cid}&skill={skill.replace(' ', '%20')}")
    assert [it["id"] for it in page.items] == [x["doc"]["id"] for x in lines if skill in x["doc"]["skills"]]
    topic = lines[-1]["doc"]["topic"]
    page = browse(exe, tmp_path / "pt", f"{http_site}#view=samples&cell={cid}&topic={topic.replace(' ', '%20')}")
    assert [it["id"] for it in page.items] == [x["doc"]["id"] for x in lines if x["doc"]["topic"] == topic]
    assert page.items and all(it["topic"] == topic for it in page.items)

    # two-turn: each generation shows its turn-1 draft above the graded answer
    tcid = cell_of(data, "student-a", "two-turn", "heldout", 2)
    page = browse(exe, tmp_path / "p2t", f"{http_site}#view=samples&cell={tcid}")
    assert len(page.items) == len(samples_of(runs["two_file"], t)) and all(it["drafts"] == it["answers"] == 3 for it in page.items)


def test_every_leaderboard_cell_links_to_its_items(runs, site, tmp_path):
    exe = chromium()
    data = page_json(site["out"])
    uri = (site["out"] / "index.html").as_uri()
    for split in data["splits"]:
        page = browse(exe, tmp_path / f"b-{split}", f"{uri}#split={split}")
        want = sorted("#view=samples&cell=" + c["items"] for r in data["rows"] for c in r["cells"].get(split, {}).values()
                      if c["items"])
        assert sorted(page.links) == want and want
    # the select lists every task with samples; every item file loads
    assert set(data["items"]) == {c["items"] for r in data["rows"] for s in r["cells"].values() for c in s.values()
                                  if c["items"]}
    for cid, meta in data["items"].items():
        assert (site["out"] / meta["file"]).is_file()
    # a real click on a cell's link (the handler, not a typed URL) opens that task's items
    cid = cell_of(data, "student-b", "single-turn", "heldout", 3)
    page = browse(exe, tmp_path / "click", f"{uri}#click=items-{cid}")
    assert page.hidden["samples-view"] is False
    assert [it["id"] for it in page.items] == [x["doc"]["id"] for x in samples_of(runs["b_file"], "skillmix_heldout_k3")]


def test_skills_view_and_screenshots_of_every_view(runs, site, tmp_path):
    exe = chromium()
    uri = (site["out"] / "index.html").as_uri()
    data = page_json(site["out"])
    # a header click sorts by it (descending first), a second click reverses
    proc = run_chromium(exe, tmp_path / "sk", "--dump-dom", f"{uri}#view=skills&click=sortcat-heldout,sortcat-heldout")
    assert 'id="skills-view"' in proc.stdout and 'id="skills-view" hidden' not in proc.stdout
    # the per-skill table has one line per skill seen, each with one cell per row
    assert proc.stdout.count("<tr data-skill=") == len(data["skills"]["skills"])
    values = [float(v) for v in re.findall(r'data-col="heldout" data-value="([0-9.]+)"', proc.stdout)]
    assert values == sorted(values) and len(values) == sum("heldout" in c for c in data["skills"]["per_row_category"])
    assert len(set(values)) > 1
    keep = os.environ.get("SKILLMIX_SCREENSHOT_DIR")
    cid = cell_of(data, "student-a", "two-turn", "heldout", 2)
    for name, frag in (("board", "#view=board&metric=full_marks&split=heldout"), ("skills", "#view=skills"),
                       ("samples", f"#view=samples&cell={cid}")):
        shot = tmp_path / f"{name}.png"
        run_chromium(exe, tmp_path / f"shot-{name}", "--hide-scrollbars", "--virtual-time-budget=10000",
                     f"--screenshot={shot}", "--window-size=1400,1000", uri + frag)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / f"leaderboard_{name}.png")


def test_a_file_where_the_item_folder_goes_is_refused_before_any_work(tmp_path, capsys):
    run = tmp_path / "runs" / "m"
    run.mkdir(parents=True)
    (run / "results_2024-01-01T00-00-00.json").write_text(json.dumps({
        "results": {"skillmix_heldout_k2": {"full_marks,judged": 0.5, "unscored,judged": 0}},
        "config": {"model_args": "model=m"}}))
    out = tmp_path / "site"
    out.mkdir()
    (out / "data").write_text("not a folder")
    assert main([str(tmp_path / "runs"), "--out", str(out)]) == 2
    assert f"{out / 'data'} is a file" in capsys.readouterr().err
    assert not (out / "index.html").exists()


def test_one_process_build_writes_what_the_worker_build_writes(runs, site, tmp_path):
    """--jobs 1 runs every job in the main process (and the default, the pool, ran in the fixture)."""
    out = tmp_path / "serial"
    assert main([str(runs["out"]), "--out", str(out), "--baseline", "student-a", "--jobs", "1"]) == 0
    pool = site["out"]
    for name in ("leaderboard.md", "leaderboard.csv", "skills.csv"):
        a, b = ((d / name).read_text(encoding="utf-8") for d in (out, pool))
        assert re.sub(r"Generated [0-9: -]+", "", a) == re.sub(r"Generated [0-9: -]+", "", b), name
    scripts = sorted(p.name for p in (pool / "data").glob("*.js"))
    assert scripts and scripts == sorted(p.name for p in (out / "data").glob("*.js"))
    assert all((out / "data" / s).read_bytes() == (pool / "data" / s).read_bytes() for s in scripts)
    assert {p.name for p in out.glob("*.png")} == {p.name for p in pool.glob("*.png")}
    assert main([str(runs["out"]), "--out", str(out), "--jobs", "0"]) == 2
    # Rebuilt without a baseline: the earlier build's Δ plots go, the others are redrawn.
    assert list(out.glob("plot_delta_*.png")) and main([str(runs["out"]), "--out", str(out), "--jobs", "1"]) == 0
    assert not list(out.glob("plot_delta_*.png")) and (out / "plot_full_marks.png").is_file()


def test_results_of_other_scoring_rules_are_never_one_row(runs):
    """A run graded under the first scoring rules (no judge_scoring_version recorded) and one under the
    current rules, same model and judge: two rows, each labelled with its grading version."""
    from skillmix.leaderboard.table import build_rows
    from skillmix_tasks.scoring import SCORING_VERSION

    data = json.loads(json.dumps(runs["two"]))
    for cfg in data["configs"].values():
        cfg["metadata"].pop("judge_scoring_version", None)
    old, _ = parse_results(data, "old/results_2024-01-01T00-00-00.json")
    new, _ = parse_results(runs["two"], "new/results_2024-01-02T00-00-00.json")
    rows = build_rows(old + new)
    assert len(rows) == 2
    assert sorted(r.judge_prompt_version.split(", ")[-1] for r in rows) == sorted(["skillmix-scoring-v1", SCORING_VERSION])
