"""leaderboard.md, leaderboard.csv, published.csv and index.html from leaderboard rows."""

from __future__ import annotations

import csv
import datetime as _dt
import html
import json
import math
import re
from pathlib import Path

from skillmix.leaderboard.plots import METRIC_LABELS, plot_name
from skillmix.leaderboard.published import PublishedValue
from skillmix.leaderboard.results import METRICS, SPLIT_LABELS
from skillmix.leaderboard.table import Row, sort_key

NOTE = ("Means over scored items, ± standard error; n = items evaluated; unscored = items the judge "
        "could not score (left out of the means, never counted as 0); ⚠ = more than 5% of the items "
        "unscored; Δ = difference to the baseline row.")
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
    s = e.stats[metric]
    text = _f(s.value) + ("" if s.stderr is None or s.value is None else f" ± {s.stderr:.3f}")
    text += f" (n={e.n if e.n is not None else '?'}, {e.unscored if e.unscored is not None else '?'} unscored)"
    if unscored_flag(e.n, e.unscored):
        text += " ⚠"
    d = r.delta(metric, split, k)
    return text + (f" Δ {_delta(d)}" if d is not None else "")


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
             files: list[str], warnings: list[str], baseline: str | None, banner: str | None = None) -> str:
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
                           f"{m}_{split}_k{k}_ci95_high", f"{m}_{split}_k{k}_delta"]
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
              banner: str | None = None) -> dict:
    """What index.html shows; ``plots`` maps each metric to its PNG as a data: URI (the page is one file)."""
    out_rows = []
    for r in rows:
        cells: dict = {}
        for (split, k), e in r.cells.items():
            c = {"n": e.n, "u": e.unscored, "flag": unscored_flag(e.n, e.unscored), "file": e.file}
            for m in METRICS:
                s = e.stats[m]
                ci = s.ci95()
                c[m] = {"v": s.value, "se": s.stderr, "lo": ci[0] if ci else None, "hi": ci[1] if ci else None,
                        "d": r.delta(m, split, k)}
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
            "banner": banner}


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
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
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
</style>
</head>
<body>
<h1>SKILL-MIX leaderboard</h1>
__BANNER__
<p class="note" id="note">__STATIC_NOTE__</p>
<noscript><p>This page needs JavaScript for its table; see leaderboard.md and leaderboard.csv next to it.</p></noscript>
<div class="controls">
  <div class="group" id="metric-switch"><span>Metric</span></div>
  <div class="group" id="split-switch"><span>Split</span></div>
</div>
<h2 id="board-title"></h2>
<table id="board"><thead></thead><tbody></tbody></table>
<div id="plot"></div>
<div class="published">
  <h2 id="published-title"></h2>
  <p class="note">Published by others, not measured here: never mixed with the rows above (their catalog,
  judge version and sampling differ from this run's).</p>
  <table id="published"><thead></thead><tbody></tbody></table>
</div>
<div id="warnings"></div>
<details><summary>Results files read</summary><ul id="files"></ul></details>
<script type="application/json" id="leaderboard-data">__DATA__</script>
<script>
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("leaderboard-data").textContent);
  var state = {metric: D.initial.metric, split: D.initial.split, sort: null, dir: -1};
  var splitKeys = Object.keys(D.splits);
  if (splitKeys.indexOf(state.split) < 0 && splitKeys.length) state.split = splitKeys[0];

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var a in (attrs || {})) e.setAttribute(a, attrs[a]);
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function fmt(v, d) { return v === null || v === undefined ? "—" : v.toFixed(d === undefined ? 3 : d); }

  // --- state from the URL hash: #metric=all_skills&split=train (also a test hook, with &click=id1,id2)
  function readHash() {
    var h = {}, parts = location.hash.replace(/^#/, "").split("&");
    for (var i = 0; i < parts.length; i++) {
      var kv = parts[i].split("=");
      if (kv[0]) h[decodeURIComponent(kv[0])] = decodeURIComponent(kv.slice(1).join("="));
    }
    if (D.metrics.indexOf(h.metric) >= 0) state.metric = h.metric;
    if (splitKeys.indexOf(h.split) >= 0) state.split = h.split;
    return h;
  }
  function writeHash() {
    var h = "#metric=" + state.metric + "&split=" + state.split;
    if (location.hash !== h && history.replaceState) history.replaceState(null, "", h);
  }

  function buttons() {
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
            td.appendChild(el("span", {"class": "v"}, fmt(s.v)));
            if (s.se !== null && s.v !== null) td.appendChild(document.createTextNode(" ± " + fmt(s.se)));
            var sub = el("div", {"class": "sub"}, "n=" + (cell.n === null ? "?" : cell.n) + ", " +
                                 (cell.u === null ? "?" : cell.u) + " unscored");
            if (cell.flag) {
              td.className += " flagged";
              sub.appendChild(el("span", {"class": "flag", title: "more than 5% of the items unscored: the mean rests on the scored ones only"}, " ⚠"));
            }
            td.appendChild(sub);
            if (s.d !== null) {
              td.appendChild(el("div", {"class": "sub " + (s.d > 0 ? "pos" : s.d < 0 ? "neg" : "")},
                                "Δ " + (s.d >= 0 ? "+" : "") + fmt(s.d)));
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
  window.addEventListener("hashchange", function () { readHash(); render(); });
})();
</script>
</body>
</html>
"""
