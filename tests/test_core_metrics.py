import math

import pytest

from skillmix_tasks.metrics import bootstrap_ci, item_metrics, mean_stderr, summarize
from skillmix_tasks.scoring import Unscored, generation_metrics


def test_item_takes_each_metrics_max_over_scored_generations():
    gens = [generation_metrics(2, (1, 0, 1, 1, 1)), Unscored("api error"), generation_metrics(2, (1, 1, 1, 0, 1))]
    m = item_metrics(gens)
    # full marks from neither; all_skills from the second (skills 1,1 and 2 of 3 others);
    # skills_fraction from the first (all others met, 1 of 2 skills)
    assert m == {"full_marks": 0.0, "all_skills": 1.0, "skills_fraction": 0.5}


def test_item_with_no_scored_generation_is_unscored():
    m = item_metrics([Unscored("budget"), Unscored("budget")])
    assert isinstance(m, Unscored) and m.reason == "budget"
    mixed = item_metrics([Unscored("budget"), Unscored("api error")])
    assert isinstance(mixed, Unscored) and mixed.reason == "all generations unscored"
    assert "budget" in mixed.detail and "api error" in mixed.detail


def test_mean_stderr_matches_the_textbook_formula():
    values = [1, 0, 0, 1, 1]
    p = 0.6
    assert mean_stderr(values) == pytest.approx(math.sqrt(p * (1 - p) * 5 / 4 / 5))
    assert math.isnan(mean_stderr([1]))


def test_bootstrap_interval_contains_the_mean_and_is_reproducible():
    values = [1.0] * 30 + [0.0] * 70
    lo, hi = bootstrap_ci(values)
    assert lo < 0.3 < hi and 0.15 < lo and hi < 0.45
    assert bootstrap_ci(values) == (lo, hi)
    assert bootstrap_ci([1.0, 1.0]) == (1.0, 1.0)


def test_summary_excludes_unscored_items_and_counts_them_by_reason():
    items = [{"full_marks": 1.0, "all_skills": 1.0, "skills_fraction": 1.0},
             {"full_marks": 0.0, "all_skills": 1.0, "skills_fraction": 0.5},
             Unscored("budget"), Unscored("budget"), Unscored("api error")]
    s = summarize(items)
    assert (s.n_items, s.n_scored, s.n_unscored) == (5, 2, 3)
    assert s.unscored_by_reason == {"budget": 2, "api error": 1}
    assert s.metrics["full_marks"].mean == 0.5 and s.metrics["all_skills"].mean == 1.0
    d = s.to_dict()
    assert d["skills_fraction"] == 0.75 and d["n_unscored"] == 3 and len(d["full_marks_ci95"]) == 2
    assert d["full_marks_stderr"] == pytest.approx(0.5)


def test_summary_of_nothing_scored_is_nan_not_zero():
    s = summarize([Unscored("budget")])
    assert math.isnan(s.metrics["full_marks"].mean) and s.n_scored == 0
