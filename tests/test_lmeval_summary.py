"""What the lm-eval glue says in lm_eval's own output after judging: why items are unscored, and a
local judge that fails most of its gradings is called out."""

import json
import logging

import skillmix.harness.tasks.utils as lmeval


def _verdicts(*statuses):
    return [json.dumps({"status": s, "reason": r}) for s, r in statuses]


def test_unscored_reasons_are_logged_with_their_counts(caplog):
    with caplog.at_level(logging.WARNING, logger=lmeval.log.name):
        lmeval._log_unscored("skillmix_heldout_k3", _verdicts(("unscored", "no grading table"), ("scored", None),
                                                               ("unscored", "no grading table"), ("unscored", "timeout")))
    assert "skillmix_heldout_k3: 3 of 4 items unscored (left out of the means): no grading table: 2; timeout: 1" in caplog.text
    assert "no item was scored" not in caplog.text  # one item was
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=lmeval.log.name):
        lmeval._log_unscored("skillmix_heldout_k3", _verdicts(("unscored", "auth error"), ("unscored", "auth error")))
    assert "skillmix_heldout_k3: no item was scored (auth error: 2)" in caplog.text
    assert "skillmix-grade --judge <spec> --input <that file> --results-dir" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=lmeval.log.name):
        lmeval._log_unscored("t", _verdicts(("scored", None)))
    assert caplog.text == ""


def test_a_local_judge_failing_most_gradings_says_so(caplog):
    stats = {"gradings": 9, "unscored_gradings": {"no grading table": 7}}
    with caplog.at_level(logging.WARNING, logger=lmeval.log.name):
        lmeval._warn_local_judge("hf:/models/SmolLM2", stats)
        lmeval._warn_local_judge("openai:gpt-4o", stats)  # a provider's judge: its failures are reported elsewhere
        lmeval._warn_local_judge("hf:/models/x", {"gradings": 9, "unscored_gradings": {"timeout": 4}})  # not most
    assert caplog.text.count("failed") == 1
    assert "hf:/models/SmolLM2 failed 7 of 9 gradings (no grading table: 7)" in caplog.text and "demo-grade" in caplog.text
