"""``skillmix-datagen``: the paper's training data, D_SKILL-MIX(k).

A teacher holds the two-turn SKILL-MIX conversation for every item of a seeded pool, the judge
grades the final answer (3 gradings, majority vote, programmatic rules), and only full-mark
conversations are kept::

    skillmix-datagen --teacher openai:gpt-4o --judge openai:gpt-4o --k 1,2,3 --pool 5000,10000,10000 --out data/
    skillmix-datagen --teacher hf:/ckpt/teacher --judge openai:gpt-4o --k 2 --pool 200 --out data/ --dry-run
    skillmix-datagen audit data/d_skillmix_k2.jsonl      # held-out skills/topics present? exit 1 if so

Pools follow the paper: k=1 over all 101 skills and the train topics, k>=2 over train skills and
train topics. Held-out topics, and held-out skills for k>=2, are refused unless --allow-heldout
(then the dataset card says so). The benchmark's own lm-eval items are left out of the pools unless
--include-eval-items (recorded on the card). Every teacher reply and every grading goes to the SQLite reply
cache the moment it arrives, so a killed run re-run repeats no finished call.

Writes DIR/d_skillmix_k{k}.jsonl (chat ``messages`` plus metadata and grades), DIR/README.md
(the dataset card) and DIR/datagen_summary.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence

from skillmix_tasks.outputs import check_output_dir
from skillmix_tasks.protocol import DEFAULT_SEED, SPLITS

from skillmix.grading.batch import BatchPending
from skillmix.grading.specs import JudgeConfigError

from . import audit
from .conversation import TEACHER_MAX_TOKENS, TEACHER_TEMPERATURE
from .leakage import LeakageError
from .pool import DEFAULT_POOL, Plan
from .run import Datagen, NothingJudged

log = logging.getLogger("skillmix.datagen")


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, not {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skillmix-datagen", description=__doc__.split("\n\n")[0],
                                usage="%(prog)s --teacher SPEC [options]\n"
                                      "       %(prog)s audit FILE [FILE ...] [options]",
                                epilog="Audit a dataset: skillmix-datagen audit FILE [FILE ...] (see --help there).",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    # No sub-command is a run (the usual form); ``audit`` is the one sub-command.
    commands = p.add_subparsers(dest="command", title="sub-commands", metavar="{audit}")
    a = commands.add_parser("audit", prog="skillmix-datagen audit",
                            help="held-out skills/topics in a dataset? exit 1 if so",
                            description=audit.__doc__.split("\n\n")[0], epilog=audit.__doc__.split("\n\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    audit.add_arguments(a)
    # Required for a run; checked in parse_args, since the audit sub-command has no teacher.
    p.add_argument("--teacher", help="teacher spec, as for judges: openai:<model>, anthropic:<model>, "
                   "openai-compatible:<model>@<url>, hf:<checkpoint dir>")
    p.add_argument("--judge", help="judge spec (default: --config's judge, then $SKILLMIX_JUDGE)")
    p.add_argument("--config", help="YAML judge config (judge: <spec> plus judge settings)")
    p.add_argument("--k", type=_int_list, default=[1, 2, 3], help="comma-separated k values (default 1,2,3)")
    p.add_argument("--pool", type=_int_list, help="pool size per k, comma-separated, or one for all "
                   "(default 5000 for k=1, 10000 otherwise)")
    p.add_argument("--out", help="output folder")
    p.add_argument("--k1-skills", choices=SPLITS, default="all", help="skills of the k=1 pool (default all)")
    p.add_argument("--skills", choices=SPLITS, default="train", help="skills of the k>=2 pools (default train)")
    p.add_argument("--topics", choices=SPLITS, default="train", help="topics of every pool (default train)")
    p.add_argument("--allow-heldout", action="store_true",
                   help="allow held-out topics, and held-out skills at k>=2 (the dataset card says so)")
    p.add_argument("--include-eval-items", action="store_true",
                   help="also draw the benchmark's own lm-eval items (its 100 per split and k); by default they "
                        "are left out, so skillmix_train_k* scores combinations the training data never had "
                        "(the k=1 default pool then holds 4906, not 5000). The dataset card records the choice")
    p.add_argument("--generations", type=int, default=1, help="teacher conversations per item (default 1)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--temperature", type=float, default=TEACHER_TEMPERATURE, help=f"teacher temperature (default {TEACHER_TEMPERATURE})")
    p.add_argument("--max-tokens", type=int, default=TEACHER_MAX_TOKENS, help=f"teacher max tokens per turn (default {TEACHER_MAX_TOKENS})")
    p.add_argument("--concurrency", type=int, default=16, help="teacher calls in flight (default 16)")
    p.add_argument("--judge-concurrency", type=int, help="judge calls in flight (default: the judge's, 32)")
    p.add_argument("--n-gradings", type=int, help="gradings per answer (default 3)")
    p.add_argument("--cache", help="SQLite reply cache for teacher and judge ('off': none, no resume; "
                   "default $SKILLMIX_CACHE or ~/.cache/skillmix/judge.sqlite)")
    p.add_argument("--max-cost", type=float, help="USD for this run, teacher and judge together; "
                   "calls past it are not made (their conversations are counted unscored: budget)")
    p.add_argument("--prices", type=json.loads, help='JSON price table, e.g. \'{"my-model": {"input": 1, "output": 2}}\'')
    p.add_argument("--timeout", type=float)
    p.add_argument("--max-retries", type=int)
    p.add_argument("--batch-size", type=int, help="hf: prompts per generate() call")
    p.add_argument("--batch", action="store_true",
                   help="teacher and judge through the providers' Batch APIs (openai:, anthropic:): half the price, "
                        "in three rounds (turn 1, turn 2, gradings), each resumable; results within 24 h a round")
    p.add_argument("--no-wait", action="store_true",
                   help="with --batch: submit the next round and exit; run the same command again to go on")
    p.add_argument("--poll-interval", type=float, metavar="SECONDS", help="with --batch: seconds between polls (60)")
    p.add_argument("--dry-run", action="store_true", help="estimate calls, tokens and cost (online and batch); "
                   "call nothing")
    p.add_argument("--no-progress", action="store_true")
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``argv`` read as a run (``command`` None) or as ``audit``; a run without --teacher exits 2."""
    p = build_parser()
    args = p.parse_args(argv)
    if args.command is None and not args.teacher:
        p.error("the following arguments are required: --teacher")
    return args


def plan_from_args(args: argparse.Namespace) -> Plan:
    ks = args.k
    if not ks or len(set(ks)) != len(ks) or any(k < 1 for k in ks):
        raise ValueError(f"--k must list distinct positive integers, not {ks}")
    pools = args.pool or [DEFAULT_POOL.get(k, 10000) for k in ks]
    if len(pools) == 1:
        pools = pools * len(ks)
    if len(pools) != len(ks):
        raise ValueError(f"--pool has {len(pools)} sizes for {len(ks)} k values")
    if args.generations < 1:
        raise ValueError("--generations must be >= 1")
    splits = {k: (args.k1_skills if k == 1 else args.skills, args.topics) for k in ks}
    plan = Plan(ks, dict(zip(ks, pools)), splits, args.generations, args.seed, args.allow_heldout,
                not args.include_eval_items)
    if not args.pool:  # the paper's sizes, as many as the space holds once the eval items are out
        for k in ks:
            room = plan.capacity(k)
            if plan.pools[k] > room:
                log.warning("k=%d: the default pool of %d is larger than the %d combinations left once the "
                            "benchmark's own items are out; drawing all %d", k, plan.pools[k], room, room)
                plan.pools[k] = room
    return plan


def run(args: argparse.Namespace) -> dict:
    """A run (or its dry run) of parsed arguments: the summary it prints."""
    from skillmix.grading.specs import load_config_file

    config = load_config_file(args.config) if args.config else {}
    judge_config = {**config, **{k: v for k, v in {"n_gradings": args.n_gradings,
                                                    "concurrency": args.judge_concurrency}.items() if v is not None}}
    plan = plan_from_args(args)
    if not args.dry_run and not args.out:
        raise ValueError("--out is required (or use --dry-run)")
    dg = Datagen(args.teacher, args.judge or config.get("judge"), cache=args.cache, max_cost=args.max_cost,
                 prices=args.prices, teacher_temperature=args.temperature, teacher_max_tokens=args.max_tokens,
                 teacher_concurrency=args.concurrency, judge_config=judge_config, timeout=args.timeout,
                 max_retries=args.max_retries, batch_size=args.batch_size, batch=True if args.batch else None,
                 batch_wait=False if args.no_wait else None, batch_poll_interval=args.poll_interval)
    if args.no_wait and not dg.batch:
        raise ValueError("--no-wait needs --batch")
    if args.dry_run:
        return dg.estimate(plan)
    # Before the first teacher call: a run that cannot write its dataset has paid for nothing.
    files = [f"d_skillmix_k{k}{ext}" for k in plan.ks for ext in (".jsonl", ".jsonl.tmp")]
    out = check_output_dir(args.out, files=[*files, "README.md", "datagen_summary.json"],
                           inputs=[args.config, dg.judge.settings.cache_path()])
    try:
        return dg.generate(plan, out, progress=not args.no_progress)
    except BatchPending as e:  # --no-wait: this round is submitted; the next run goes on from it
        return {"batch_pending": {"batches": e.batch_ids, "requests": e.requests},
                "note": "a round of batches is submitted and not done; run the same command again to go on"}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "audit":
        return audit.audit(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = run(args)
    except (JudgeConfigError, LeakageError, ValueError, KeyError) as e:
        print(f"skillmix-datagen: error: {e}", file=sys.stderr)
        return 2
    except NothingJudged as e:
        print(json.dumps(e.summary, indent=2))
        print(f"skillmix-datagen: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
