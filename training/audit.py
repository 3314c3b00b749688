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
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

from skillmix_tasks.jsonl import iter_objects
from skillmix_tasks.catalog import Catalog, default_catalog
from skillmix_tasks.prompts import skill_name


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    id: str | None
    kind: str  # "held-out topic" or "held-out skill"
    name: str
    where: str  # "metadata" or "text: messages[i]"


def _name_regex(names: Iterable[str]) -> re.Pattern:
    alts = sorted({n for n in names if n}, key=len, reverse=True)  # longest first: "The Silk Road" before "Silk"
    body = "|".join(r"[\s\-]+".join(re.escape(w) for w in n.split()) for n in alts)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


class Auditor:
    def __init__(self, catalog: Catalog | None = None, strict: bool = False):
        catalog = catalog or default_catalog()
        self.strict = strict
        self.heldout_topics = {t.name.lower(): t.name for t in catalog.topics_in("heldout")}
        self.heldout_skills = {s.name.lower(): s.name for s in catalog.skills_in("heldout")}
        self.skill_by_bare = {re.sub(r"[\s\-]+", " ", skill_name(s).lower()): s for s in self.heldout_skills.values()}
        self.topic_re = _name_regex(self.heldout_topics.values())
        self.skill_re = _name_regex(skill_name(s) for s in self.heldout_skills.values())

    def row(self, row: dict, file: str = "", line: int = 0) -> list[Finding]:
        rid = row.get("id")
        rid = None if rid is None else str(rid)
        skills = row.get("skills") if isinstance(row.get("skills"), list) else []
        k = row.get("k", len(skills) or None)
        # Unknown k (a line without metadata) is checked as k >= 2: the cautious reading.
        check_skills = self.strict or k is None or int(k) >= 2
        out = []
        topic = row.get("topic")
        if isinstance(topic, str) and topic.strip().lower() in self.heldout_topics:
            out.append(Finding(file, line, rid, "held-out topic", self.heldout_topics[topic.strip().lower()], "metadata"))
        if check_skills:
            for s in skills:
                if isinstance(s, str) and s.strip().lower() in self.heldout_skills:
                    out.append(Finding(file, line, rid, "held-out skill", self.heldout_skills[s.strip().lower()],
                                       "metadata"))
        messages = row.get("messages") if isinstance(row.get("messages"), list) else []
        for i, m in enumerate(messages):
            text = m.get("content") if isinstance(m, dict) else None
            if not isinstance(text, str):
                continue
            seen = set()
            for hit in self.topic_re.finditer(text):
                name = self.heldout_topics[re.sub(r"[\s\-]+", " ", hit.group(0).lower())]
                if name not in seen:
                    seen.add(name)
                    out.append(Finding(file, line, rid, "held-out topic", name, f"text: messages[{i}]"))
            if check_skills:
                for hit in self.skill_re.finditer(text):
                    name = self.skill_by_bare[re.sub(r"[\s\-]+", " ", hit.group(0).lower())]
                    if name not in seen:
                        seen.add(name)
                        out.append(Finding(file, line, rid, "held-out skill", name, f"text: messages[{i}]"))
        return out


def audit_file(path: str | Path, auditor: Auditor | None = None) -> tuple[int, list[Finding]]:
    """(lines read, findings) of one JSONL file; raises ValueError naming the line if unreadable."""
    auditor = auditor or Auditor()
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


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="skillmix-datagen audit", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("files", nargs="+", help="chat JSONL files (d_skillmix_k*.jsonl)")
    p.add_argument("--strict", action="store_true", help="held-out skills count at k=1 too")
    p.add_argument("--names", choices=("fail", "warn"), default="fail",
                   help="whether held-out names found in the text fail the audit (default) or only show")
    p.add_argument("--max-shown", type=int, default=50, help="findings listed on stderr (default 50)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON on stdout")
    args = p.parse_args(argv)
    auditor = Auditor(strict=args.strict)
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


if __name__ == "__main__":
    sys.exit(main())
