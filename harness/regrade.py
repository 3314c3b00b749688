"""``skillmix-grade``: (re)grade saved texts with one or more judges, without regenerating.

    skillmix-grade --judge openai:gpt-4o --input runs/.../samples_skillmix_heldout_k3_*.jsonl --output grades.jsonl
    skillmix-grade --judge openai:gpt-4o --judge anthropic:claude-sonnet-4-5 --input texts.jsonl --output g.jsonl
    skillmix-grade --judge openai:gpt-4o --input texts.jsonl --dry-run
    skillmix-grade --judge openai:gpt-4o --batch --input samples.jsonl --output g.jsonl   # Batch API, half price
    skillmix-grade --judge openai:gpt-4o --batch --input runs/M/samples_skillmix_heldout_k3_<ts>.jsonl \
                   --output g.jsonl --results-dir runs/graded/     # after lm_eval --predict_only; leaderboard input

Input lines are lm-eval samples of one SKILL-MIX task of either protocol (read by ``verdicts``: the
final turn of each generation is graded, its text after the last ``Answer:``; a file mixing protocols,
judges or catalogs for one item, or holding one item twice, is refused) or ``{"id", "skills", "topic",
"text"}`` (an id may repeat: several generations of one item). Writes one line per (judge, text) to
OUT and a summary to OUT.summary.json (also printed).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

from skillmix_tasks.catalog import default_catalog
from skillmix_tasks.jsonl import iter_objects
from skillmix_tasks.metrics import item_metrics, summarize
from skillmix_tasks.outputs import OutputPathError, check_output_file
from skillmix_tasks.prompts import PROMPT_VERSION
from skillmix_tasks.protocol import METRICS
from skillmix_tasks.scoring import SCORING_VERSION
from skillmix_tasks.sampling import Item

from skillmix.grading.agreement import agreement_report
from skillmix.grading.batch import BatchPending
from skillmix.grading.cost import Budget
from skillmix.grading.judge import Judge, TextGrade
from skillmix.grading.specs import JudgeConfigError, choose_spec, load_config_file, make_settings

from .results import ResultsError, template_for, write_results
from .verdicts import Sample, SamplesError, check_one_run, parse_sample

log = logging.getLogger("skillmix.harness.regrade")


class InputError(ValueError):
    pass


class NothingScored(RuntimeError):
    """No judge scored any text (every call failed: a bad key, a wrong URL, the budget...);
    ``summary`` says what the run did, as a successful run reports it."""

    def __init__(self, message: str, summary: dict):
        super().__init__(message)
        self.summary = summary


def nothing_scored(spec: str, grades: Sequence[TextGrade]) -> str | None:
    """Why ``spec`` scored none of ``grades``, or None if it scored any."""
    if not grades or any(g.scored for g in grades):
        return None
    reasons: dict[str, int] = {}
    for g in grades:
        reasons[g.score.reason] = reasons.get(g.score.reason, 0) + 1  # type: ignore[union-attr]
    detail = next((g.score.detail for g in grades if g.score.detail), "")  # type: ignore[union-attr]
    return (f"judge {spec} scored none of the {len(grades)} texts ("
            + ", ".join(f"{r}: {n}" for r, n in reasons.items()) + ")" + (f"; e.g. {detail[:300]}" if detail else ""))


def _item(d: Any, where: str) -> Item:
    if not isinstance(d, dict):
        raise InputError(f"{where}: expected an object with id, skills, topic")
    missing = [k for k in ("id", "skills", "topic") if k not in d]
    if missing:
        raise InputError(f"{where}: missing field(s) {', '.join(missing)}")
    skills = d["skills"]
    if not isinstance(skills, list) or not skills or not all(isinstance(s, str) for s in skills):
        raise InputError(f"{where}: 'skills' must be a non-empty list of skill names")
    if not isinstance(d["topic"], str) or not d["topic"].strip():
        raise InputError(f"{where}: 'topic' must be a non-empty string")
    catalog = default_catalog()
    for s in skills:
        try:
            catalog.skill(s)
        except KeyError:
            raise InputError(f"{where}: unknown skill {s!r} (not in the catalog)") from None
    try:
        item = Item.from_dict(d)
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: {e}") from None
    if item.k != len(item.skills):
        raise InputError(f"{where}: k={item.k} but {len(item.skills)} skills given")
    return item


def read_pairs(path: str | Path) -> list[tuple[Item, str]]:
    """(item, text) pairs from an lm-eval samples file (either protocol) or a plain JSONL file.

    Samples are read through ``verdicts`` (the final turn of each generation, never a draft); samples
    that would pool wrongly (two protocols, judges or catalogs for one item, or one item twice) are
    refused with their doc ids."""
    path = Path(path)
    pairs: list[tuple[Item, str]] = []
    samples: list[Sample] = []
    for n, obj in iter_objects(path, InputError):
        where = f"{path}:{n}"
        if "doc" in obj:
            try:
                sample = parse_sample(obj, where)
                texts = sample.final_texts()
            except SamplesError as e:
                raise InputError(str(e)) from None
            samples.append(sample)
            pairs.extend((_item(obj["doc"], where), t) for t in texts)
        elif "text" in obj:
            if not isinstance(obj["text"], str):
                raise InputError(f"{where}: 'text' must be a string")
            pairs.append((_item(obj, where), obj["text"]))
        else:
            raise InputError(f"{where}: expected an lm-eval sample (doc and its verdict) or {{id, skills, topic, text}}")
    try:
        check_one_run(samples)
    except SamplesError as e:
        raise InputError(f"{path}: {e}") from None
    if not pairs:
        raise InputError(f"{path}: no texts to grade")
    return pairs


def summarize_grades(grades: Sequence[TextGrade], judge: Judge) -> dict:
    """The three metrics (item = max over its generations, task = mean over items) and counts."""
    by_item: OrderedDict[str, list] = OrderedDict()
    for g in grades:
        by_item.setdefault(g.item.id, []).append(g.score)
    task = summarize(item_metrics(scores) for scores in by_item.values()).to_dict()
    texts_unscored: dict[str, int] = {}
    for g in grades:
        if not g.scored:
            texts_unscored[g.score.reason] = texts_unscored.get(g.score.reason, 0) + 1  # type: ignore[union-attr]
    return {
        "judge": judge.spec, "prompt_version": PROMPT_VERSION, "scoring_version": SCORING_VERSION,
        "n_gradings": judge.settings.n_gradings,
        "metrics": {m: {"mean": task[m], "stderr": task[f"{m}_stderr"], "ci95": task[f"{m}_ci95"]}
                    for m in METRICS},
        "items": {"n": task["n_items"], "scored": task["n_scored"], "unscored_by_reason": task["unscored_by_reason"]},
        "texts": {"n": len(grades), "scored": len(grades) - sum(texts_unscored.values()),
                  "unscored_by_reason": texts_unscored},
        "stats": judge.stats.to_dict(),
    }


def _dumps(obj: Any, **kw: Any) -> str:
    # NaN (stderr of one item) is not JSON: write null.
    return json.dumps(_nan_to_none(obj), ensure_ascii=False, **kw)


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    return x


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skillmix-grade", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--judge", action="append", help="judge spec; repeat for several judges and an agreement report "
                   "(default: the config file's judge, then $SKILLMIX_JUDGE)")
    p.add_argument("--config", help="YAML judge config: judge: <spec> plus settings (temperature, max_tokens, ...)")
    p.add_argument("--input", required=True, help="lm-eval samples_*.jsonl or JSONL of {id, skills, topic, text}")
    p.add_argument("--output", help="per-text grades (JSONL); the summary goes to <output stem>.summary.json")
    p.add_argument("--dry-run", action="store_true", help="estimate calls, tokens and cost; call nothing")
    p.add_argument("--max-cost", type=float, help="USD for this run (all judges); calls past it are unscored: budget")
    p.add_argument("--concurrency", type=int)
    p.add_argument("--cache", help="SQLite cache path ('off' for none; default $SKILLMIX_CACHE or ~/.cache/skillmix/judge.sqlite)")
    p.add_argument("--n-gradings", type=int)
    p.add_argument("--temperature", type=float)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--system-prompt")
    p.add_argument("--timeout", type=float)
    p.add_argument("--max-retries", type=int)
    p.add_argument("--choices-per-call", type=int, metavar="N",
                   help="gradings of one text asked for in one request, as the API's n (default: all of them "
                        "for openai:, 1 elsewhere; vLLM takes n too). The prompt is sent and billed once a request")
    p.add_argument("--batch", action="store_true",
                   help="grade through the provider's Batch API (openai:, anthropic:): half the price, outside the "
                        "online rate limits, results within 24 h. Resumable: a killed or --no-wait run's batches "
                        "are collected by the same command run again")
    p.add_argument("--no-wait", action="store_true",
                   help="with --batch: submit what is not cached or already submitted, then exit; run the same "
                        "command later to collect and write the output")
    p.add_argument("--results-dir", metavar="DIR",
                   help="for an lm-eval samples --input: also write an lm-eval results file per judge under DIR "
                        "(the --predict_only run's results_<ts>.json with the judged metrics), which "
                        "skillmix-leaderboard reads")
    p.add_argument("--poll-interval", type=float, metavar="SECONDS",
                   help="with --batch: seconds between status polls (default 60)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the whole summary as JSON (default: a short table)")
    return p


def summary_path(output: str | Path) -> Path:
    out = Path(output)
    return out.with_name((out.stem if out.suffix == ".jsonl" else out.name) + ".summary.json")


def run(args: argparse.Namespace) -> dict:
    config = load_config_file(args.config) if args.config else {}
    overrides = {"concurrency": args.concurrency, "cache": args.cache, "n_gradings": args.n_gradings,
                 "temperature": args.temperature, "max_tokens": args.max_tokens,
                 "system_prompt": args.system_prompt, "timeout": args.timeout, "max_retries": args.max_retries,
                 "max_cost": args.max_cost, "choices_per_call": args.choices_per_call,
                 "batch": True if args.batch else None, "batch_wait": False if args.no_wait else None,
                 "batch_poll_interval": args.poll_interval}
    settings = make_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    specs = [choose_spec(s, None) for s in args.judge] if args.judge else \
        [choose_spec(None, config, command="skillmix-grade")]
    if len({str(s) for s in specs}) != len(specs):
        raise JudgeConfigError("the same judge is named twice")
    if args.no_wait and not settings.batch:
        raise JudgeConfigError("--no-wait needs --batch (or batch: true in the config)")
    budget = Budget(settings.max_cost) if settings.max_cost is not None else None  # shared by all judges
    judges = [Judge(s, settings, budget=budget) for s in specs]
    if not args.dry_run:
        if not args.output:
            raise JudgeConfigError("--output is required (or use --dry-run)")
        # Before the first call: a grading run that cannot write its result has paid for nothing.
        inputs = [args.input, args.config, settings.cache_path()]
        out = check_output_file(args.output, inputs=inputs)
        check_output_file(summary_path(out), inputs=inputs, what="--output (its summary)")
        if args.results_dir:
            template_for(args.input)  # an lm-eval samples file with its results file: checked before any call
    pairs = read_pairs(args.input)
    if args.dry_run:
        estimates = [j.estimate(pairs) for j in judges]

        def total(field: str) -> float | None:
            costs = [e[field] for e in estimates]
            return None if None in costs else round(sum(costs), 4)

        return {"dry_run": True, "input": str(args.input), "mode": "batch" if settings.batch else "online",
                "judges": estimates, "total_calls": sum(e["calls"] for e in estimates),
                "total_replies": sum(e["replies"] for e in estimates),
                "total_cost_est": total("cost_est"), "total_batch_cost_est": total("batch_cost_est")}
    results: dict[str, list[TextGrade]] = {}
    pending: list[dict] = []
    for j in judges:
        try:
            results[j.spec] = j.grade(pairs, progress=not args.no_progress)
        except BatchPending as e:  # --no-wait: submitted; the next run collects
            pending.append({"judge": j.spec, "batches": e.batch_ids, "requests": e.requests})
    if pending:
        return {"input": str(args.input), "batch_pending": pending,
                "note": "batches submitted and not done; run the same command again to collect them and write "
                        f"{args.output}"}
    failed = [why for spec, grades in results.items() if (why := nothing_scored(spec, grades))]
    summary = {"input": str(args.input), "output": str(args.output),
               "judges": [summarize_grades(results[j.spec], j) for j in judges],
               "agreement": agreement_report(results) if len(judges) > 1 else None,
               "errors": failed}
    if len(failed) == len(judges):  # nothing worth writing: an earlier --output is left as it was
        raise NothingScored("; ".join(failed) + f". Nothing was written to {args.output}", summary)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for grades in results.values():
            for g in grades:
                f.write(_dumps(g.to_dict()) + "\n")
    if args.results_dir:  # lm-eval results files the leaderboard reads, one per judge
        summary["results_files"] = [str(write_results(args.input, _nan_to_none(s), args.results_dir))
                                    for s in summary["judges"]]
    summary_path(out).write_text(_dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _money(x: Any) -> str:
    return "n/a" if x is None else f"${x:,.4f}"


def _metric(m: dict) -> str:
    mean, se = m.get("mean"), m.get("stderr")
    if mean is None or mean != mean:
        return "—"
    return f"{mean:.3f}" + (f" ± {se:.3f}" if isinstance(se, float) and se == se else "")


def human_summary(summary: dict) -> str:
    """What a person reads at the end of a run (``--json`` prints the whole summary instead)."""
    if summary.get("dry_run"):
        w = max([5] + [len(e["judge"]) for e in summary["judges"]])
        lines = [f"skillmix-grade --dry-run ({summary['mode']}): nothing was sent",
                 f"  {'judge':<{w}} {'texts':>6} {'calls':>7} {'cached':>7} {'online':>11} {'batch':>11}"]
        for e in summary["judges"]:
            lines.append(f"  {e['judge']:<{w}} {e['texts']:>6} {e['calls']:>7} {e['cached']:>7} "
                         f"{_money(e['cost_est']):>11} {_money(e['batch_cost_est']):>11}")
        lines.append(f"  total: {summary['total_calls']} calls, {_money(summary['total_cost_est'])} online, "
                     f"{_money(summary['total_batch_cost_est'])} through the Batch APIs (list prices, estimated tokens)")
        return "\n".join(lines)
    if summary.get("batch_pending"):
        return "skillmix-grade: " + summary["note"] + "".join(
            f"\n  {p['judge']}: {p['requests']} requests in {len(p['batches'])} batch(es)" for p in summary["batch_pending"])
    w = max([5] + [len(j["judge"]) for j in summary["judges"]])
    lines = [f"skillmix-grade: {summary['input']} -> {summary.get('output')}",
             f"  {'judge':<{w}} {'full marks':>15} {'all skills':>15} {'skills fraction':>15}  items scored"]
    for j in summary["judges"]:
        m, items = j["metrics"], j["items"]
        lines.append(f"  {j['judge']:<{w}} {_metric(m['full_marks']):>15} {_metric(m['all_skills']):>15} "
                     f"{_metric(m['skills_fraction']):>15}  {items['scored']} of {items['n']}")
        if items["unscored_by_reason"]:
            lines.append("    unscored items (left out of the means): "
                         + ", ".join(f"{r}: {n}" for r, n in items["unscored_by_reason"].items()))
        cost = j["stats"].get("cost")
        lines.append(f"    {j['texts']['n']} texts, {j['stats'].get('calls', 0)} calls, {j['stats'].get('cached', 0)} "
                     f"gradings from the cache" + (f", ${cost:,.4f}" if cost is not None else ""))
    for f in summary.get("results_files") or ():
        lines.append(f"  results file: {f}")
    if summary.get("output"):
        lines.append(f"  the whole summary: {summary_path(summary['output'])} (or --json)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def show(summary: dict) -> None:
        print(_dumps(summary, indent=2) if args.json else human_summary(_nan_to_none(summary)))

    try:
        summary = run(args)
    except (JudgeConfigError, InputError, OutputPathError, ResultsError) as e:
        print(f"skillmix-grade: error: {e}", file=sys.stderr)
        return 2
    except NothingScored as e:
        show(e.summary)
        print(f"skillmix-grade: error: {e}", file=sys.stderr)
        return 1
    show(summary)
    for why in summary.get("errors") or ():  # a judge that scored nothing is no result, whatever the others did
        print(f"skillmix-grade: error: {why}", file=sys.stderr)
    return 1 if summary.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
