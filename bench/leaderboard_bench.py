"""skillmix-leaderboard at scale: 20 models x 3 splits x 6 k x 100 items, results and samples files.

Generates lm-eval-shaped output (``<out>/<model>/results_<ts>.json`` and ``samples_<task>_<ts>.jsonl``
with the judge filter's verdicts: per generation the text, the criteria, the voted rubric, three
gradings and three judge replies) for models of different strength, then times a full
``skillmix-leaderboard`` build (every output: Markdown, CSV, page, per-task item files, plots,
paired bootstrap intervals, per-skill tables) in a fresh process, against a baseline measured in
the same run: a process that only reads and JSON-decodes the same files (the floor for any reader).

Run: python bench/leaderboard_bench.py [--models 20] [--items 100] [--keep DIR]
Targets (issue 17): build < 10 s on 2 cores; the page's first load (index.html) < 5 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from skillmix_tasks.prompts import criteria_for
from skillmix_tasks.sampling import sample_items

SPLITS = ("train", "heldout", "all")
KS = (1, 2, 3, 4, 5, 6)
TS = "2026-01-01T00-00-00.000000"
LEADERBOARD = str(Path(sys.executable).with_name("skillmix-leaderboard"))

READ_ONLY = r"""
import json, sys
from pathlib import Path
n = 0
for f in Path(sys.argv[1]).rglob("*.json*"):
    text = f.read_text(encoding="utf-8")
    for line in (text.split("\n") if f.suffix == ".jsonl" else [text]):
        if line.strip():
            obj = json.loads(line)
            if f.suffix == ".jsonl":
                json.loads(obj["filtered_resps"][0])
            n += 1
print(n)
"""


def reply(criteria, points) -> str:
    rows = "\n".join(f"| {c} | {p} |" for c, p in zip(criteria, points))
    return (f"| Criteria | Points Earned |\n|---|---|\n{rows}\n| Total | {sum(points)} |\n\n"
            "Explanation: the text is set in the topic and uses the first skill through a plain comparison; "
            "the second skill is only named, not shown, and the closing line repeats the opening one, so "
            "that point is not earned. The text reads naturally and keeps to the requested length.")


def generate(root: Path, n_models: int, n_items: int) -> None:
    rng = random.Random(0)
    for mi in range(n_models):
        model = f"model-{mi:02d}"
        strength = 0.35 + 0.6 * mi / max(1, n_models - 1)
        d = root / model
        d.mkdir(parents=True)
        results, configs, n_samples = {}, {}, {}
        for split in SPLITS:
            for k in KS:
                task = f"skillmix_{split}_k{k}"
                lines, fm, unscored = [], [], 0
                for doc_id, item in enumerate(sample_items(split, k, n_items)):
                    crit = [c.label for c in criteria_for(item)]
                    gens = []
                    for r in range(3):
                        pts = [int(rng.random() < strength ** (1 + 0.2 * k)) for _ in crit]
                        if rng.random() < 0.02:
                            gens.append({"id": item.id, "split": split, "k": k, "skills": list(item.skills),
                                         "topic": item.topic, "text": f"Text {r} about {item.topic}.",
                                         "criteria": crit, "status": "unscored", "reason": "unparsable",
                                         "detail": "no table", "voted": {"unscored": "unparsable", "detail": ""},
                                         "gradings": [{"unscored": "unparsable", "detail": ""}] * 3,
                                         "replies": ["I cannot grade this."] * 3, "from_cache": [False] * 3})
                            continue
                        ks = pts[:k]
                        gens.append({"id": item.id, "split": split, "k": k, "skills": list(item.skills),
                                     "topic": item.topic, "judge": "openai:gpt-4o", "prompt_version": "bench",
                                     "text": f"In {item.topic}, generation {r} shows {', '.join(item.skills)} in a few lines.",
                                     "criteria": crit, "status": "scored", "points": pts,
                                     "full_marks": float(all(pts)), "all_skills": float(all(ks) and sum(pts[k:]) >= 2),
                                     "skills_fraction": sum(ks) / k if all(pts[k:]) else 0.0,
                                     "voted": pts, "gradings": [pts] * 3, "replies": [reply(crit, pts)] * 3,
                                     "from_cache": [False] * 3})
                    scored = [g for g in gens if g["status"] == "scored"]
                    if scored:
                        scores = {m: max(g[m] for g in scored) for m in ("full_marks", "all_skills", "skills_fraction")}
                        verdict = {"id": item.id, "judge": "openai:gpt-4o", "prompt_version": "bench",
                                   "scores": scores, "status": "scored", "generations": gens}
                        fm.append(scores)
                        metrics = {**scores, "unscored": 0}
                    else:
                        verdict = {"id": item.id, "judge": "openai:gpt-4o", "prompt_version": "bench", "scores": None,
                                   "status": "unscored", "reason": "unparsable", "generations": gens}
                        unscored += 1
                        metrics = {"unscored": 1}
                    lines.append(json.dumps({"doc_id": doc_id, "doc": item.to_dict(), "target": "",
                                             "resps": [[g["text"] for g in gens]],
                                             "filtered_resps": [json.dumps(verdict)], "filter": "judged", **metrics}))
                (d / f"samples_{task}_{TS}.jsonl").write_text("\n".join(lines) + "\n")
                row = {"alias": task, "unscored,judged": unscored}
                for m in ("full_marks", "all_skills", "skills_fraction"):
                    vals = [s[m] for s in fm]
                    mu = sum(vals) / len(vals)
                    row[f"{m},judged"] = mu
                    row[f"{m}_stderr,judged"] = (sum((v - mu) ** 2 for v in vals) / (len(vals) - 1) / len(vals)) ** 0.5
                results[task] = row
                configs[task] = {"task": task, "metadata": {"judge": "openai:gpt-4o", "judge_prompt_version": "bench"}}
                n_samples[task] = {"original": n_items, "effective": n_items}
        (d / f"results_{TS}.json").write_text(json.dumps({
            "results": results, "configs": configs, "n-samples": n_samples,
            "config": {"model": "hf", "model_args": f"pretrained={model}"}, "model_name": model, "date": 1767225600.0}))


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its workers): on a shared box the CPU time says
    what a quiet 2-core machine would need (about CPU / 2 for the parallel part, CPU for the rest)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=20)
    p.add_argument("--items", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3, help="timed builds (median reported)")
    p.add_argument("--keep", type=Path, help="write the fixture and the site here instead of a temp folder")
    args = p.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="lb-bench-"))
    runs, site = root / "runs", root / "site"
    if runs.exists():
        shutil.rmtree(runs)
    t0 = time.perf_counter()
    generate(runs, args.models, args.items)
    gen_s = time.perf_counter() - t0
    input_mb = sum(f.stat().st_size for f in runs.rglob("*") if f.is_file()) / 1e6
    builds, reads = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        reads.append(timed([sys.executable, "-c", READ_ONLY, str(runs)]))
        builds.append(timed([LEADERBOARD, str(runs), "--out", str(site), "--baseline", "model-00"]))
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    build, read = med([b[0] for b in builds]), med([r[0] for r in reads])
    build_cpu, read_cpu = med([b[1] for b in builds]), med([r[1] for r in reads])
    index_mb = (site / "index.html").stat().st_size / 1e6
    data_files = list((site / "data").glob("*.js"))
    print(json.dumps({
        "models": args.models, "tasks_per_model": len(SPLITS) * len(KS), "items_per_task": args.items,
        "input_MB": round(input_mb, 1), "generate_s": round(gen_s, 1),
        "load_average_1min": round(os.getloadavg()[0], 1), "cpus": os.cpu_count(),
        "build_wall_s_median": round(build, 2), "builds_wall_s": [round(b[0], 2) for b in builds],
        "build_cpu_s_median": round(build_cpu, 2),
        "read_only_baseline_wall_s_median": round(read, 2), "read_only_baseline_cpu_s_median": round(read_cpu, 2),
        "build_vs_read_only_wall": round(build / read, 2), "build_vs_read_only_cpu": round(build_cpu / read_cpu, 2),
        "build_wall_vs_10s_target": round(build / 10, 2),
        "index_html_MB": round(index_mb, 2), "item_files": len(data_files),
        "largest_item_file_MB": round(max(f.stat().st_size for f in data_files) / 1e6, 2),
    }, indent=2))
    if not args.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
