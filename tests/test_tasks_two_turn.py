"""The paper's two-turn protocol inside lm_eval: turn 1 through lm-eval's own generation, turn 2
through the same model object from the ``judged`` filter, the judge on turn 2 only.

Expensive lm_eval runs are module fixtures shared by the tests that read them."""

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fake_llm_server import Action, FakeLLMServer
from lmeval_helpers import results, run_lm_eval, samples
from skillmix_tasks.prompts import extract_answer

BIN = Path(sys.executable).parent
TWO_TURN_TASKS = {"skillmix_heldout_k3": 3, "skillmix_train_k2": 2}
SINGLE = "skillmix_heldout_k3_single"
CAP = {3: "at most two sentences", 2: "at most one sentence"}
SINGLE_MARK = "long, set in the context of"  # only the one-prompt variant states the length up front


def student_handler():
    """Distinct replies: DRAFT n to a turn 1, FINAL n to a turn 2, ONLY n to the one prompt."""
    counter = itertools.count()

    def handler(request):
        body = request["body"]
        if body.get("model") != "student":
            return None
        msgs = body["messages"]
        n = next(counter)
        if len(msgs) == 3:
            return Action(text=f"Answer: FINAL {n} text.\nExplanation: improved.")
        kind = "ONLY" if SINGLE_MARK in msgs[0]["content"] else "DRAFT"
        return Action(text=f"Answer: {kind} {n} text.\nExplanation: first go.")

    return handler


def graded_texts(srv, since=0):
    """The student texts the judge was shown."""
    out = []
    for r in srv.requests[since:]:
        if r["body"].get("model") == "judge":
            m = re.search(r"<<<\n(.*?)\n>>>", r["body"]["messages"][-1]["content"], re.S)
            out.append(m.group(1))
    return out


def judge_env(srv):
    return {"SKILLMIX_JUDGE": f"openai-compatible:judge@{srv.openai_url}"}


def api_args(srv):
    return ["--model", "local-chat-completions", "--model_args",
            f"model=student,base_url={srv.openai_url}/chat/completions,num_concurrent=4", "--apply_chat_template"]


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    """Both protocols in one lm_eval run on an API student, judged by the same local server."""
    out = tmp_path_factory.mktemp("api")
    with FakeLLMServer() as srv:
        srv.handler = student_handler()
        proc = run_lm_eval([*api_args(srv), "--tasks", ",".join([*TWO_TURN_TASKS, SINGLE]), "--limit", "2",
                            "--log_samples", "--gen_kwargs", "max_gen_toks=64"], out, judge_env(srv))
        assert proc.returncode == 0, proc.stderr[-3000:]
        yield srv, out


def _student_requests(srv):
    return [r["body"] for r in srv.requests if r["body"].get("model") == "student"]


def test_api_student_gets_one_turn_1_and_one_turn_2_request_per_doc_and_repeat(api_run):
    srv, _ = api_run
    bodies = _student_requests(srv)
    single = [b for b in bodies if len(b["messages"]) == 1 and SINGLE_MARK in b["messages"][0]["content"]]
    first = [b for b in bodies if len(b["messages"]) == 1 and b not in single]
    second = [b for b in bodies if len(b["messages"]) == 3]
    assert len(bodies) == len(single) + len(first) + len(second)
    assert len(single) == 2 * 3  # one prompt: 2 docs x 3 repeats
    assert len(first) == len(second) == 2 * 2 * 3  # 2 tasks x 2 docs x 3 repeats, each turn once
    # --gen_kwargs reaches both turns; the rest is the paper's setting
    assert {(b["max_tokens"], b["temperature"]) for b in bodies} == {(64, 0.7)}

    drafts = Counter(b["messages"][1]["content"] for b in second)
    assert all(c.startswith("Answer: DRAFT ") for c in drafts) and max(drafts.values()) == 1  # each draft once
    assert len(drafts) == len(first)
    prompts1 = Counter(b["messages"][0]["content"] for b in first)
    for b in second:
        user1, reply, user2 = b["messages"]
        assert [m["role"] for m in b["messages"]] == ["user", "assistant", "user"]
        assert prompts1[user1["content"]] == 3  # the same turn-1 prompt, once per repeat
        k = user1["content"].split("skills: ")[1].split(".\n")[0].count(", ") + 1
        assert CAP[k] in user2["content"] and "at most" not in user1["content"]
    assert {CAP[3], CAP[2]} <= {c for b in second for c in CAP.values() if c in b["messages"][2]["content"]}


def test_the_judge_sees_only_final_turns(api_run):
    srv, _ = api_run
    texts = graded_texts(srv)
    assert len(texts) == (12 + 6) * 3  # every final text, 3 gradings each
    assert all(re.fullmatch(r"(FINAL|ONLY) \d+ text\.", t) for t in texts), set(texts)
    finals = Counter(t for t in texts if t.startswith("FINAL"))
    assert len(finals) == 12 and set(finals.values()) == {3}


def test_samples_hold_both_turns_and_results_name_the_protocol(api_run):
    _, out = api_run
    res = results(out)
    for task in TWO_TURN_TASKS:
        assert res["configs"][task]["metadata"]["protocol"] == "two-turn"
        assert res["results"][task]["full_marks,judged"] == 1.0 and res["results"][task]["unscored,judged"] == 0
        rows = samples(out, task)
        assert len(rows) == 2
        for row in rows:
            verdict = json.loads(row["filtered_resps"][0])
            assert verdict["protocol"] == "two-turn" and verdict["status"] == "scored"
            drafts = row["resps"][0]  # lm-eval's own resps: turn 1
            assert [g["repeat"] for g in verdict["generations"]] == [0, 1, 2]
            for g, draft in zip(verdict["generations"], drafts):
                assert g["turns"][0] == draft and g["turns"][1].startswith("Answer: FINAL ")
                assert g["text"] == extract_answer(g["turns"][1]) and len(g["gradings"]) == 3
    assert res["configs"][SINGLE]["metadata"]["protocol"] == "single-turn"
    for row in samples(out, SINGLE):
        verdict = json.loads(row["filtered_resps"][0])
        assert verdict["protocol"] == "single-turn"
        assert [g["turns"] for g in verdict["generations"]] == [[r] for r in row["resps"][0]]


def _grade(samples_file, out, srv):
    proc = subprocess.run([str(BIN / "skillmix-grade"), "--judge", f"openai-compatible:judge@{srv.openai_url}",
                           "--input", str(samples_file), "--output", str(out), "--cache", "off", "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_skillmix_grade_regrades_only_the_final_turn_of_either_protocol(api_run, tmp_path):
    srv, out = api_run
    for task, word in (("skillmix_heldout_k3", "FINAL"), (SINGLE, "ONLY")):
        before = len(srv.requests)
        (path,) = (out / "student").glob(f"samples_{task}_[0-9]*.jsonl")
        grades = _grade(path, tmp_path / f"{task}.jsonl", srv)
        assert len(grades) == 2 * 3 and all(g["text"].startswith(word) for g in grades)
        assert all(t.startswith(word) for t in graded_texts(srv, before)) and len(graded_texts(srv, before)) == 18
    # A two-turn sample without the turns in its verdict is refused, never graded on the drafts in resps;
    # so is one whose turn 2 failed (its verdict holds turn 1 only).
    row = json.loads(next((out / "student").glob("samples_skillmix_heldout_k3_[0-9]*.jsonl")).read_text().splitlines()[0])
    no_turns = {**row, "filtered_resps": [json.dumps({"protocol": "two-turn", "generations": [{"text": "x"}]})]}
    no_verdict = {**row, "filtered_resps": ["{}"]}
    drafts_only = {**row, "filtered_resps": [json.dumps({"protocol": "two-turn", "status": "unscored",
                                                         "reason": "turn 2 failed", "generations": [
                                                             {"turns": ["Answer: draft."], "text": "draft."}]})]}
    for name, line in (("no_turns", no_turns), ("no_verdict", no_verdict), ("drafts_only", drafts_only)):
        (tmp_path / f"{name}.jsonl").write_text(json.dumps(line) + "\n")
        proc = subprocess.run([str(BIN / "skillmix-grade"), "--judge", "openai:gpt-4o", "--input",
                               str(tmp_path / f"{name}.jsonl"), "--dry-run"], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "OPENAI_API_KEY": "sk-test"})
        assert proc.returncode == 2 and f"{name}.jsonl:1" in proc.stderr, (name, proc.stderr[-2000:])
        assert "turn" in proc.stderr and row["doc"]["id"] in proc.stderr


def test_two_protocols_or_two_runs_of_one_item_are_never_pooled(api_run, tmp_path):
    """The two-turn and the one-prompt sample of the same item, joined into one file (or one run's samples
    twice), would be one item with six generations: refused with the doc ids, before any call."""
    srv, out = api_run
    two = (out / "student").glob("samples_skillmix_heldout_k3_2*.jsonl")
    one = (out / "student").glob(f"samples_{SINGLE}_2*.jsonl")
    two_lines, one_lines = next(two).read_text().splitlines(), next(one).read_text().splitlines()
    ids = [json.loads(x)["doc"]["id"] for x in two_lines]
    assert ids == [json.loads(x)["doc"]["id"] for x in one_lines]  # the same items under both protocols
    for name, lines, words in (("mixed", two_lines + one_lines, ("protocols", "'single-turn'", "'two-turn'")),
                               ("twice", two_lines + two_lines, ("the same items twice",))):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        before = len(srv.requests)
        proc = subprocess.run([str(BIN / "skillmix-grade"), "--judge", f"openai-compatible:judge@{srv.openai_url}",
                               "--input", str(path), "--output", str(tmp_path / f"{name}_grades.jsonl"),
                               "--cache", "off", "--no-progress"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert all(w in proc.stderr for w in words) and all(i in proc.stderr for i in ids), proc.stderr[-2000:]
        assert f"{path}:1" in proc.stderr and len(srv.requests) == before
        assert not (tmp_path / f"{name}_grades.jsonl").exists()


def test_predict_only_generates_both_turns_judges_nothing_and_regrades_later(tmp_path):
    with FakeLLMServer() as srv:
        srv.handler = student_handler()
        proc = run_lm_eval([*api_args(srv), "--tasks", "skillmix_heldout_k3", "--limit", "1", "--predict_only",
                            "--log_samples"], tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert [len(b["messages"]) for b in _student_requests(srv)].count(3) == 3
        assert len(_student_requests(srv)) == 6 and not graded_texts(srv)
        assert "'bypass' placeholder (999) for this task, which is no score" in proc.stderr
        (row,) = samples(tmp_path, "skillmix_heldout_k3")
        verdict = json.loads(row["filtered_resps"][0])
        assert verdict["status"] == "not judged" and verdict["protocol"] == "two-turn"
        assert [len(g["turns"]) for g in verdict["generations"]] == [2, 2, 2]
        (path,) = tmp_path.glob("**/samples_skillmix_heldout_k3_[0-9]*.jsonl")
        grades = _grade(path, tmp_path / "grades.jsonl", srv)
        assert sorted(g["text"] for g in grades) == sorted(extract_answer(g["turns"][1]) for g in verdict["generations"])


@pytest.fixture(scope="module")
def hf_run(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("hf")
    with FakeLLMServer() as srv:
        proc = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={tiny_model}", "--apply_chat_template",
                            "--tasks", "skillmix_heldout_k2", "--limit", "2", "--log_samples",
                            "--gen_kwargs", "max_gen_toks=8"], out, judge_env(srv))
        assert proc.returncode == 0, proc.stderr[-3000:]
        yield srv, out


def test_hf_checkpoint_two_turns_through_its_chat_template_and_the_judge_sees_turn_2(hf_run):
    srv, out = hf_run
    res = results(out)
    assert res["configs"]["skillmix_heldout_k2"]["metadata"]["protocol"] == "two-turn"
    assert res["configs"]["skillmix_heldout_k2"]["metadata"]["judge_stats"]["gradings"] == 2 * 3 * 3
    rows = samples(out, "skillmix_heldout_k2")
    finals = []
    for row in rows:
        assert "<|im_start|>user" in str(row["arguments"])  # turn 1 in the model's own template
        verdict = json.loads(row["filtered_resps"][0])
        assert [len(g["turns"]) for g in verdict["generations"]] == [2, 2, 2]
        assert [g["turns"][0] for g in verdict["generations"]] == row["resps"][0]
        finals += [extract_answer(g["turns"][1]) for g in verdict["generations"]]
    assert Counter(graded_texts(srv)) == Counter({t: 3 * n for t, n in Counter(finals).items()})


def _stderr_only_one_message(err: str) -> None:
    assert "Traceback" not in err and "Running generate_until" not in err


def test_two_turn_without_apply_chat_template_stops_before_the_model_loads(tmp_path):
    proc = run_lm_eval(["--model", "hf", "--model_args", "pretrained=/nonexistent/model", "--tasks", "skillmix_heldout_k3",
                        "--limit", "1"], tmp_path, {"SKILLMIX_JUDGE": "openai-compatible:judge@http://127.0.0.1:9/v1"})
    assert proc.returncode == 2
    assert "--apply_chat_template" in proc.stderr and "skillmix_heldout_k3_single" in proc.stderr
    _stderr_only_one_message(proc.stderr)
    assert "Initializing hf model" not in proc.stderr


def test_a_checkpoint_without_a_chat_template_stops_before_any_generation(tiny_model, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(tiny_model, plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    proc = run_lm_eval(["--model", "hf", "--model_args", f"pretrained={plain}", "--apply_chat_template",
                        "--tasks", "skillmix_heldout_k3", "--limit", "1"], tmp_path,
                       {"SKILLMIX_JUDGE": "openai-compatible:judge@http://127.0.0.1:9/v1"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "needs a chat template" in proc.stderr and "skillmix_heldout_k3_single" in proc.stderr
    _stderr_only_one_message(proc.stderr)


SHIM = '''
import os, sys
# lm-eval's hf model splits docs across processes only when it counts more than one GPU; on a
# CPU box make it count the processes (they are real gloo ranks under accelerate launch).
if os.environ.get("SKILLMIX_TEST_FAKE_GPU_COUNT"):
    import torch
    _n, _real = int(os.environ["SKILLMIX_TEST_FAKE_GPU_COUNT"]), torch.cuda.device_count
    def device_count():
        return _n if sys._getframe(1).f_globals.get("__name__") == "lm_eval.models.huggingface" else _real()
    torch.cuda.device_count = device_count
'''


def test_two_processes_under_accelerate_each_do_turn_2_for_their_own_docs(tiny_model, tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SHIM)
    out = tmp_path / "out"
    out.mkdir()
    with FakeLLMServer() as srv:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1", "SKILLMIX_TEST_FAKE_GPU_COUNT": "2",
               "PYTHONPATH": str(shim), "SKILLMIX_CACHE": str(out / "judge.sqlite"), **judge_env(srv)}
        proc = subprocess.run([str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
                               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                               "--main_process_port", "0", "-m", "lm_eval",
                               "--model", "hf", "--model_args", f"pretrained={tiny_model}", "--apply_chat_template",
                               "--tasks", "skillmix_heldout_k2", "--limit", "3", "--gen_kwargs", "max_gen_toks=8",
                               "--log_samples", "--output_path", str(out)],
                              capture_output=True, text=True, env=env, cwd=out, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert "on rank 1" in proc.stderr  # two ranks, each with its share of the docs
        assert srv.calls == 3 * 3 * 3  # 3 docs x 3 final texts x 3 gradings: none lost, none graded twice
    assert len(list(out.glob("**/results_*.json"))) == 1
    res = results(out)
    assert res["configs"]["skillmix_heldout_k2"]["metadata"]["judge_stats"]["gradings"] == 27  # both ranks' stats
    rows = samples(out, "skillmix_heldout_k2")
    assert sorted(r["doc_id"] for r in rows) == [0, 1, 2]
    for row in rows:  # 3 docs on 2 ranks: lm-eval pads one rank with copies; a doc still has 3 repeats
        verdict = json.loads(row["filtered_resps"][0])
        assert verdict["status"] == "scored" and [len(g["turns"]) for g in verdict["generations"]] == [2, 2, 2]
