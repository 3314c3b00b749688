"""skillmix-leaderboard: a leaderboard (Markdown, CSV, static HTML, plots) from lm-eval results JSONs.

    skillmix-leaderboard runs/ more_runs/ --out leaderboard/site --baseline meta-llama/Llama-2-13b-chat-hf
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path

from skillmix_tasks.outputs import OutputPathError, check_output_dir

from skillmix.leaderboard.browser import DATA_DIR, start_items
from skillmix.leaderboard.paired import compare, warm_up
from skillmix.leaderboard.plots import (delta_plot_name, plot_delta, plot_heatmaps, plot_metric, plot_name,
                                        row_labels)
from skillmix.leaderboard.published import load_published
from skillmix.leaderboard.render import (index_html, markdown, page_data, write_csv, write_published_csv,
                                         write_skills_csv)
from skillmix.leaderboard.results import METRICS, load
from skillmix.harness.verdicts import samples_beside
from skillmix.leaderboard.skills import skill_table
from skillmix.leaderboard.table import BaselineError, build_rows, columns, set_baseline
from skillmix.leaderboard.workers import Workers

OUTPUT_FILES = ("leaderboard.md", "leaderboard.csv", "published.csv", "index.html", "skills.csv",
                "heatmap_categories.png", "heatmap_skills.png",
                *(plot_name(m) for m in METRICS), *(delta_plot_name(m) for m in METRICS))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="skillmix-leaderboard", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="folders searched recursively for results_*.json (lm_eval --output_path), or files")
    p.add_argument("--out", required=True, type=Path,
                   help="output folder: leaderboard.md, leaderboard.csv, published.csv, index.html, plot_<metric>.png")
    p.add_argument("--baseline", metavar="MODEL",
                   help="model (name, path, or its shown label) the deltas are taken against")
    p.add_argument("--metric", choices=METRICS,
                   help="the only metric in leaderboard.md and the HTML page's initial metric (default: all, full_marks first)")
    p.add_argument("--all", action="store_true",
                   help="a row per results file instead of the newest result per (model, task, protocol, judge)")
    p.add_argument("--published", type=Path, help="published reference numbers (YAML; default: the bundled file)")
    p.add_argument("--note", help="a line shown above the tables (e.g. that the judge is a demo, not a real grader)")
    p.add_argument("--no-published", action="store_true", help="leave out the published reference rows")
    p.add_argument("--jobs", "-j", type=int, metavar="N",
                   help="worker processes reading samples files and drawing heatmaps (default: the CPUs, at "
                        "most 8; 1: everything in this process)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        print(f"skillmix-leaderboard: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    for d in args.run_dirs:
        if not Path(d).exists():
            print(f"skillmix-leaderboard: {d} does not exist", file=sys.stderr)
            return 2
    try:
        # A results file named as a run may sit where an output goes; run folders may hold the site.
        check_output_dir(args.out, files=OUTPUT_FILES, inputs=[d for d in args.run_dirs if Path(d).is_file()])
    except OutputPathError as e:
        print(f"skillmix-leaderboard: {e}", file=sys.stderr)
        return 2
    data_dir = args.out / DATA_DIR
    if os.path.lexists(data_dir) and not data_dir.is_dir():
        print(f"skillmix-leaderboard: {data_dir} is a file; the sample browser's folder goes there", file=sys.stderr)
        return 2
    loaded = load(args.run_dirs)
    for w in loaded.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for f in loaded.ignored:
        print(f"note: no SKILL-MIX task in {f}; ignored", file=sys.stderr)
    rows = build_rows(loaded.entries, keep_all=args.all)
    if args.baseline:
        try:
            set_baseline(rows, args.baseline)
        except BaselineError as e:
            print(f"skillmix-leaderboard: {e}", file=sys.stderr)
            return 2
    for r in rows:  # only the samples of the results shown are read
        for e in r.cells.values():
            f = samples_beside(e.file, e.task, e.protocol)
            e.samples_file = str(f) if f is not None else ""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    cols = columns(rows)
    plots = {}
    samples_files = sum(bool(e.samples_file) for r in rows for e in r.cells.values())
    with Workers(args.jobs, jobs=samples_files) as workers:
        # The workers read the samples while this process draws what needs only the results.
        pending_items = start_items(rows, out, workers)
        for m in METRICS:
            plots[m] = _data_uri(plot_metric(rows, m, cols, out))
        warm_up(rows)
        items, sample_warnings = pending_items()
        skills = skill_table(rows)
        heatmaps = workers.submit(plot_heatmaps, row_labels(rows), skills, out) if skills else list
        compare(rows)
        for m in METRICS:
            delta = plot_delta(rows, m, cols, out)
            if delta is not None:
                plots[f"delta_{m}"] = _data_uri(delta)
            else:  # no baseline this time: an earlier build's Δ plot would be stale
                (out / delta_plot_name(m)).unlink(missing_ok=True)
        for png in heatmaps():
            plots[png.stem] = _data_uri(png)
    for w in sample_warnings:
        print(f"warning: {w}", file=sys.stderr)
    warnings = loaded.warnings + sample_warnings
    published = [] if args.no_published else load_published(args.published)
    metrics = [args.metric] if args.metric else list(METRICS)
    for stale in [] if skills else [out / "heatmap_categories.png", out / "heatmap_skills.png", out / "skills.csv"]:
        stale.unlink(missing_ok=True)
    if skills:
        write_skills_csv(rows, skills, out / "skills.csv")
    (out / "leaderboard.md").write_text(
        markdown(rows, cols, metrics, published, loaded.files, warnings, args.baseline, args.note, skills),
        encoding="utf-8")
    write_csv(rows, cols, out / "leaderboard.csv")
    write_published_csv(published, out / "published.csv")
    data = page_data(rows, cols, published, args.metric or "full_marks", loaded.files, warnings,
                     args.baseline, plots, args.note, skills, items)
    (out / "index.html").write_text(index_html(data), encoding="utf-8")
    print(f"{len(rows)} measured row(s) from {len(loaded.files)} results file(s) "
          f"({len(loaded.warnings)} warning(s)) -> {out}/index.html, leaderboard.md, leaderboard.csv")
    return 0


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


if __name__ == "__main__":
    sys.exit(main())
