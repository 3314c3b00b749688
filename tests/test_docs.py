"""The documents a clone has are the documents it cites: every relative Markdown link resolves inside the
repository, and nothing points at notes outside it."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


def test_relative_markdown_links_resolve_inside_the_repository():
    bad = []
    for md in _tracked("*.md"):
        for target in LINK.findall(md.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:|^#", target):
                continue  # a URL or an anchor in the same page
            path = (md.parent / target.split("#", 1)[0]).resolve()
            if not path.exists() or ROOT not in path.parents and path != ROOT:
                bad.append(f"{md.relative_to(ROOT)}: {target}")
    assert not bad, bad


def test_no_file_cites_the_design_notes_outside_the_repository():
    hits = [f"{p.relative_to(ROOT)}" for p in _tracked("*.py", "*.md", "*.yaml", "*.sh", "*.toml", "*_yaml")
            if re.search(r"\b(DESIGN|STYLE)\.md\b", p.read_text(encoding="utf-8", errors="replace"))]
    assert not hits, hits
