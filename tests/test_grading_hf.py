"""The hf: backend on a tiny random local checkpoint. Its output is garbage, so this checks
the machinery: concurrent requests batched into generate() calls, usage counted, garbage
replies unscored with a reason (never points), replies cached and re-read without the model."""

from skillmix.grading import resolve_judge
from skillmix_tasks import Unscored

from grading_helpers import TEXT, items


def test_hf_judge_batches_caches_and_unscored(tiny_model, tmp_path):
    cache = tmp_path / "hf.sqlite"
    judge = resolve_judge(f"hf:{tiny_model}", {"cache": str(cache), "max_tokens": 8, "batch_size": 4,
                                                "temperature": 0})
    pairs = [(it, TEXT) for it in items(2)]  # 6 gradings
    grades = judge.grade(pairs, progress=False)
    assert sum(judge.backend.batches) == 6 and max(judge.backend.batches) > 1
    for g in grades:
        assert isinstance(g.score, Unscored)
        assert g.score.reason in ("no grading table", "empty reply", "missing criteria", "too few valid gradings")
    st = judge.stats.to_dict()
    assert st["calls"] == 6 and st["usage"]["input_tokens"] > 0 and st["cost"] == 0.0
    # Cached replies are re-read without loading or calling the model.
    again = resolve_judge(f"hf:{tiny_model}", {"cache": str(cache), "max_tokens": 8, "temperature": 0})
    grades2 = again.grade(pairs, progress=False)
    st2 = again.stats.to_dict()
    assert st2["calls"] == 6 - st["judged"] and st2["cached"] == st["judged"]
    assert (again.backend.batches == []) == (st["judged"] == 6)
    assert [g.replies for g in grades2] == [g.replies for g in grades]
