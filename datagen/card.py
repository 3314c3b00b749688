"""The dataset card (the output folder's README.md), written from a run's summary: specs, settings,
what was allowed, per-k counts, tokens and cost, and how to load the files with ``datasets``."""

from __future__ import annotations


def dataset_card(summary: dict) -> str:
    per_k = summary["per_k"]
    configs = "\n".join(f"- config_name: k{k}\n  data_files: {d['file']}" for k, d in per_k.items())
    lines = [
        "---", "configs:", configs, "---", "",
        "# D_SKILL-MIX: synthetic SKILL-MIX training conversations", "",
        "Two-turn conversations (turn 1, answer 1, turn 2, answer 2) written by a teacher model and kept only "
        "when the judge gave the final answer full marks (all k+3 points after majority vote of the gradings "
        "and the programmatic rules: sentence count, no skill named). Recipe of Zhao et al., \"Can Models "
        "Learn Skill Composition from Examples?\" (NeurIPS 2024); made with `skillmix-datagen`.", "",
        f"- teacher: `{summary['teacher']}` (temperature {summary['teacher_settings']['temperature']}, "
        f"max tokens {summary['teacher_settings']['max_tokens']})",
        f"- judge: `{summary['judge']}` ({summary['judge_settings']['n_gradings']} gradings, majority vote)",
        f"- prompt version: `{summary['prompt_version']}`; seed {summary['seed']}; "
        f"{summary['generations_per_item']} generation(s) per item",
    ]
    included = {k: d for k, d in per_k.items() if not d.get("eval_items_excluded", True)}
    if included:
        n = sum(d.get("eval_items", 0) for d in included.values())
        lines.append(f"- **benchmark evaluation items were allowed (--include-eval-items) at k={', '.join(included)}: "
                     f"{n} pool item(s) are the benchmark's own lm-eval items; scores of a model trained on this "
                     f"data on those tasks are not on unseen combinations.**")
    else:
        lines.append("- benchmark evaluation items left out of the pools: yes (none of the benchmark's own "
                     "lm-eval items is here)")
    earlier = [k for k, d in per_k.items() if d.get("from_earlier_run")]
    if earlier:
        lines.append(f"- k={', '.join(earlier)}: from an earlier run into this folder (teacher "
                     f"{', '.join(sorted({'`' + per_k[k]['teacher'] + '`' for k in earlier}))}); its counts are that run's")
    if any(d.get("heldout_allowed") for d in per_k.values()):
        n = sum(d["heldout_items"] for d in per_k.values())
        lines.append(f"- **HELD-OUT CONTENT WAS ALLOWED (--allow-heldout): {n} pool item(s) use held-out topics or "
                     f"held-out skills at k>=2. Do not evaluate a model trained on this data on SKILL-MIX held-out "
                     f"splits.**")
    else:
        lines.append("- held-out content: none (no held-out topic; no held-out skill at k>=2)")
    lines += ["", "| k | file | skills x topics | pool | judged | full marks | kept | duplicates | "
              "keep ratio (judged) | keep ratio (pool) | unscored by reason |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for k, d in per_k.items():
        unscored = ", ".join(f"{r}: {n}" for r, n in d["unscored_by_reason"].items()) or "none"
        ratio = lambda x: "n/a" if x is None else f"{x:.1%}"  # noqa: E731
        lines.append(f"| {k} | `{d['file']}` | {d['skill_split']} x {d['topic_split']} | {d['pool']} | {d['judged']} | "
                     f"{d['full_marks']} | {d['kept']} | {d['duplicates_dropped']} | {ratio(d['keep_ratio_of_judged'])} | "
                     f"{ratio(d['keep_ratio_of_pool'])} | {unscored} |")
    lines += ["", "Tokens and cost of the whole dataset (cached replies included; cost from list prices, "
              "n/a where unknown):", "",
              "| k | teacher in | teacher out | teacher cost | judge in | judge out | judge cost |",
              "|---|---|---|---|---|---|---|"]
    money = lambda x: "n/a" if x is None else f"${x:.2f}"  # noqa: E731
    for k, d in per_k.items():
        t, j = d["teacher_tokens"], d["judge_tokens"]
        lines.append(f"| {k} | {t['input_tokens']} | {t['output_tokens']} | {money(d['teacher_cost'])} | "
                     f"{j['input_tokens']} | {j['output_tokens']} | {money(d['judge_cost'])} |")
    run = summary["this_run"]
    lines += ["", f"This run: {run['teacher']['calls']} teacher calls ({run['teacher']['cached']} from cache), "
              f"{run['judge'].get('calls', 0)} judge calls ({run['judge'].get('cached', 0)} from cache), "
              f"cost {money(run['teacher']['cost'])} + {money(run['judge']['cost'])}.", "",
              "Each line: `id`, `item_id`, `generation`, `k`, `skills`, `topic`, `messages` (user, assistant, "
              "user, assistant), `answer` (the graded text), `grades` (criteria, points, per-grading points, "
              "judge replies), `teacher`, `judge`, `prompt_version`, `skill_split`, `topic_split`, `seed`, "
              "`heldout_allowed`, `eval_items_excluded`.", "",
              "```python", "import datasets",
              f"ds = datasets.load_dataset(\"json\", data_files=\"{next(iter(per_k.values()))['file']}\", split=\"train\")",
              "```", ""]
    return "\n".join(lines)
