"""leaderboard.md, leaderboard.csv, published.csv and index.html from leaderboard rows."""

from __future__ import annotations

import csv
import datetime as _dt
import html
import json
import math
import re
from pathlib import Path

from skillmix.leaderboard.plots import METRIC_LABELS, delta_plot_name, plot_name
from skillmix.leaderboard.published import PublishedValue
from skillmix.leaderboard.results import METRICS, SPLIT_LABELS
from skillmix.leaderboard.skills import HELDOUT_CATEGORIES, TRAIN_CATEGORIES, SkillTable, categories_present
from skillmix.leaderboard.table import Row, sort_key

NOTE = ("Means over scored items, ± standard error; n = items evaluated; unscored = items the judge "
        "could not score (left out of the means, never counted as 0); ⚠ = more than 5% of the items "
        "unscored; Δ = difference to the baseline row, paired over the items both scored, with its 95% paired "
        "bootstrap interval in brackets (* = the interval excludes 0; \"unpaired\" = no samples files, so the "
        "difference of the two means without an interval).")
UNSCORED_FLAG_SHARE = 0.05  # a cell with more unscored items than this share of n is flagged


def unscored_flag(n: int | None, unscored: int | None) -> bool:
    """Whether a cell's unscored share is above 5% (its mean then rests on a filtered set of items)."""
    return bool(n and unscored is not None and unscored / n > UNSCORED_FLAG_SHARE)


def _f(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _delta(v: float | None) -> str:
    return "" if v is None else f"{v:+.3f}"


def cell_text(r: Row, metric: str, split: str, k: int) -> str:
    e = r.cells.get((split, k))
    if e is None:
        return ""
    if not e.judged:
        return f"not judged (n={e.n if e.n is not None else '?'})"
    s = e.stats[metric]
    text = _f(s.value) + ("" if s.stderr is None or s.value is None else f" ± {s.stderr:.3f}")
    text += f" (n={e.n if e.n is not None else '?'}, {e.unscored if e.unscored is not None else '?'} unscored)"
    if unscored_flag(e.n, e.unscored):
        text += " ⚠"
    return text + delta_text(r, metric, split, k)


def delta_text(r: Row, metric: str, split: str, k: int) -> str:
    d = r.delta(metric, split, k)
    if d is None:
        return ""
    p = r.paired.get((split, k, metric))
    if p is None:
        return f" Δ {_delta(d)} (unpaired)"
    if p.lo is None:
        return f" Δ {_delta(d)} (paired n={p.n}, no interval)"
    return f" Δ {_delta(d)} [{_delta(p.lo)}, {_delta(p.hi)}]{'*' if p.significant else ''}"


_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")  # emphasis, code, links, table cells, strikethrough
_MD_LEADING = re.compile(r"^([#+\-=>!])")  # block syntax, special only at the start of a line


def _md(s: object) -> str:
    """Text for a Markdown table cell or line: HTML inert (``<`` as an entity), Markdown punctuation
    backslash-escaped, line breaks as spaces, so a name or note shows as typed and nothing more."""
    text = " ".join(str(s).splitlines()).replace("\u2028", " ").replace("\u2029", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_LEADING.sub(r"\\\1", _MD_INLINE.sub(r"\\\1", text))


# ----------------------------------------------------------------------------- markdown
def markdown(rows: list[Row], cols: dict[str, list[int]], metrics: list[str], published: list[PublishedValue],
             files: list[str], warnings: list[str], baseline: str | None, banner: str | None = None,
             skills: SkillTable | None = None) -> str:
    lines = ["# SKILL-MIX leaderboard", ""] + ([f"> **{_md(banner)}**", ""] if banner else []) + [
             f"Generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} from {len(files)} results file(s). {NOTE}"]
    if baseline:
        lines.append(f"Baseline: {_md(baseline)}.")
    lines += ["", "## Measured models", ""]
    if not rows:
        lines.append("No SKILL-MIX results found.")
    else:
        lines += ["| Model | Revision | Protocol | Judge | Training provenance | Last run |", "|---|---|---|---|---|---|"]
        for r in rows:
            name = r.label + (" (baseline)" if r.is_baseline else "")
            lines.append(f"| {_md(name)} | {_md(r.revision or '—')} | {_md(r.protocol)} | {_md(r.judge)}"
                         f"{' / ' + _md(r.judge_prompt_version) if r.judge_prompt_version else ''} | "
                         f"{_md(r.provenance or '—')} | {r.date_str} |")
    for metric in metrics if rows else []:
        lines += ["", f"## {METRIC_LABELS[metric]}", ""]
        for split, ks in cols.items():
            ordered = sorted(rows, key=sort_key(metric, split, cols))
            lines += [f"### {SPLIT_LABELS[split]}", "",
                      "| Model | " + " | ".join(f"k={k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
            for r in ordered:
                lines.append(f"| {_md(r.label)} | " + " | ".join(cell_text(r, metric, split, k) for k in ks) + " |")
            lines.append("")
        lines.append(f"![{METRIC_LABELS[metric]} vs k]({plot_name(metric)})")
        if any(key[2] == metric for r in rows for key in r.paired):
            lines += ["", f"![Δ {METRIC_LABELS[metric]} vs the baseline]({delta_plot_name(metric)})"]
    if skills and rows:
        lines += _skills_markdown(rows, skills)
    if published:
        label = published[0].label
        lines += ["", f"## Reference numbers: {label}", "",
                  "Published by others, not measured here; not comparable row by row (their catalog, "
                  "judge version and sampling differ).", "",
                  "| Source | Model | Variant | Judge | Split | k | Metric | Value |", "|---|---|---|---|---|---|---|---|"]
        for p in published:
            if p.metric in metrics:
                lines.append(f"| {_md(p.source)} | {_md(p.model)} | {_md(p.variant)} | {_md(p.judge)} | "
                             f"{_md(SPLIT_LABELS.get(p.split, p.split))} | {p.k} | {METRIC_LABELS[p.metric]} | {p.value:.2f} |")
    if warnings:
        lines += ["", "## Skipped", ""] + [f"- {_md(w)}" for w in warnings]
    lines += ["", "<details><summary>Results files</summary>", ""] + [f"- {_md(f)}" for f in files] + ["", "</details>", ""]
    return "\n".join(lines)


def _rate(t) -> str:
    return "—" if t is None or not t.items else f"{t.rate:.2f} ({t.earned}/{t.items})"


def _skills_markdown(rows: list[Row], skills: SkillTable) -> list[str]:
    cats = categories_present(skills)
    train = [c for c in cats if c in TRAIN_CATEGORIES]
    held = [c for c in cats if c not in TRAIN_CATEGORIES]
    cols = train + (["train skills"] if train else []) + held + (["held-out skills"] if held else [])
    keys = train + (["train"] if train else []) + held + (["heldout"] if held else [])
    lines = ["", "## Skills", "",
             "Share of the items in which each skill's point was earned (any scored generation, after the name "
             "penalty; earned/items in brackets), pooled over every task of the row; train categories first, "
             "then held-out. Every skill per row: `skills.csv`.", "",
             "| Model | " + " | ".join(_md(c) for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for i, r in enumerate(rows):
        c = skills.per_row_category[i]
        lines.append(f"| {_md(r.label)} | " + " | ".join(_rate(c.get(k)) for k in keys) + " |")
    lines += ["", "### Hardest skills", ""]
    for i, r in enumerate(rows):
        hard = skills.hardest(i)
        if hard:
            lines.append(f"- {_md(r.label)} ({_md(r.protocol)}): " + ", ".join(
                f"{_md(sk)} ({_md(skills.category[sk])}) {_rate(t)}" for sk, t in hard))
    lines += ["", "![Skill points per category](heatmap_categories.png)", "",
              "![Skill points per skill](heatmap_skills.png)"]
    return lines


def write_skills_csv(rows: list[Row], skills: SkillTable, path: Path) -> None:
    """One line per (row, skill): the items it appeared in (scored), how many earned its point, the rate."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writerow = _csv_writer(fh)
        writerow(["model", "display_name", "revision", "protocol", "judge", "skill", "category", "skill_split",
                  "items", "earned", "rate"])
        for i, r in enumerate(rows):
            for sk in skills.skills:
                t = skills.per_row[i].get(sk)
                if t is None:
                    continue
                cat = skills.category[sk]
                side = "train" if cat in TRAIN_CATEGORIES else "heldout" if cat in HELDOUT_CATEGORIES else ""
                writerow([r.model, r.label, r.revision, r.protocol, r.judge, sk, cat, side, t.items, t.earned,
                          round(t.rate, 6)])


# ----------------------------------------------------------------------------- CSV
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(v: object) -> object:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ tab or CR gets a leading
    apostrophe (OWASP's advice); numbers stay numbers."""
    if isinstance(v, str) and v.startswith(_FORMULA_START):
        return "'" + v
    return v


def _csv_writer(fh):
    w = csv.writer(fh)
    return lambda row: w.writerow([csv_cell(v) for v in row])
def write_csv(rows: list[Row], cols: dict[str, list[int]], path: Path) -> None:
    """One line per row; per (split, k): n and unscored, and per metric value, stderr, 95% CI, delta."""
    header = ["model", "display_name", "revision", "protocol", "judge", "judge_prompt_version", "provenance",
              "last_run", "is_baseline", "baseline"]
    for split, ks in cols.items():
        for k in ks:
            header += [f"{split}_k{k}_n", f"{split}_k{k}_unscored", f"{split}_k{k}_unscored_over_5pct"]
            for m in METRICS:
                header += [f"{m}_{split}_k{k}", f"{m}_{split}_k{k}_stderr", f"{m}_{split}_k{k}_ci95_low",
                           f"{m}_{split}_k{k}_ci95_high", f"{m}_{split}_k{k}_delta",
                           f"{m}_{split}_k{k}_delta_ci95_low", f"{m}_{split}_k{k}_delta_ci95_high",
                           f"{m}_{split}_k{k}_delta_n", f"{m}_{split}_k{k}_delta_significant"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writerow = _csv_writer(fh)
        writerow(header)
        for r in rows:
            line = [r.model, r.label, r.revision, r.protocol, r.judge, r.judge_prompt_version, r.provenance,
                    r.date_str, int(r.is_baseline), r.baseline.label if r.baseline else ""]
            for split, ks in cols.items():
                for k in ks:
                    e = r.cells.get((split, k))
                    line += ["" if e is None or e.n is None else e.n, "" if e is None or e.unscored is None else e.unscored,
                             "" if e is None else int(unscored_flag(e.n, e.unscored))]
                    for m in METRICS:
                        s = e.stats[m] if e else None
                        ci = s.ci95() if s else None
                        d = r.delta(m, split, k)
                        line += ["" if s is None or s.value is None else s.value,
                                 "" if s is None or s.stderr is None else s.stderr,
                                 "" if ci is None else round(ci[0], 6), "" if ci is None else round(ci[1], 6),
                                 "" if d is None else round(d, 6)]
                        p = r.paired.get((split, k, m))
                        line += ["" if p is None or p.lo is None else round(p.lo, 6),
                                 "" if p is None or p.hi is None else round(p.hi, 6),
                                 "" if p is None else p.n, "" if p is None else int(p.significant)]
            writerow(line)


def write_published_csv(published: list[PublishedValue], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writerow = _csv_writer(fh)
        writerow(["label", "source", "model", "variant", "judge", "split", "k", "metric", "value"])
        for p in published:
            writerow([p.label, p.source, p.model, p.variant, p.judge, p.split, p.k, p.metric, p.value])


# ----------------------------------------------------------------------------- HTML
def page_data(rows: list[Row], cols: dict[str, list[int]], published: list[PublishedValue], metric: str,
              files: list[str], warnings: list[str], baseline: str | None, plots: dict[str, str],
              banner: str | None = None, skills: SkillTable | None = None, items: dict | None = None) -> dict:
    """What index.html shows; ``plots`` maps each metric to its PNG as a data: URI (the page is one file)."""
    out_rows = []
    items = items or {}
    item_of = {(v["row"], v["task"]): cid for cid, v in items.items()}
    for ri, r in enumerate(rows):
        cells: dict = {}
        for (split, k), e in r.cells.items():
            c = {"n": e.n, "u": e.unscored, "flag": unscored_flag(e.n, e.unscored), "file": e.file, "nj": not e.judged,
                 "items": item_of.get((ri, e.task))}
            for m in METRICS:
                s = e.stats[m]
                ci = s.ci95()
                p = r.paired.get((split, k, m))
                c[m] = {"v": s.value, "se": s.stderr, "lo": ci[0] if ci else None, "hi": ci[1] if ci else None,
                        "d": r.delta(m, split, k), "dlo": p.lo if p else None, "dhi": p.hi if p else None,
                        "dn": p.n if p else None, "sig": bool(p and p.significant)}
            cells.setdefault(split, {})[str(k)] = c
        out_rows.append({"label": r.label, "model": r.model, "revision": r.revision, "protocol": r.protocol,
                         "judge": r.judge, "judge_prompt_version": r.judge_prompt_version,
                         "provenance": r.provenance, "date": r.date_str, "baseline": r.is_baseline,
                         "baseline_of": r.baseline.label if r.baseline else None, "cells": cells})
    default_split = "heldout" if "heldout" in cols else next(iter(cols), "heldout")
    return {"metrics": list(METRICS), "metric_labels": METRIC_LABELS, "split_labels": SPLIT_LABELS,
            "splits": {s: ks for s, ks in cols.items()}, "initial": {"metric": metric, "split": default_split},
            "rows": out_rows, "plots": plots,
            "published": [p.__dict__ for p in published], "files": files, "warnings": warnings,
            "baseline": baseline, "generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "note": NOTE,
            "banner": banner, "skills": _skills_data(rows, skills), "items": items}


def _skills_data(rows: list[Row], skills: SkillTable | None) -> dict | None:
    if skills is None:
        return None
    return {"skills": skills.skills, "category": skills.category, "categories": categories_present(skills),
            "train_categories": list(TRAIN_CATEGORIES),
            "per_row": [{sk: [t.earned, t.items] for sk, t in d.items()} for d in skills.per_row],
            "per_row_category": [{c: [t.earned, t.items] for c, t in d.items()} for d in skills.per_row_category],
            "hardest": [[[sk, t.earned, t.items] for sk, t in skills.hardest(i)] for i in range(len(rows))]}


def _finite(v):
    """``v`` with every non-finite float replaced by None (JSON has no Infinity or NaN)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def script_json(data: object) -> str:
    """JSON safe inside a <script> element: strict JSON (no Infinity/NaN), and <, >, & and the
    JavaScript line separators as escapes, so no text in it (``</script>``, ``<!--<script``) can end
    or comment out the element."""
    text = json.dumps(_finite(data), ensure_ascii=False, allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def index_html(data: dict) -> str:
    payload = script_json(data)
    return (_PAGE.replace("__DATA__", payload)
            .replace("__STATIC_NOTE__", html.escape(data["note"]))
            .replace("__BANNER__", f'<p class="banner" id="banner">{html.escape(data["banner"])}</p>' if data.get("banner") else ""))


_PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline' 'self' file:">
<title>SKILL-MIX leaderboard</title>
<style>
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1d1d1f; }
h1 { margin: 0 0 4px; font-size: 22px; }
.note { color: #555; max-width: 1100px; }
.banner { background: #fdecea; border-left: 4px solid #b3261e; padding: 6px 10px; font-weight: 600; max-width: 1100px; }
.controls { margin: 14px 0; display: flex; gap: 24px; flex-wrap: wrap; }
.controls .group span { font-weight: 600; margin-right: 6px; }
.controls button { border: 1px solid #888; background: #fff; padding: 4px 10px; cursor: pointer; border-radius: 4px; }
.controls button.active { background: #1f5fbf; color: #fff; border-color: #1f5fbf; }
table { border-collapse: collapse; margin: 8px 0 20px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }
th { background: #f2f4f7; cursor: pointer; user-select: none; white-space: nowrap; }
th.sorted-asc::after { content: " ▲"; } th.sorted-desc::after { content: " ▼"; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.num .v { font-weight: 600; }
.sub { color: #666; font-size: 12px; }
.pos { color: #137333; } .neg { color: #b3261e; }
tr.baseline td { background: #fffbe6; }
.flag { color: #b3261e; font-weight: 600; }
.published { border-left: 4px solid #999; padding-left: 12px; margin-top: 28px; }
.published h2 { color: #555; }
.tag { display: inline-block; font-size: 11px; padding: 1px 6px; border-radius: 8px; background: #eee; color: #444; }
.small { font-size: 12px; color: #555; word-break: break-all; }
img.plot { max-width: 100%; border: 1px solid #ddd; }
nav.views { margin: 12px 0; } nav.views button { font-size: 15px; padding: 6px 14px; border: 1px solid #888; background: #fff; border-radius: 4px; cursor: pointer; }
nav.views button.active { background: #1d1d1f; color: #fff; }
.sig { font-weight: 700; }
a.items-link { font-size: 11px; }
.filters { display: flex; gap: 14px; flex-wrap: wrap; align-items: center; margin: 10px 0; }
.filters select { max-width: 420px; }
.item { border: 1px solid #ccc; border-radius: 6px; padding: 8px 12px; margin: 10px 0; max-width: 1200px; }
.item h3 { margin: 0 0 4px; font-size: 15px; }
.skill { display: inline-block; margin: 2px 4px 2px 0; padding: 1px 7px; border-radius: 10px; font-size: 12px; border: 1px solid #bbb; }
.skill.earned { background: #e6f4ea; border-color: #137333; } .skill.missed { background: #fdecea; border-color: #b3261e; }
.outcome { display: inline-block; padding: 1px 8px; border-radius: 4px; font-size: 12px; color: #fff; background: #666; }
.outcome.o-full-marks { background: #137333; } .outcome.o-all-skills { background: #1f5fbf; }
.outcome.o-missed-skills { background: #b06000; } .outcome.o-unscored { background: #b3261e; }
.gen { border-top: 1px dashed #ccc; margin-top: 6px; padding-top: 6px; }
pre.text { white-space: pre-wrap; background: #f7f7f9; padding: 6px 8px; margin: 4px 0; font: 13px/1.4 ui-monospace, monospace; }
table.rubric td, table.rubric th { font-size: 12px; padding: 2px 6px; }
.reason { color: #b3261e; font-weight: 600; }
</style>
</head>
<body>
<h1>SKILL-MIX leaderboard</h1>
__BANNER__
<p class="note" id="note">__STATIC_NOTE__</p>
<noscript><p>This page needs JavaScript for its table; see leaderboard.md and leaderboard.csv next to it.</p></noscript>
<nav class="views" id="views">
  <button type="button" id="view-board" data-view="board">Leaderboard</button>
  <button type="button" id="view-skills" data-view="skills">Skills</button>
  <button type="button" id="view-samples" data-view="samples">Samples</button>
</nav>
<section id="board-view">
<div class="controls">
  <div class="group" id="metric-switch"><span>Metric</span></div>
  <div class="group" id="split-switch"><span>Split</span></div>
</div>
<h2 id="board-title"></h2>
<table id="board"><thead></thead><tbody></tbody></table>
<div id="plot"></div>
<div id="delta-plot"></div>
<div class="published">
  <h2 id="published-title"></h2>
  <p class="note">Published by others, not measured here: never mixed with the rows above (their catalog,
  judge version and sampling differ from this run's).</p>
  <table id="published"><thead></thead><tbody></tbody></table>
</div>
</section>
<section id="skills-view" hidden>
  <p class="note">Share of the items in which each skill's point was earned (by any scored generation, after
  the name penalty), pooled over every task of the row; unscored items count nowhere. Click a header to sort.</p>
  <div id="skills-empty" class="note"></div>
  <h2>Per category: train categories, then held-out</h2>
  <table id="cat-table"><thead></thead><tbody></tbody></table>
  <h2>Hardest skills per model</h2>
  <ul id="hardest"></ul>
  <div id="heatmaps"></div>
  <h2>Per skill</h2>
  <table id="skill-table"><thead></thead><tbody></tbody></table>
</section>
<section id="samples-view" hidden>
  <div class="filters">
    <label>Model and task <select id="sel-cell"></select></label>
    <label>Skill <select id="sel-skill"></select></label>
    <label>Topic <select id="sel-topic"></select></label>
    <label>Outcome <select id="sel-outcome"></select></label>
    <span id="items-count"></span>
  </div>
  <div id="items-status" class="note"></div>
  <div id="items"></div>
</section>
<div id="warnings"></div>
<details><summary>Results files read</summary><ul id="files"></ul></details>
<script type="application/json" id="leaderboard-data">__DATA__</script>
<script>
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("leaderboard-data").textContent);
  var state = {view: "board", metric: D.initial.metric, split: D.initial.split, sort: null, dir: -1,
               cell: null, skill: "", topic: "", outcome: "", catSort: null, catDir: -1, skillSort: null, skillDir: 1};
  var VIEWS = ["board", "skills", "samples"], OUTCOMES = ["full marks", "all skills", "missed skills", "unscored", "not judged"];
  var LOADED = {}, REQUESTED = {};
  var cellIds = Object.keys(D.items || {});
  // per-task item data arrive as data/items_<id>.js scripts (file:// pages cannot fetch() local files)
  window.skillmixItems = function (id, data) { LOADED[id] = data; if (state.view === "samples" && state.cell === id) render(); };
  var splitKeys = Object.keys(D.splits);
  if (splitKeys.indexOf(state.split) < 0 && splitKeys.length) state.split = splitKeys[0];

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var a in (attrs || {})) e.setAttribute(a, attrs[a]);
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function fmt(v, d) { return v === null || v === undefined ? "—" : v.toFixed(d === undefined ? 3 : d); }
  function sgn(v) { return (v >= 0 ? "+" : "") + fmt(v); }
  function rate(t) { return t && t[1] ? t[0] / t[1] : null; }
  function rateText(t) { return t && t[1] ? fmt(t[0] / t[1], 2) + " (" + t[0] + "/" + t[1] + ")" : "—"; }
  function sortableHead(table, cols, key, dir, onSort) {
    var tr = el("tr");
    cols.forEach(function (c) {
      var th = el("th", {id: c.id, "data-col": c.key}, c.title);
      if (c.key === key) th.className = dir > 0 ? "sorted-asc" : "sorted-desc";
      th.addEventListener("click", function () { onSort(c); });
      tr.appendChild(th);
    });
    table.tHead.innerHTML = ""; table.tHead.appendChild(tr);
  }
  function sortRows(list, value, dir) {
    return list.slice().sort(function (a, b) {
      var x = value(a), y = value(b);
      if (x === y) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * dir;
    });
  }

  // --- state from the URL hash: #metric=all_skills&split=train (also a test hook, with &click=id1,id2)
  function readHash() {
    var h = {}, parts = location.hash.replace(/^#/, "").split("&");
    for (var i = 0; i < parts.length; i++) {
      var kv = parts[i].split("=");
      if (kv[0]) h[decodeURIComponent(kv[0])] = decodeURIComponent(kv.slice(1).join("="));
    }
    if (D.metrics.indexOf(h.metric) >= 0) state.metric = h.metric;
    if (splitKeys.indexOf(h.split) >= 0) state.split = h.split;
    if (VIEWS.indexOf(h.view) >= 0) state.view = h.view;
    if (h.cell !== undefined && cellIds.indexOf(h.cell) >= 0) {
      if (h.cell !== state.cell) { state.skill = ""; state.topic = ""; state.outcome = ""; }
      state.cell = h.cell;
    }
    if (h.skill !== undefined) state.skill = h.skill;
    if (h.topic !== undefined) state.topic = h.topic;
    if (h.outcome !== undefined) state.outcome = OUTCOMES.indexOf(h.outcome) >= 0 ? h.outcome : "";
    return h;
  }
  function writeHash() {
    var h = "#view=" + state.view + "&metric=" + state.metric + "&split=" + state.split;
    if (state.view === "samples" && state.cell) {
      h += "&cell=" + encodeURIComponent(state.cell);
      ["skill", "topic", "outcome"].forEach(function (f) { if (state[f]) h += "&" + f + "=" + encodeURIComponent(state[f]); });
    }
    if (location.hash !== h && history.replaceState) history.replaceState(null, "", h);
  }

  function buttons() {
    Array.prototype.forEach.call(document.querySelectorAll("#views button"), function (b) {
      b.addEventListener("click", function () { state.view = b.getAttribute("data-view"); render(); });
    });
    var ms = document.getElementById("metric-switch"), ss = document.getElementById("split-switch");
    D.metrics.forEach(function (m) {
      var b = el("button", {id: "metric-" + m, type: "button", "data-metric": m}, D.metric_labels[m]);
      b.addEventListener("click", function () { state.metric = m; render(); });
      ms.appendChild(b);
    });
    splitKeys.forEach(function (s) {
      var b = el("button", {id: "split-" + s, type: "button", "data-split": s}, D.split_labels[s]);
      b.addEventListener("click", function () { state.split = s; render(); });
      ss.appendChild(b);
    });
  }

  function columns() {
    var ks = D.splits[state.split] || [];
    var cols = [{key: "label", title: "Model", text: true}, {key: "revision", title: "Revision", text: true},
                {key: "protocol", title: "Protocol", text: true}, {key: "judge", title: "Judge", text: true}];
    ks.forEach(function (k) { cols.push({key: "k" + k, k: String(k), title: "k=" + k}); });
    cols.push({key: "mean", title: "Mean over k"});
    cols.push({key: "provenance", title: "Training provenance", text: true});
    return cols;
  }
  function cellOf(r, k) { var s = r.cells[state.split]; return s ? s[k] : undefined; }
  function sortValue(r, col) {
    if (col.text) return (r[col.key] || "").toLowerCase();
    if (col.key === "mean") return meanOf(r);
    var c = cellOf(r, col.k);
    return c && c[state.metric].v !== null ? c[state.metric].v : null;
  }
  function meanOf(r) {
    var ks = D.splits[state.split] || [], sum = 0, n = 0;
    ks.forEach(function (k) { var c = cellOf(r, String(k)); if (c && c[state.metric].v !== null) { sum += c[state.metric].v; n++; } });
    return n ? sum / n : null;
  }

  function render() {
    writeHash();
    VIEWS.forEach(function (v) {
      document.getElementById(v + "-view").hidden = v !== state.view;
      document.getElementById("view-" + v).className = v === state.view ? "active" : "";
    });
    if (state.view === "skills") return renderSkills();
    if (state.view === "samples") return renderSamples();
    var cols = columns();
    if (!state.sort) state.sort = "mean";
    var col = cols.filter(function (c) { return c.key === state.sort; })[0] || cols[cols.length - 2];
    var rows = D.rows.slice().sort(function (a, b) {
      var x = sortValue(a, col), y = sortValue(b, col);
      if (x === y) return a.label < b.label ? -1 : 1;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * state.dir;
    });
    var table = document.getElementById("board");
    table.setAttribute("data-metric", state.metric);
    table.setAttribute("data-split", state.split);
    document.getElementById("board-title").textContent =
      D.metric_labels[state.metric] + " — " + D.split_labels[state.split] + " skills and topics (measured)";
    var thead = table.tHead, tbody = table.tBodies[0];
    thead.innerHTML = ""; tbody.innerHTML = "";
    var tr = el("tr");
    cols.forEach(function (c) {
      var th = el("th", {id: "sort-" + c.key, "data-col": c.key}, c.title);
      if (c.key === col.key) th.className = state.dir > 0 ? "sorted-asc" : "sorted-desc";
      th.addEventListener("click", function () {
        if (state.sort === c.key) state.dir = -state.dir; else { state.sort = c.key; state.dir = c.text ? 1 : -1; }
        render();
      });
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    rows.forEach(function (r) {
      var row = el("tr", {"data-model": r.model, "data-protocol": r.protocol, "data-judge": r.judge,
                          "class": r.baseline ? "baseline" : ""});
      cols.forEach(function (c) {
        var td;
        if (c.key === "label") {
          td = el("td", {title: r.model}, r.label);
          if (r.baseline) { td.appendChild(document.createTextNode(" ")); td.appendChild(el("span", {"class": "tag"}, "baseline")); }
        } else if (c.key === "mean") {
          var m = meanOf(r);
          td = el("td", {"class": "num", "data-value": m === null ? "" : m}, fmt(m));
        } else if (c.text) {
          td = el("td", {"class": c.key === "judge" || c.key === "provenance" ? "small" : ""}, r[c.key] || "—");
          if (c.key === "judge" && r.judge_prompt_version) td.title = "prompt " + r.judge_prompt_version;
        } else {
          var cell = cellOf(r, c.k);
          td = el("td", {"class": "num", "data-k": c.k});
          if (cell) {
            var s = cell[state.metric];
            td.setAttribute("data-value", s.v === null ? "" : s.v);
            td.title = cell.file + (s.lo !== null ? "\n95% CI " + fmt(s.lo) + "–" + fmt(s.hi) : "");
            td.appendChild(el("span", {"class": "v"}, cell.nj ? "not judged" : fmt(s.v)));
            if (s.se !== null && s.v !== null) td.appendChild(document.createTextNode(" ± " + fmt(s.se)));
            var sub = el("div", {"class": "sub"}, "n=" + (cell.n === null ? "?" : cell.n) +
                                 (cell.nj ? ", generated with --predict_only" : ", " + (cell.u === null ? "?" : cell.u) + " unscored"));
            if (cell.flag) {
              td.className += " flagged";
              sub.appendChild(el("span", {"class": "flag", title: "more than 5% of the items unscored: the mean rests on the scored ones only"}, " ⚠"));
            }
            td.appendChild(sub);
            if (s.d !== null) {
              var dt = "Δ " + sgn(s.d) + (s.dlo !== null ? " [" + sgn(s.dlo) + ", " + sgn(s.dhi) + "]" : s.dn ? "" : " (unpaired)") + (s.sig ? " *" : "");
              var dd = el("div", {"class": "sub delta " + (s.d > 0 ? "pos" : s.d < 0 ? "neg" : "") + (s.sig ? " sig" : ""),
                                  "data-sig": s.sig ? "1" : "0"}, dt);
              dd.title = s.dn ? "paired over " + s.dn + " shared items; 95% paired bootstrap interval" +
                (s.sig ? "; excludes 0" : "") : "no samples files: difference of the two means, no interval";
              td.appendChild(dd);
            }
            if (cell.items) {
              var a = el("a", {"class": "items-link", id: "items-" + cell.items,
                               href: "#view=samples&cell=" + encodeURIComponent(cell.items)}, "items ›");
              td.appendChild(a);
            }
          }
        }
        row.appendChild(td);
      });
      tbody.appendChild(row);
    });
    Array.prototype.forEach.call(document.querySelectorAll("#metric-switch button"), function (b) {
      b.className = b.getAttribute("data-metric") === state.metric ? "active" : "";
    });
    Array.prototype.forEach.call(document.querySelectorAll("#split-switch button"), function (b) {
      b.className = b.getAttribute("data-split") === state.split ? "active" : "";
    });
    var plot = document.getElementById("plot");
    plot.innerHTML = "";
    if (D.rows.length) {
      plot.appendChild(el("img", {"class": "plot", id: "plot-img", src: D.plots[state.metric],
                                  alt: D.metric_labels[state.metric] + " against k"}));
    }
    var dplot = document.getElementById("delta-plot");
    dplot.innerHTML = "";
    if (D.plots["delta_" + state.metric]) {
      dplot.appendChild(el("img", {"class": "plot", id: "delta-plot-img", src: D.plots["delta_" + state.metric],
                                   alt: "Δ " + D.metric_labels[state.metric] + " against the baseline"}));
    }
    renderPublished();
  }

  function renderPublished() {
    var pub = D.published.filter(function (p) { return p.metric === state.metric; });
    var t = document.getElementById("published");
    document.getElementById("published-title").textContent =
      "Reference numbers: " + (D.published.length ? D.published[0].label : "published") + " — " + D.metric_labels[state.metric];
    t.tHead.innerHTML = ""; t.tBodies[0].innerHTML = "";
    var tr = el("tr");
    ["Source", "Model", "Variant", "Judge", "Split", "k", "Value"].forEach(function (h) { tr.appendChild(el("th", {}, h)); });
    t.tHead.appendChild(tr);
    pub.forEach(function (p) {
      var r = el("tr", {"class": "published-row"});
      [p.source + " ", p.model, p.variant, p.judge, D.split_labels[p.split] || p.split, String(p.k)].forEach(function (x, i) {
        var td = el("td", {}, x);
        if (i === 0) td.appendChild(el("span", {"class": "tag"}, p.label));
        r.appendChild(td);
      });
      r.appendChild(el("td", {"class": "num"}, fmt(p.value, 2)));
      t.tBodies[0].appendChild(r);
    });
    if (!pub.length) {
      var r = el("tr"); r.appendChild(el("td", {colspan: 7}, "none published for this metric")); t.tBodies[0].appendChild(r);
    }
  }


  // ---------------------------------------------------------------- skills view
  function renderSkills() {
    var S = D.skills;
    document.getElementById("skills-empty").textContent = S ? "" :
      "No samples files beside the results (run lm_eval with --log_samples), so no per-skill numbers.";
    var ct = document.getElementById("cat-table"), st = document.getElementById("skill-table");
    ct.tBodies[0].innerHTML = ""; st.tBodies[0].innerHTML = "";
    document.getElementById("hardest").innerHTML = ""; document.getElementById("heatmaps").innerHTML = "";
    if (!S) { ct.tHead.innerHTML = ""; st.tHead.innerHTML = ""; return; }
    var train = S.categories.filter(function (c) { return S.train_categories.indexOf(c) >= 0; });
    var held = S.categories.filter(function (c) { return S.train_categories.indexOf(c) < 0; });
    var ccols = [{key: "label", id: "sortcat-label", title: "Model", text: true}];
    train.forEach(function (c) { ccols.push({key: c, id: "sortcat-" + c.replace(/ /g, "_"), title: "train: " + c}); });
    if (train.length) ccols.push({key: "train", id: "sortcat-train", title: "all train skills"});
    held.forEach(function (c) { ccols.push({key: c, id: "sortcat-" + c.replace(/ /g, "_"), title: "held-out: " + c}); });
    if (held.length) ccols.push({key: "heldout", id: "sortcat-heldout", title: "all held-out skills"});
    var ckey = state.catSort || (held.length ? "heldout" : "train");
    sortableHead(ct, ccols, ckey, state.catDir, function (c) {
      if (state.catSort === c.key) state.catDir = -state.catDir; else { state.catSort = c.key; state.catDir = c.text ? 1 : -1; }
      renderSkills();
    });
    var idx = D.rows.map(function (_, i) { return i; });
    sortRows(idx, function (i) { return ckey === "label" ? D.rows[i].label.toLowerCase() : rate(S.per_row_category[i][ckey]); },
             state.catDir).forEach(function (i) {
      var tr = el("tr", {"data-model": D.rows[i].model, "data-protocol": D.rows[i].protocol});
      ccols.forEach(function (c) {
        if (c.text) { tr.appendChild(el("td", {title: D.rows[i].model}, D.rows[i].label)); return; }
        var t = S.per_row_category[i][c.key];
        tr.appendChild(el("td", {"class": "num", "data-col": c.key, "data-value": rate(t) === null ? "" : rate(t)}, rateText(t)));
      });
      ct.tBodies[0].appendChild(tr);
    });
    var ul = document.getElementById("hardest");
    D.rows.forEach(function (r, i) {
      if (!S.hardest[i].length) return;
      var li = el("li", {"data-model": r.model, "data-protocol": r.protocol}, r.label + " (" + r.protocol + "): ");
      S.hardest[i].forEach(function (h, j) {
        li.appendChild(el("span", {"class": "skill missed", title: S.category[h[0]]},
                          h[0] + " " + rateText([h[1], h[2]])));
      });
      ul.appendChild(li);
    });
    var hm = document.getElementById("heatmaps");
    ["heatmap_categories", "heatmap_skills"].forEach(function (k) {
      if (D.plots[k]) hm.appendChild(el("img", {"class": "plot", id: k, src: D.plots[k], alt: k.replace("_", " ")}));
    });
    var scols = [{key: "skill", id: "sortskill-skill", title: "Skill", text: true},
                 {key: "category", id: "sortskill-category", title: "Category", text: true}];
    D.rows.forEach(function (r, i) { scols.push({key: "r" + i, id: "sortskill-r" + i, title: r.label, row: i}); });
    var skey = state.skillSort || "category";
    sortableHead(st, scols, skey, state.skillDir, function (c) {
      if (state.skillSort === c.key) state.skillDir = -state.skillDir; else { state.skillSort = c.key; state.skillDir = c.text ? 1 : -1; }
      renderSkills();
    });
    var col = scols.filter(function (c) { return c.key === skey; })[0] || scols[1];
    sortRows(S.skills, function (sk) {
      if (col.key === "skill") return sk.toLowerCase();
      if (col.key === "category") return (S.train_categories.indexOf(S.category[sk]) >= 0 ? "0" : "1") + S.category[sk] + "|" + sk.toLowerCase();
      return rate(S.per_row[col.row][sk]);
    }, state.skillDir).forEach(function (sk) {
      var tr = el("tr", {"data-skill": sk});
      tr.appendChild(el("td", {}, sk));
      tr.appendChild(el("td", {"class": "small"}, (S.train_categories.indexOf(S.category[sk]) >= 0 ? "train: " : "held-out: ") + S.category[sk]));
      D.rows.forEach(function (r, i) {
        var t = S.per_row[i][sk];
        tr.appendChild(el("td", {"class": "num", "data-col": "r" + i, "data-value": rate(t) === null ? "" : rate(t)}, rateText(t)));
      });
      st.tBodies[0].appendChild(tr);
    });
  }

  // ---------------------------------------------------------------- sample browser
  function cellLabel(id) {
    var c = D.items[id], r = D.rows[c.row];
    return r.label + " (" + r.protocol + ") — " + c.task + " — " + c.n + " items";
  }
  function fillSelect(sel, values, current, allLabel) {
    sel.innerHTML = "";
    if (allLabel !== null) sel.appendChild(el("option", {value: ""}, allLabel));
    values.forEach(function (v) {
      var o = el("option", {value: v[0]}, v[1]);
      if (v[0] === current) o.selected = true;
      sel.appendChild(o);
    });
    sel.value = current;
  }
  function renderSamples() {
    var status = document.getElementById("items-status"), list = document.getElementById("items");
    if (!cellIds.length) {
      status.textContent = "No samples files beside the results (run lm_eval with --log_samples).";
      list.innerHTML = ""; return;
    }
    if (!state.cell) state.cell = cellIds[0];
    fillSelect(document.getElementById("sel-cell"), cellIds.map(function (id) { return [id, cellLabel(id)]; }), state.cell, null);
    var data = LOADED[state.cell];
    if (!data) {
      status.textContent = "loading " + D.items[state.cell].file + " …";
      list.innerHTML = "";
      if (!REQUESTED[state.cell]) {
        REQUESTED[state.cell] = true;
        var id = state.cell, sc = el("script", {src: D.items[id].file});
        sc.onerror = function () { status.textContent = "could not load " + D.items[id].file + " (is the data/ folder next to index.html?)"; };
        document.body.appendChild(sc);
      }
      return;
    }
    var skills = {}, topics = {};
    data.items.forEach(function (it) { it.skills.forEach(function (s) { skills[s] = 1; }); topics[it.topic] = 1; });
    fillSelect(document.getElementById("sel-skill"), Object.keys(skills).sort().map(function (s) { return [s, s + " (" + (data.categories[s] || "?") + ")"]; }), state.skill, "every skill");
    fillSelect(document.getElementById("sel-topic"), Object.keys(topics).sort().map(function (t) { return [t, t]; }), state.topic, "every topic");
    fillSelect(document.getElementById("sel-outcome"), OUTCOMES.map(function (o) { return [o, o]; }), state.outcome, "every outcome");
    var shown = data.items.filter(function (it) {
      return (!state.skill || it.skills.indexOf(state.skill) >= 0) && (!state.topic || it.topic === state.topic) &&
             (!state.outcome || it.outcome === state.outcome);
    });
    status.textContent = data.row + " (" + data.protocol + "), " + data.task + "; judge " + data.judge +
      (data.samples ? "; from " + data.samples : "");
    document.getElementById("items-count").textContent = shown.length + " of " + data.items.length + " items";
    list.innerHTML = "";
    shown.forEach(function (it) { list.appendChild(itemCard(it, data)); });
  }
  function itemCard(it, data) {
    var card = el("div", {"class": "item", "data-item-id": it.id, "data-outcome": it.outcome, "data-topic": it.topic});
    var h = el("h3", {}, it.id + " — " + it.topic + " ");
    h.appendChild(el("span", {"class": "outcome o-" + it.outcome.replace(/ /g, "-")}, it.outcome));
    card.appendChild(h);
    var sk = el("div", {"class": "skills"});
    it.skills.forEach(function (s, i) {
      var cls = it.sp ? (it.sp[i] ? " earned" : " missed") : "";
      sk.appendChild(el("span", {"class": "skill" + cls, "data-skill": s, title: (data.categories[s] || "") +
                        (it.sp ? (it.sp[i] ? ": point earned" : ": point missed") : "")}, s));
    });
    card.appendChild(sk);
    if (it.scores) {
      card.appendChild(el("div", {"class": "sub"}, D.metrics.map(function (m) {
        return D.metric_labels[m] + " " + fmt(it.scores[m], 2); }).join(" · ") + " (max over generations)"));
    }
    if (it.reason) card.appendChild(el("div", {"class": "reason"}, "unscored: " + it.reason));
    it.gens.forEach(function (g, gi) {
      var box = el("div", {"class": "gen", "data-gen": gi});
      box.appendChild(el("div", {"class": "sub"}, "generation " + (gi + 1) + " — " + g.status + (g.reason ? ": " + g.reason : "")));
      if (g.draft !== null && g.draft !== undefined) {
        box.appendChild(el("div", {"class": "sub"}, "turn-1 draft"));
        box.appendChild(el("pre", {"class": "text draft"}, g.draft));
        box.appendChild(el("div", {"class": "sub"}, "final answer (turn 2, graded)"));
      } else {
        box.appendChild(el("div", {"class": "sub"}, "final answer (graded)"));
      }
      box.appendChild(el("pre", {"class": "text answer"}, g.text || "(empty)"));
      if (g.criteria.length) {
        var t = el("table", {"class": "rubric"}), tr = el("tr");
        ["Criterion", "Judges' vote"].concat(g.gradings.map(function (_, i) { return "grading " + (i + 1); }), ["Point (after rules)"])
          .forEach(function (x) { tr.appendChild(el("th", {}, x)); });
        t.appendChild(tr);
        g.criteria.forEach(function (c, ci) {
          var row = el("tr");
          row.appendChild(el("td", {}, c));
          row.appendChild(el("td", {"class": "num"}, g.voted ? String(g.voted[ci]) : "—"));
          g.gradings.forEach(function (gr) { row.appendChild(el("td", {"class": "num"}, Array.isArray(gr) ? String(gr[ci]) : "—")); });
          row.appendChild(el("td", {"class": "num"}, g.points.length ? String(g.points[ci]) : "—"));
          t.appendChild(row);
        });
        box.appendChild(t);
      }
      g.gradings.forEach(function (gr, i) {
        if (!Array.isArray(gr)) box.appendChild(el("div", {"class": "reason"}, "grading " + (i + 1) + " unscored: " + gr.unscored));
      });
      g.replies.forEach(function (rep, i) {
        var d = el("details", {"class": "reply"});
        d.appendChild(el("summary", {}, "grading " + (i + 1) + ": the judge's reply and explanation"));
        d.appendChild(el("pre", {"class": "text"}, rep));
        box.appendChild(d);
      });
      card.appendChild(box);
    });
    return card;
  }
  ["skill", "topic", "outcome", "cell"].forEach(function (f) {
    document.getElementById("sel-" + f).addEventListener("change", function (ev) {
      if (f === "cell") { state.skill = ""; state.topic = ""; state.outcome = ""; }
      state[f] = ev.target.value; render();
    });
  });

  function extras() {
    var ul = document.getElementById("files");
    D.files.forEach(function (f) { ul.appendChild(el("li", {"class": "small"}, f)); });
    if (D.warnings.length) {
      var w = document.getElementById("warnings");
      w.appendChild(el("h2", {}, "Skipped"));
      var list = el("ul");
      D.warnings.forEach(function (x) { list.appendChild(el("li", {"class": "small"}, x)); });
      w.appendChild(list);
    }
    document.getElementById("note").textContent = D.note + " Generated " + D.generated +
      (D.baseline ? "; baseline: " + D.baseline : "") + ". Click a column header to sort.";
  }

  buttons();
  extras();
  var h = readHash();
  render();
  if (h.click) h.click.split(",").forEach(function (id) { var b = document.getElementById(id); if (b) b.click(); });
  if (h.select) h.select.split(",").forEach(function (kv) {  // test hook: select-id:value, through the change handler
    var i = kv.indexOf(":"), sel = document.getElementById(kv.slice(0, i));
    if (sel) { sel.value = kv.slice(i + 1); sel.dispatchEvent(new Event("change")); }
  });
  window.addEventListener("hashchange", function () { readHash(); render(); });
})();
</script>
</body>
</html>
"""
