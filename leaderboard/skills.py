"""Per-skill and per-category success: how often a skill's point is earned over the items it appears in.

An item earns a skill when any of its scored generations earns that skill's point (after the name
penalty), as the item metrics take the max over generations. Unscored items count nowhere. A row's
rate pools every task of the row (all splits and k); categories pool their skills' appearances.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skillmix_tasks.catalog import HELDOUT_CATEGORIES, TRAIN_CATEGORIES, default_catalog

from skillmix.leaderboard.table import Row

CATEGORY_ORDER = TRAIN_CATEGORIES + HELDOUT_CATEGORIES  # train categories first, then held-out
HARDEST_N = 5


@dataclass
class Tally:
    earned: int = 0
    items: int = 0

    @property
    def rate(self) -> float | None:
        return self.earned / self.items if self.items else None


@dataclass
class SkillTable:
    skills: list[str]  # every skill seen, catalog order first
    category: dict[str, str]  # skill -> category ("unknown" outside the catalog)
    per_row: list[dict[str, Tally]] = field(default_factory=list)  # per row: skill -> tally
    per_row_category: list[dict[str, Tally]] = field(default_factory=list)  # per row: category (and "train"/"heldout")

    def hardest(self, i: int, n: int = HARDEST_N) -> list[tuple[str, Tally]]:
        """The row's ``n`` lowest-rate skills (more appearances first among equals, then by name)."""
        t = [(s, x) for s, x in self.per_row[i].items() if x.items]
        return sorted(t, key=lambda sx: (sx[1].rate, -sx[1].items, sx[0]))[:n]


def category_of(skill: str) -> str:
    cat = default_catalog()
    try:
        return cat.skill(skill).category
    except (KeyError, ValueError):
        return "unknown"


def skill_table(rows: list[Row]) -> SkillTable | None:
    """Tallies per row from the rows' samples (None when no row has any)."""
    per_row: list[dict[str, Tally]] = []
    seen: set[str] = set()
    for r in rows:
        tallies: dict[str, Tally] = {}
        for e in r.cells.values():
            for item in e.items or []:
                if item.skill_points is None:
                    continue
                for s, p in zip(item.skills, item.skill_points):
                    t = tallies.setdefault(s, Tally())
                    t.items += 1
                    t.earned += p
        seen |= set(tallies)
        per_row.append(tallies)
    if not seen:
        return None
    order = {s.name: i for i, s in enumerate(default_catalog().skills)}
    skills = sorted(seen, key=lambda s: (order.get(s, len(order)), s))
    category = {s: category_of(s) for s in skills}
    per_cat: list[dict[str, Tally]] = []
    for tallies in per_row:
        c: dict[str, Tally] = {}
        for s, t in tallies.items():
            cat = category[s]
            side = "train" if cat in TRAIN_CATEGORIES else "heldout" if cat in HELDOUT_CATEGORIES else None
            for key in (cat, side):
                if key:
                    x = c.setdefault(key, Tally())
                    x.items += t.items
                    x.earned += t.earned
        per_cat.append(c)
    return SkillTable(skills, category, per_row, per_cat)


def categories_present(table: SkillTable) -> list[str]:
    cats = set(table.category.values())
    return [c for c in CATEGORY_ORDER if c in cats] + sorted(cats - set(CATEGORY_ORDER))
