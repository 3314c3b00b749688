"""PNG plots of each metric against k, one panel per split, one line per row with stderr bars
(the layout of Figure 2 in Zhao et al. 2024). Measured rows only."""

from __future__ import annotations

from pathlib import Path

from skillmix.leaderboard.results import SPLIT_LABELS
from skillmix.leaderboard.table import Row

METRIC_LABELS = {"full_marks": "Ratio of Full Marks", "all_skills": "Ratio of All Skills",
                 "skills_fraction": "Skills Fraction"}


def plot_name(metric: str) -> str:
    return f"plot_{metric}.png"


def plot_metric(rows: list[Row], metric: str, cols: dict[str, list[int]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    # train and held-out always (as in the paper), "all" when measured
    splits = [s for s in ("train", "heldout") if s in cols or "all" not in cols] + (["all"] if "all" in cols else [])
    fig, axes = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 4.0), squeeze=False, sharey=True)
    markers = "osD^v<>pX*"  # with the colour, fixed per row so a model looks the same in every panel
    for ax, split in zip(axes[0], splits):
        ks = cols.get(split, [])
        drawn = 0
        for i, r in enumerate(rows):
            pts = [(k, r.cells[(split, k)].stats[metric]) for k in ks if (split, k) in r.cells]
            pts = [(k, s) for k, s in pts if s.value is not None]
            if not pts:
                continue
            ax.errorbar([k for k, _ in pts], [s.value for _, s in pts], yerr=[s.stderr or 0.0 for _, s in pts],
                        marker=markers[i % len(markers)], color=f"C{i % 10}", capsize=3, label=_short(r.label, r))
            drawn += 1
        ax.set_title(f"{SPLIT_LABELS[split]} skills and topics")
        ax.set_xlabel("k (number of skills)")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        if ks:
            ax.set_xticks(ks)
        if not drawn:
            ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes, color="gray")
        else:
            ax.legend(fontsize=8, loc="best")
    axes[0][0].set_ylabel(METRIC_LABELS[metric])
    fig.suptitle(f"{METRIC_LABELS[metric]} vs k (mean ± stderr over items)")
    fig.tight_layout()
    path = out / plot_name(metric)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _short(label: str, r: Row) -> str:
    extra = [x for x in (r.protocol if r.protocol != "single-turn" else "", r.revision) if x]
    label = label if len(label) <= 40 else "…" + label[-39:]
    return f"{label} ({', '.join(extra)})" if extra else label
