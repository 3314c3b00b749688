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
        drawn, bars = 0, _Bars()
        for i, r in enumerate(rows):
            pts = [(k, r.cells[(split, k)].stats[metric]) for k in ks if (split, k) in r.cells]
            pts = [(k, s) for k, s in pts if s.value is not None]
            if not pts:
                continue
            xs, ys = [k for k, _ in pts], [s.value for _, s in pts]
            ax.plot(xs, ys, marker=markers[i % len(markers)], color=f"C{i % 10}", label=_short(r.label, r))
            err = [s.stderr or 0.0 for _, s in pts]
            bars.add(xs, [y - e for y, e in zip(ys, err)], [y + e for y, e in zip(ys, err)], f"C{i % 10}")
            drawn += 1
        bars.draw(ax)
        ax.set_title(f"{SPLIT_LABELS[split]} skills and topics")
        ax.set_xlabel("k (number of skills)")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        if ks:
            ax.set_xticks(ks)
            ax.set_xlim(min(ks) - 0.5, max(ks) + 0.5)
        if not drawn:
            ax.text(0.5, 0.5, _empty_reason(rows, split), ha="center", va="center", transform=ax.transAxes,
                    color="gray")
    _legend(axes[0])
    axes[0][0].set_ylabel(METRIC_LABELS[metric])
    fig.suptitle(f"{METRIC_LABELS[metric]} vs k (mean ± stderr over items)")
    return _save(fig, out / plot_name(metric), dpi=110)


def _empty_reason(rows: list[Row], split: str) -> str:
    """Why a panel has no point: a run that judged nothing, or items all unscored, is not "no results"."""
    cells = [e for r in rows for (s, _), e in r.cells.items() if s == split]
    if not cells:
        return "not measured"
    if not any(e.judged for e in cells):
        return "not judged\n(--predict_only: texts generated, nothing graded)"
    if all(e.n and e.unscored == e.n for e in cells if e.judged):
        return "every item unscored\n(see the unscored reasons in the samples)"
    return "no scores"


class _Bars:
    """A panel's vertical error bars with caps, every row's in two artists (a collection of segments
    and one scatter of cap markers) instead of errorbar's four artists per row: drawing 20 rows' bars
    was most of a figure's time. Looks as errorbar(capsize=3) does."""

    def __init__(self) -> None:
        self.segs, self.colors, self.caps, self.cap_colors = [], [], [], []

    def add(self, xs, lows, highs, color: str) -> None:
        for x, lo, hi in zip(xs, lows, highs):
            self.segs.append([(x, lo), (x, hi)])
            self.caps += [(x, lo), (x, hi)]
        self.colors += [color] * len(xs)
        self.cap_colors += [color] * (2 * len(xs))

    def draw(self, ax) -> None:
        if not self.segs:
            return
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(self.segs, colors=self.colors, linewidths=1.5), autolim=True)
        ax.scatter([x for x, _ in self.caps], [y for _, y in self.caps], marker="_", s=36, c=self.cap_colors,
                   linewidths=1.5)
        ax.autoscale_view()


def _save(fig, path: Path, dpi: int) -> Path:
    """Tight layout once, then save with no layout engine left on the figure: matplotlib keeps a
    placeholder engine after tight_layout(), and any engine makes savefig draw the whole figure
    twice (a layout pass, then the real one), a third of a 20-row build's plotting time."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.set_layout_engine(None)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _legend(axes) -> None:
    """One legend for the figure, right of the last panel: a model has one colour and marker in every
    panel, and loc="best" (a search over positions for each panel) is most of a 20-row plot's time."""
    handles: dict = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if handles:
        axes[-1].legend(list(handles.values()), list(handles), fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))


def _short(label: str, r: Row) -> str:
    extra = [x for x in (r.protocol if r.protocol != "single-turn" else "", r.revision) if x]
    label = label if len(label) <= 40 else "…" + label[-39:]
    return f"{label} ({', '.join(extra)})" if extra else label


def delta_plot_name(metric: str) -> str:
    return f"plot_delta_{metric}.png"


def plot_delta(rows: list[Row], metric: str, cols: dict[str, list[int]], out: Path) -> Path | None:
    """Δ to the baseline against k with the paired bootstrap interval (the one used in the tables);
    filled markers where the interval excludes 0. None when no row has a paired Δ."""
    if not any(key[2] == metric for r in rows for key in r.paired):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = [s for s in cols if any((s, k, metric) in r.paired for r in rows for k in cols[s])]
    fig, axes = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 4.0), squeeze=False, sharey=True)
    markers = "osD^v<>pX*"
    for ax, split in zip(axes[0], splits):
        bars = _Bars()
        for i, r in enumerate(rows):
            pts = [(k, r.paired[(split, k, metric)]) for k in cols[split] if (split, k, metric) in r.paired]
            if not pts:
                continue
            color, marker = f"C{i % 10}", markers[i % len(markers)]
            xs = [k + 0.06 * (i % 5 - 2) for k, _ in pts]  # side by side, so intervals do not hide each other
            ds = [p.delta for _, p in pts]
            ax.plot(xs, ds, color=color, linestyle="-", label=_short(r.label, r))
            bars.add(xs, [p.lo if p.lo is not None else p.delta for _, p in pts],
                     [p.hi if p.hi is not None else p.delta for _, p in pts], color)
            for sig in (True, False):  # one call per kind, not one per point
                sel = [(x, p.delta) for x, (_, p) in zip(xs, pts) if p.significant == sig]
                if sel:
                    ax.plot([x for x, _ in sel], [d for _, d in sel], linestyle="none", marker=marker, color=color,
                            markerfacecolor=color if sig else "white", markersize=7)
        bars.draw(ax)
        ax.axhline(0, color="gray", linewidth=1)
        ax.set_title(f"{SPLIT_LABELS[split]} skills and topics")
        ax.set_xlabel("k (number of skills)")
        ax.set_xticks(cols[split])
        ax.grid(alpha=0.3)
    _legend(axes[0])
    axes[0][0].set_ylabel(f"Δ {METRIC_LABELS[metric]} vs baseline")
    fig.suptitle(f"Δ {METRIC_LABELS[metric]} vs the baseline, paired over shared items "
                 f"(95% paired bootstrap interval; filled = excludes 0)")
    return _save(fig, out / delta_plot_name(metric), dpi=110)


def _heatmap(grid, xlabels, ylabels, title: str, size: tuple[float, float], path: Path, *, annotate: bool,
             xrot: int, fonts: tuple[int, int], vline: float | None = None, dpi: int = 100) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=size)
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(xlabels)), xlabels, rotation=xrot, ha="right", fontsize=fonts[0])
    ax.set_yticks(range(len(ylabels)), ylabels, fontsize=fonts[1])
    if vline is not None:
        ax.axvline(vline, color="white", linewidth=3)
    if annotate:
        for (i, j), v in np.ndenumerate(grid):
            if not np.isnan(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    fig.colorbar(im, ax=ax, label="share of items earning the skill point (blank: never drawn)")
    ax.set_title(title)
    return _save(fig, path, dpi=dpi)


def row_labels(rows: list[Row]) -> list[str]:
    """Each row as the plots name it (legends, heatmap axes)."""
    return [_short(r.label, r) for r in rows]


def plot_heatmaps(labels: list[str], table, out: Path) -> list[Path]:
    """heatmap_categories.png (rows x categories, train categories left of the line, held-out right)
    and heatmap_skills.png (skills x rows), each cell the share of items that earned the point.
    Takes the rows' labels, not the rows: it runs in a worker process while the main one compares."""
    import numpy as np

    from skillmix.leaderboard.skills import TRAIN_CATEGORIES, categories_present

    cats = categories_present(table)

    def rate(tally) -> float:
        return tally.rate if tally is not None and tally.items else np.nan

    n_train = sum(c in TRAIN_CATEGORIES for c in cats)
    by_cat = np.array([[rate(table.per_row_category[i].get(c)) for c in cats] for i in range(len(labels))], dtype=float)
    by_skill = np.array([[rate(table.per_row[i].get(s)) for i in range(len(labels))] for s in table.skills], dtype=float)
    return [
        _heatmap(by_cat, [("train: " if c in TRAIN_CATEGORIES else "held-out: ") + c for c in cats], labels,
                 "Skill points earned, per category (train | held-out)",
                 (1.1 * len(cats) + 3.5, 0.42 * len(labels) + 2.2), out / "heatmap_categories.png", annotate=True,
                 xrot=35, fonts=(8, 8), vline=n_train - 0.5 if 0 < n_train < len(cats) else None),
        _heatmap(by_skill, labels, [f"{s} ({table.category[s]})" for s in table.skills], "Skill points earned, per skill",
                 (0.5 * len(labels) + 4.5, 0.16 * len(table.skills) + 2.5), out / "heatmap_skills.png", annotate=False,
                 xrot=45, fonts=(7, 6), dpi=90),
    ]
