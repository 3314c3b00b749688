"""``skillmix-eval``: the paper's two-turn SKILL-MIX protocol on any lm-eval model.

Turn 1 asks for the text; the model's reply goes back into the chat with the improve turn
(the max(1, k-1) sentence cap); the last reply's answer is judged exactly like the
single-turn tasks. Generation goes through lm-eval's own model classes (``--model hf``,
``vllm``, ``local-chat-completions`` ...), with each model's chat template. Output is in
lm-eval's format (``results_<ts>.json``, ``samples_<task>_<ts>.jsonl``) with
``config.protocol = "two-turn"`` so the leaderboard reads both protocols.

Every finished generation is appended to ``<out>/<model>/two_turn_generations.jsonl``; a
re-run with the same arguments generates only what is missing, and judge replies come from
the judge cache.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from skillmix_tasks.lmeval.utils import build_docs
from skillmix_tasks.metrics import item_metrics, summarize
from skillmix_tasks.prompts import PROMPT_VERSION, extract_answer, two_turn_messages
from skillmix_tasks.sampling import DEFAULT_N, DEFAULT_SEED, Item
from skillmix_tasks.scoring import METRICS, Unscored

log = logging.getLogger("skillmix.eval")

PROTOCOL = "two-turn"
TASK_RE = re.compile(r"^skillmix_(train|heldout|all)(?:_k([1-6]))?$")
GEN_KWARGS = {"until": [], "do_sample": True, "temperature": 0.7, "max_gen_toks": 512}


def expand_tasks(names: str) -> tuple[list[tuple[str, str, int]], dict[str, list[str]]]:
    """``skillmix_heldout_k3,skillmix_train`` -> [(task, split, k)] and {group: [tasks]}."""
    tasks, groups = [], {}
    for name in filter(None, (n.strip() for n in names.split(","))):
        m = TASK_RE.match(name)
        if not m:
            raise SystemExit(f"skillmix-eval: unknown task {name!r}; expected skillmix_<train|heldout|all>[_k<1-6>]")
        split, k = m.group(1), m.group(2)
        ks = [int(k)] if k else list(range(1, 7))
        members = [(f"skillmix_{split}_k{kk}", split, kk) for kk in ks]
        if not k:
            groups[name] = [t for t, _, _ in members]
        tasks += [t for t in members if t not in tasks]
    return tasks, groups


def _chat(lm: Any, messages: list[dict]) -> Any:
    """The model's own chat template; a plain transcript for models that have none."""
    try:
        return lm.apply_chat_template(messages, add_generation_prompt=True)
    except Exception as e:  # a base model without a template
        log.warning("no usable chat template (%s); using a plain User/Assistant transcript", e)
        turns = [f"{'User' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in messages]
        return "\n\n".join(turns) + "\n\nAssistant:"


class GenerationLog:
    """Append-only record of finished generations, keyed by (task, item, repeat, turn)."""

    def __init__(self, path: Path):
        self.path = path
        self.done: dict[tuple[str, str, int, int], str] = {}
        if path.exists():
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    row = json.loads(line)
                    self.done[(row["task"], row["id"], row["repeat"], row["turn"])] = row["reply"]
                except (json.JSONDecodeError, KeyError):
                    log.warning("%s:%d: unreadable line skipped (an interrupted write?)", path, lineno)

    def add(self, task: str, item_id: str, repeat: int, turn: int, reply: str) -> None:
        self.done[(task, item_id, repeat, turn)] = reply
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"task": task, "id": item_id, "repeat": repeat, "turn": turn, "reply": reply},
                               ensure_ascii=False) + "\n")


def _generate_turn(lm, log_: GenerationLog, jobs: list[tuple[str, dict, int, Any]], turn: int,
                   gen_kwargs: dict) -> None:
    """Generate the missing replies of one turn in one batched lm-eval call."""
    from lm_eval.api.instance import Instance

    todo = [(t, d, r, ctx) for t, d, r, ctx in jobs if (t, d["id"], r, turn) not in log_.done]
    if not todo:
        return
    requests = [Instance("generate_until", d, (ctx, dict(gen_kwargs)), i, (t, i, 1))
                for i, (t, d, r, ctx) in enumerate(todo)]
    # Generate in chunks so a kill loses at most one chunk of work.
    chunk = 64
    for start in range(0, len(requests), chunk):
        replies = lm.generate_until(requests[start:start + chunk])
        for (t, d, r, _), reply in zip(todo[start:start + chunk], replies):
            log_.add(t, d["id"], r, turn, reply)


def run(args: argparse.Namespace) -> Path:
    import lm_eval.api.registry as registry
    from lm_eval.utils import simple_parse_args_string

    tasks, groups = expand_tasks(args.tasks)
    metadata = json.loads(args.metadata) if args.metadata else {}
    judge = None
    if not args.predict_only:
        from .lmeval import _judge_config
        from .judge import resolve_judge

        spec, config = _judge_config({**metadata, **({"judge": args.judge} if args.judge else {})})
        judge = resolve_judge(spec, config)  # fails now, before any generation
    gen_kwargs = {**GEN_KWARGS, **(simple_parse_args_string(args.gen_kwargs) if args.gen_kwargs else {})}
    n_items = int(metadata.get("n_items", DEFAULT_N))
    seed = int(metadata.get("seed", DEFAULT_SEED))

    lm = registry.get_model(args.model).create_from_arg_string(
        args.model_args or "", {"batch_size": args.batch_size, "device": args.device or _default_device()})
    model_name = _model_name(args)
    out_dir = Path(args.output_path) / re.sub(r"[^\w.-]+", "__", model_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    gens = GenerationLog(out_dir / "two_turn_generations.jsonl")

    docs = {t: build_docs(split, k, n_items, seed)[: args.limit or None] for t, split, k in tasks}
    # Turn 1 is the same chat for every repeat of an item: template it once.
    first = {(t, d["id"]): _chat(lm, two_turn_messages(Item.from_dict(d))) for t, _, _ in tasks for d in docs[t]}
    turn1 = [(t, d, r, first[(t, d["id"])]) for t, _, _ in tasks for d in docs[t] for r in range(args.repeats)]
    _generate_turn(lm, gens, turn1, 1, gen_kwargs)
    turn2 = [(t, d, r, _chat(lm, two_turn_messages(Item.from_dict(d), [gens.done[(t, d["id"], r, 1)]])))
             for t, d, r, _ in turn1]
    _generate_turn(lm, gens, turn2, 2, gen_kwargs)

    pairs = [(Item.from_dict(d), extract_answer(gens.done[(t, d["id"], r, 2)])) for t, d, r, _ in turn2]
    grades = judge.grade(pairs) if judge is not None else [None] * len(pairs)
    by_doc: dict[tuple[str, str], list] = {}
    for (t, d, r, _), g in zip(turn2, grades):
        by_doc.setdefault((t, d["id"]), []).append(g)

    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H-%M-%S.%f")
    results, configs, n_samples = {}, {}, {}
    for t, split, k in tasks:
        items, rows = [], []
        for doc_id, d in enumerate(docs[t]):
            doc_grades = by_doc[(t, d["id"])]
            metrics: dict[str, Any] = {}
            verdict: dict[str, Any] = {"id": d["id"], "judge": judge.spec if judge else "", "prompt_version": PROMPT_VERSION}
            if judge is None:
                verdict.update(status="not judged", scores=None)
            else:
                im = item_metrics([g.score for g in doc_grades])
                items.append(im)
                if isinstance(im, Unscored):
                    verdict.update(status="unscored", reason=im.reason, detail=im.detail, scores=None)
                    metrics = {"unscored": 1}
                else:
                    verdict.update(status="scored", scores=im)
                    metrics = {**im, "unscored": 0}
                verdict["generations"] = [g.to_dict() for g in doc_grades]
            rows.append({"doc_id": doc_id, "doc": d, "target": "", "protocol": PROTOCOL,
                         "arguments": [[str(first[(t, d["id"])])]],
                         "resps": [[[gens.done[(t, d["id"], r, 1)], gens.done[(t, d["id"], r, 2)]]
                                    for r in range(args.repeats)]],
                         "filtered_resps": [json.dumps(verdict, ensure_ascii=False)], "filter": "judged",
                         "metrics": list(metrics), **metrics})
        with open(out_dir / f"samples_{t}_{stamp}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        results[t] = _result_row(t, summarize(items) if judge is not None else None)
        configs[t] = {"task": t, "repeats": args.repeats, "generation_kwargs": gen_kwargs,
                      "metadata": {"version": 1.0, "protocol": PROTOCOL, "split": split, "k": k,
                                   "judge": judge.spec if judge else None, "judge_prompt_version": PROMPT_VERSION,
                                   "pretrained": simple_parse_args_string(args.model_args or "").get("pretrained")}}
        n_samples[t] = {"original": n_items, "effective": len(docs[t])}
    for group, members in groups.items():
        results[group] = _group_row(group, [results[m] for m in members])
    if judge is not None:
        stats = judge.stats.to_dict()
        for t, _, _ in tasks:
            configs[t]["metadata"]["judge_stats"] = stats
    doc = {
        "results": results, "group_subtasks": groups, "configs": configs,
        "versions": {t: 1.0 for t, _, _ in tasks}, "n-samples": n_samples,
        "higher_is_better": {t: {m: True for m in METRICS} for t, _, _ in tasks},
        "config": {"model": args.model, "model_args": args.model_args, "batch_size": args.batch_size,
                   "limit": args.limit, "gen_kwargs": gen_kwargs, "repeats": args.repeats, "protocol": PROTOCOL},
        "model_name": model_name, "model_name_sanitized": out_dir.name,
        "date": dt.datetime.now().timestamp(), "protocol": PROTOCOL,
    }
    path = out_dir / f"results_{stamp}.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str))
    _print_table(results)
    return path


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # API models need no torch
        return "cpu"


def _model_name(args: argparse.Namespace) -> str:
    from lm_eval.utils import simple_parse_args_string

    margs = simple_parse_args_string(args.model_args or "")
    return str(margs.get("pretrained") or margs.get("model") or args.model)


def _result_row(task: str, summary) -> dict:
    row: dict[str, Any] = {"alias": task}
    if summary is None:
        return row
    for m in METRICS:
        ms = summary.metrics[m]
        if summary.n_scored:
            row[f"{m},judged"] = ms.mean
            row[f"{m}_stderr,judged"] = ms.stderr if not math.isnan(ms.stderr) else "N/A"
            row[f"{m}_ci95,judged"] = list(ms.ci95)
    row["unscored,judged"] = summary.n_unscored
    row["unscored_stderr,judged"] = "N/A"
    row["unscored_by_reason,judged"] = summary.unscored_by_reason
    return row


def _group_row(group: str, rows: Sequence[dict]) -> dict:
    """Unweighted mean over k, as the lm-eval groups report it; stderr of a mean of independent means."""
    out: dict[str, Any] = {"alias": group}
    for m in METRICS:
        vals = [r[f"{m},judged"] for r in rows if f"{m},judged" in r]
        errs = [r.get(f"{m}_stderr,judged") for r in rows if f"{m},judged" in r]
        if vals:
            out[f"{m},judged"] = sum(vals) / len(vals)
            if all(isinstance(e, float) for e in errs):
                out[f"{m}_stderr,judged"] = math.sqrt(sum(e * e for e in errs)) / len(errs)
    return out


def _print_table(results: dict) -> None:
    print(f"|{'Task':<22}|{'full_marks':>12}|{'all_skills':>12}|{'skills_fraction':>16}|{'unscored':>9}|")
    for task, row in results.items():
        cells = []
        for m, w in (("full_marks", 12), ("all_skills", 12), ("skills_fraction", 16)):
            v, e = row.get(f"{m},judged"), row.get(f"{m}_stderr,judged")
            cells.append(f"{'-' if v is None else f'{v:.3f}'}{'' if not isinstance(e, float) else f' ±{e:.3f}'}".rjust(w))
        print(f"|{task:<22}|{'|'.join(cells)}|{str(row.get('unscored,judged', '-')):>9}|")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="skillmix-eval",
        description="Run the paper's two-turn SKILL-MIX protocol (write, then improve under the sentence cap) on "
                    "any lm-eval model, judge the final answers, and write lm-eval-format results.",
        epilog="Example: skillmix-eval --model hf --model_args pretrained=HuggingFaceTB/SmolLM2-135M-Instruct "
               "--tasks skillmix_heldout_k3 --output_path runs/ --judge openai:gpt-4o",
    )
    p.add_argument("--model", required=True, help="lm-eval model type: hf, vllm, local-chat-completions, ...")
    p.add_argument("--model_args", default="", help="lm-eval model arguments, e.g. pretrained=DIR,dtype=bfloat16")
    p.add_argument("--tasks", required=True, help="comma-separated skillmix_<split>_k<k> tasks or skillmix_<split> groups")
    p.add_argument("--output_path", required=True, help="folder for results_*.json and samples_*.jsonl")
    p.add_argument("--judge", help="judge spec (else --metadata judge, else SKILLMIX_JUDGE); see grading/README.md")
    p.add_argument("--metadata", help='JSON: {"judge": ..., "judge_config": {...}, "n_items": 100, "seed": 1234}')
    p.add_argument("--limit", type=int, help="only the first N items of each task (a prefix of the full draw)")
    p.add_argument("--repeats", type=int, default=3, help="generations per item; the item scores their max (default 3)")
    p.add_argument("--gen_kwargs", help="override generation settings, e.g. max_gen_toks=256,temperature=0.7")
    p.add_argument("--batch_size", default=1, help="passed to the lm-eval model")
    p.add_argument("--device", default=None, help="passed to the lm-eval model (e.g. cuda:0)")
    p.add_argument("--predict_only", action="store_true", help="generate both turns without judging (no judge needed)")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("skillmix").setLevel(logging.INFO)
    args = build_parser().parse_args(argv)
    from .specs import JudgeConfigError

    try:
        path = run(args)
    except JudgeConfigError as e:
        print(f"skillmix-eval: no usable judge, so nothing was generated.\n{e}", file=sys.stderr)
        return 2
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
