"""``skillmix-pipeline``: the paper's recipe, end to end, resumable.

    skillmix-pipeline --config paper --dry-run                 # the plan, judge calls and cost; calls nothing
    skillmix-pipeline --config paper students='[{name: mistral-7b, model: /ckpt/Mistral-7B-Instruct-v0.2}]'
    skillmix-pipeline --config tiny                            # the CI run (tiny model, local judge server)

Stages: datagen (D_SKILL-MIX(k) by a teacher, graded) -> train (each student on each mixture, e.g.
D(1), D(1,2), D(1,2,3)) -> eval (each student and checkpoint on skillmix_<split>_k<k>, single-turn
lm_eval, either protocol) -> leaderboard. Each unit of work is a command of the
project's own CLIs, printed before it runs; a unit whose outputs exist is skipped, so after a kill
the same command picks up where it stopped. ``--config`` takes a YAML path or a bundled name
(paper, tiny, quickstart); ``key=value`` overrides any field (dotted: eval.limit=5).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from skillmix_tasks.outputs import OutputPathError, check_output_dir

from .config import STAGES, PipelineConfig, PipelineConfigError, resolve_config_path
from .stages import StageFailed, Unit, plan


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="skillmix-pipeline", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="pipeline YAML, or a bundled name: paper, tiny, quickstart")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="override config fields (dotted for sections)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (done / to run), estimated teacher and judge calls and cost; call nothing")
    p.add_argument("--stages", help=f"comma-separated subset of the config's stages to run now ({', '.join(STAGES)})")
    return p.parse_args(argv)


def _print_plan(units: list[Unit], config: PipelineConfig) -> dict[str, int]:
    counts: dict[str, int] = {}
    for u in units:
        status = u.status(config.root)
        counts[status] = counts.get(status, 0) + 1
        print(f"  [{status:>7}] {u.stage:<11} {u.describe}")
    return counts


def dry_run(config: PipelineConfig, units: list[Unit]) -> dict:
    from .estimate import datagen_estimate, eval_estimate, training_estimate

    print(f"skillmix-pipeline: plan for {config.root} ({len(units)} units)")
    counts = _print_plan(units, config)
    report: dict = {"dry_run": True, "out": str(config.root), "mode": "batch" if config.batch else "online",
                    "units": counts}
    costs: dict[str, list] = {"online": [], "batch": []}
    if "datagen" in config.stages:
        d = datagen_estimate(config)
        report["datagen"] = d
        costs["online"].append(d.get("total_cost_est"))
        costs["batch"].append(d.get("total_batch_cost_est"))
    if "train" in config.stages:
        report["train"] = training_estimate(config)
    if "eval" in config.stages:
        e = eval_estimate(config)
        report["eval"] = e
        costs["online"].append(e["judge_cost_est"])
        costs["batch"].append(e["judge_batch_cost_est"])
    for mode, key in (("online", "total_cost_est_usd"), ("batch", "total_batch_cost_est_usd")):
        report[key] = None if None in costs[mode] else round(sum(costs[mode]), 2)
    print(json.dumps(report, indent=2))
    if report["total_cost_est_usd"] is None:
        print("note: no price is known for a teacher or judge model; pass prices in the judge config "
              "(eval.judge_config.prices) or --prices to skillmix-datagen (datagen.args)", file=sys.stderr)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = PipelineConfig.load(args.config, args.overrides)
        if args.stages:
            only = [s.strip() for s in args.stages.split(",") if s.strip()]
            bad = [s for s in only if s not in config.stages]
            if bad:
                raise PipelineConfigError(f"--stages: {bad} not among the config's stages {config.stages}")
        else:
            only = config.stages
        units = plan(config)
    except PipelineConfigError as e:
        print(f"skillmix-pipeline: error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        try:
            dry_run(config, units)
        except Exception as e:  # noqa: BLE001 - an estimate that cannot be made is reported, not a traceback
            print(f"skillmix-pipeline: error: cannot estimate: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
        return 0
    try:
        # Before the first stage: every stage writes under out, and the first one pays a teacher.
        check_output_dir(config.root, files=["pipeline_config.json"], inputs=[resolve_config_path(args.config)],
                         what="out")
    except OutputPathError as e:
        print(f"skillmix-pipeline: error: {e}", file=sys.stderr)
        return 2
    config.root.mkdir(parents=True, exist_ok=True)
    (config.root / "pipeline_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    start = time.time()
    ran = skipped = 0
    for u in units:
        if u.stage not in only:
            continue
        status = u.status(config.root)
        if status == "done":
            print(f"[skip] {u.stage}: {u.describe} (done)")
            skipped += 1
            continue
        note = " (its command changed since the last run)" if status == "changed" else ""
        print(f"[run]  {u.stage}: {u.describe}{note}", flush=True)
        try:
            u.run(config.root, log=lambda s: print(s, flush=True))
        except StageFailed as e:
            print(f"skillmix-pipeline: {e}\nRe-run the same command to resume; finished units are skipped.",
                  file=sys.stderr)
            return 1
        ran += 1
    print(f"skillmix-pipeline: {ran} unit(s) run, {skipped} skipped (done) in {time.time() - start:.0f} s; "
          f"outputs in {config.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
