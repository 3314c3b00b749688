"""skillmix.harness: SKILL-MIX inside lm-evaluation-harness.

From ``lm_eval --tasks skillmix_heldout_k3`` to a number, in two files:

- ``tasks/``: the task folder (YAMLs over ``_default_template_yaml``) and ``tasks/utils.py``, its one
  hooks module: the dataset, ``judge_filter`` (generates turn 2 through the run's own model object,
  then judges the final turns) and ``process_results``. Its docstring names where a grading reply is
  parsed (``skillmix_tasks/scoring.py``) and where each metric is computed (``skillmix_tasks/metrics.py``).
- ``verdicts.py``: the verdict format, written by the filter and read by everything that reads samples
  files (``skillmix-grade``, the leaderboard, the quickstart report).
- ``checks.py``: what stops a run before the model loads or anything is generated.
- ``lmeval_internals.py``: every reach into lm-eval's private code, behind a version gate.
- ``_lmeval_hook.py``: lets a bare ``lm_eval`` find the tasks (imported by ``skillmix_lmeval.pth``; import-free).
- ``regrade.py`` (``skillmix-grade``) and ``results.py``: grade saved samples again and write lm-eval
  results files of the re-graded run.

This package sits above ``skillmix.grading`` (judges) and ``skillmix_tasks`` (the pure benchmark); it
must stay cheap to import, since the hook imports it in every interpreter.
"""
