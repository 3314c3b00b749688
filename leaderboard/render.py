"""leaderboard.md, leaderboard.csv, published.csv and index.html from leaderboard rows.

The page's HTML, CSS and JavaScript are package data in ``page/`` (``index.template.html``, ``style.css``,
``app.js``); ``index_html`` inlines them and the data into one index.html at build time.
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import json
import math
import re
from importlib import resources
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


_SLOT = re.compile(r"__([A-Z]+(?:_[A-Z]+)*)__")  # __DATA__, __STATIC_NOTE__, ...: the template's slots


def index_html(data: dict) -> str:
    """The page: ``page/index.template.html`` with ``style.css``, ``app.js`` and the data inlined, so it stays
    one file that needs no network. Every ``__SLOT__`` is filled in one pass over the template only, so no
    inserted text (a model name reading ``__BANNER__``, say) is ever taken for a slot."""
    site = resources.files("skillmix.leaderboard") / "page"
    slots = {"STYLE": (site / "style.css").read_text(encoding="utf-8").rstrip("\n"),
             "SCRIPT": (site / "app.js").read_text(encoding="utf-8").rstrip("\n"),
             "DATA": script_json(data), "STATIC_NOTE": html.escape(data["note"]),
             "BANNER": f'<p class="banner" id="banner">{html.escape(data["banner"])}</p>' if data.get("banner") else ""}
    return _SLOT.sub(lambda m: slots[m.group(1)], (site / "index.template.html").read_text(encoding="utf-8"))

