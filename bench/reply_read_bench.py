"""The grader-reply reader (``parse_grading``) on the reply corpus: how many does it read, and how fast?

Reads ``tests/data/grader_replies.jsonl`` (replies in the styles of GPT-4o, Claude, Llama 3, Qwen 2.5
and Mistral, each with the points a careful reader finds or ``{"unscored": why}``) and prints:

- the read rate: readable replies scored exactly / readable, readable replies mis-scored (a wrong
  score, worse than none), readable replies left unscored, and unreadable replies left unscored /
  unreadable (none of them may be scored);
- the speed: replies per second, the median of ``--repeats`` passes over the corpus. "cold": each
  pass starts with the reader's caches cleared, and as every corpus reply has its own item, nothing a
  reader caches per rubric is reused (the worst case); "warm": the caches kept from the pass before,
  as when the 3 gradings of each of 3 generations of an item are read one after another (the steady
  state). Times are the process's CPU time (``time.process_time``: other jobs on a shared box do not
  count), and the yardstick is measured in the same run: ``json.loads`` of the same corpus lines.

``--baseline PATH`` also measures another copy of ``skillmix_tasks/scoring.py`` (e.g. the reader
before a change: ``git show HEAD:skillmix_tasks/scoring.py > /tmp/old_scoring.py``), imported from
PATH and not part of the project, passes interleaved with the current reader's.

Run: python bench/reply_read_bench.py [--repeats 7] [--baseline /tmp/old_scoring.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

import skillmix_tasks.scoring as current
from skillmix_tasks.prompts import criteria_for
from skillmix_tasks.sampling import Item

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "grader_replies.jsonl"


def load_reader(path: str) -> ModuleType:
    """A copy of scoring.py from ``path``, imported inside the package so its relative imports work."""
    spec = importlib.util.spec_from_file_location("skillmix_tasks._baseline_scoring", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def read_rate(reader: ModuleType, cases: list[tuple[str, list, object]]) -> dict[str, int]:
    counts = {"readable": 0, "exact": 0, "misscored": 0, "missed": 0, "unreadable": 0, "held": 0}
    for reply, criteria, expect in cases:
        got = reader.parse_grading(reply, criteria)
        unscored = isinstance(got, reader.Unscored)
        if isinstance(expect, dict):
            counts["unreadable"] += 1
            counts["held"] += unscored
        else:
            counts["readable"] += 1
            if unscored:
                counts["missed"] += 1
            elif got == tuple(expect):
                counts["exact"] += 1
            else:
                counts["misscored"] += 1
    return counts


def clear_caches(reader: ModuleType) -> None:
    for value in vars(reader).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


def one_pass(reader: ModuleType, cases: list[tuple[str, list, object]], cold: bool) -> float:
    if cold:
        clear_caches(reader)
    start = time.process_time()
    for reply, criteria, _ in cases:
        reader.parse_grading(reply, criteria)
    return time.process_time() - start


def json_pass(lines: list[str]) -> float:
    start = time.process_time()
    for line in lines:
        json.loads(line)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline", help="another scoring.py to measure next to the current one")
    args = parser.parse_args()

    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    cases = [(r["reply"], criteria_for(Item("bench", "custom", r["k"], tuple(r["skills"]), r["topic"])), r["expect"])
             for r in rows]
    readers = {"current": current}
    if args.baseline:
        readers["baseline"] = load_reader(args.baseline)

    times: dict[tuple[str, bool], list[float]] = {(name, cold): [] for name in readers for cold in (True, False)}
    yardstick_times: list[float] = []
    for _ in range(args.repeats):  # interleaved, so that a busy moment slows every reader alike
        for name, reader in readers.items():
            for cold in (True, False):
                times[name, cold].append(one_pass(reader, cases, cold))
        yardstick_times.append(json_pass(lines))
    t = {key: statistics.median(v) for key, v in times.items()}
    yardstick = statistics.median(yardstick_times)

    print(f"{len(cases)} replies ({CORPUS.name}), medians of {args.repeats} passes; "
          f"json.loads of the same lines: {len(cases) / yardstick:,.0f} replies/s\n")
    print("| reader | readable scored exactly | mis-scored | readable left unscored | unreadable left unscored "
          "| replies/s cold (time / json.loads) | replies/s warm (time / json.loads) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, reader in readers.items():
        c = read_rate(reader, cases)
        speed = [f"{len(cases) / t[name, cold]:,.0f} ({t[name, cold] / yardstick:.0f}x)" for cold in (True, False)]
        print(f"| {name} | {c['exact']}/{c['readable']} ({c['exact'] / c['readable']:.1%}) | {c['misscored']} "
              f"| {c['missed']} | {c['held']}/{c['unreadable']} | {speed[0]} | {speed[1]} |")
    if args.baseline:
        cold, warm = (t["current", c] / t["baseline", c] for c in (True, False))
        print(f"\ncurrent / baseline time: {cold:.2f}x cold, {warm:.2f}x warm")


if __name__ == "__main__":
    main()
