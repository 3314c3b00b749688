"""``skillmix-datagen audit FILE...``: does a training set contain held-out content?

Two checks per line of a chat JSONL file:

- metadata: the line's ``topic`` is a held-out topic, or (for k >= 2, or any k with ``--strict``)
  one of its ``skills`` is a held-out skill;
- text: a held-out topic, or (same rule) a held-out skill, is named in any message, as whole
  words, any case (a skill by its bare name, as the name penalty reads it).

The k=1 rule follows the paper's recipe, whose k=1 data covers all 101 skills. Exit status 0
when nothing is found, 1 when something is, 2 when a file cannot be read. Some held-out skill
names are everyday words (gravity, empathy, hedging): text hits are worth reading, and
``--names warn`` reports them without failing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from skillmix_tasks.jsonl import iter_objects

from .leakage import Finding, HeldOut

def audit_file(path: str | Path, auditor: HeldOut | None = None) -> tuple[int, list[Finding]]:
    """(lines read, findings) of one JSONL file; raises ValueError naming the line if unreadable.
    The rule is the generation-time guard's (``leakage.HeldOut``), applied to finished lines."""
    auditor = auditor or HeldOut()
    path = Path(path)
    findings: list[Finding] = []
    n = 0
    for lineno, row in iter_objects(path):
        n += 1
        findings += auditor.row(row, str(path), lineno)
    return n, findings


def report(results: dict[str, tuple[int, list[Finding]]], names: str = "fail") -> dict:
    findings = [f for _, fs in results.values() for f in fs]
    meta = [f for f in findings if f.where == "metadata"]
    text = [f for f in findings if f.where != "metadata"]
    failing = meta + (text if names == "fail" else [])
    return {
        "files": {p: {"lines": n, "findings": len(fs), "lines_with_findings": len({f.line for f in fs})}
                  for p, (n, fs) in results.items()},
        "clean": not failing,
        "metadata": {"count": len(meta), "by_name": dict(Counter(f"{f.kind}: {f.name}" for f in meta).most_common())},
        "text": {"count": len(text), "by_name": dict(Counter(f"{f.kind}: {f.name}" for f in text).most_common()),
                 "fails": names == "fail"},
        "findings": [asdict(f) for f in findings],
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help="chat JSONL files (d_skillmix_k*.jsonl)")
    p.add_argument("--strict", action="store_true", help="held-out skills count at k=1 too")
    p.add_argument("--names", choices=("fail", "warn"), default="fail",
                   help="whether held-out names found in the text fail the audit (default) or only show")
    p.add_argument("--max-shown", type=int, default=50, help="findings listed on stderr (default 50)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON on stdout")


def audit(args: argparse.Namespace) -> int:
    """The sub-command: audit every file, print the report, return the exit status."""
    auditor = HeldOut(strict=args.strict)
    results = {}
    try:
        for path in args.files:
            results[path] = audit_file(path, auditor)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        print(f"skillmix-datagen audit: error: {e}", file=sys.stderr)
        return 2
    rep = report(results, args.names)
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        for path, info in rep["files"].items():
            print(f"{path}: {info['lines']} lines, {info['lines_with_findings']} with held-out content")
        for section in ("metadata", "text"):
            for name, count in rep[section]["by_name"].items():
                print(f"  {section}: {name} x{count}")
        print("clean" if rep["clean"] else "HELD-OUT CONTENT FOUND")
    for f in rep["findings"][: args.max_shown]:
        print(f"{f['file']}:{f['line']} id={f['id']} {f['kind']} {f['name']!r} in {f['where']}", file=sys.stderr)
    return 0 if rep["clean"] else 1
