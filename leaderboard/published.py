"""Published reference numbers (``published.yaml``): shown apart from measured rows, labelled as published."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from skillmix.leaderboard.results import METRICS

PUBLISHED_FILE = Path(__file__).with_name("published.yaml")


@dataclass(frozen=True)
class PublishedValue:
    source: str
    model: str
    variant: str
    judge: str
    label: str  # e.g. "published (GPT-4 grader)"
    split: str
    k: int
    metric: str
    value: float


def load_published(path: str | Path | None = None) -> list[PublishedValue]:
    data = yaml.safe_load(Path(path or PUBLISHED_FILE).read_text(encoding="utf-8")) or {}
    label = str(data.get("label") or "published")
    out = []
    for row in data.get("rows") or []:
        for v in row.get("values") or []:
            for metric in METRICS:
                if metric in v:
                    out.append(PublishedValue(str(row["source"]), str(row["model"]), str(row.get("variant", "")),
                                              str(row.get("judge", "")), label, str(v["split"]), int(v["k"]),
                                              metric, float(v[metric])))
    return out
