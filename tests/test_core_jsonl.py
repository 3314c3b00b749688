"""The project's JSONL reader takes every string JSON allows: lm-eval writes samples with
``ensure_ascii=False``, so line and paragraph separators (U+2028, U+2029, U+0085) arrive raw
inside strings and must not split a line."""

import json

import pytest

from skillmix_tasks.jsonl import dumps_ascii, iter_objects, loads

SEPARATORS = "a\u2028b\u2029c\u0085d\x1ce"  # str.splitlines() splits at each of them; JSON does not


def test_raw_unicode_separators_stay_inside_their_string(tmp_path):
    path = tmp_path / "s.jsonl"
    rows = [{"text": SEPARATORS}, {"text": "plain"}, {"text": "\u2028"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert "\u2028" in path.read_text(encoding="utf-8")  # written raw, as lm-eval does
    assert list(iter_objects(path)) == [(1, rows[0]), (2, rows[1]), (3, rows[2])]


def test_line_numbers_crlf_bom_and_blank_lines(tmp_path):
    path = tmp_path / "w.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": "x\xe2\x80\xa8y"}\r\n\r\n{"b": 2}\r\n{"c": \n')
    with pytest.raises(ValueError, match=r"w.jsonl:4: not valid JSON"):
        list(iter_objects(path))
    path.write_bytes(b'\xef\xbb\xbf{"a": "x\xe2\x80\xa8y"}\r\n\r\n{"b": 2}\r\n')
    assert list(iter_objects(path)) == [(1, {"a": "x\u2028y"}), (3, {"b": 2})]


def test_skillmix_grade_reads_an_lmeval_sample_with_a_raw_line_separator(tmp_path):
    from skillmix.harness.regrade import read_pairs
    from skillmix_tasks import sample_items

    item = sample_items("heldout", 2, n=1)[0]
    reply = "Answer: The hem held.\u2028So did the seam.\u2029\nExplanation: both skills."
    path = tmp_path / "samples_skillmix_heldout_k2_x.jsonl"
    doc = {**item.to_dict(), "protocol": "single-turn"}  # lm-eval's resps are a single-turn task's answers
    path.write_text(json.dumps({"doc": doc, "resps": [[reply]]}, ensure_ascii=False) + "\n", encoding="utf-8")
    [(got, text)] = read_pairs(path)
    assert got == item and text == "The hem held.\u2028So did the seam."  # strip() takes the trailing U+2029


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_batch_results_with_a_raw_line_separator_are_read_whole(provider, fake_server, tmp_path, monkeypatch):
    from fake_llm_server import Action, grading_table
    from grading_helpers import TEXT, items, judge_for

    # A judge whose explanation holds U+2028: the results file carries it raw (valid JSON), one line.
    fake_server.handler = lambda r: Action(text=grading_table(r["body"]["messages"][-1]["content"])
                                           + "\nExplanation: fine\u2028work.")
    judge = judge_for(provider, fake_server, tmp_path, monkeypatch, batch=True, batch_poll_interval=0.01)
    [grade] = judge.grade([(items(1)[0], TEXT)], progress=False)
    assert grade.scored and all("\u2028" in r for r in grade.replies), grade.score


# What the standard library alone accepts (NaN, infinities, lone surrogate escapes, integers over
# 64 bits, deep nesting) must read as it does there; the fast parser takes the rest.
ODD_JSON = ['{"x": NaN, "y": -Infinity}', '"\\ud800 lone"', '[123456789012345678901234567890]',
            '[' * 500 + ']' * 500, '[18446744073709551616, -9223372036854775809, 1234567890123456789]', '{"a": "x\u2028y \U0001F600", "b": 1e400, "c": 0.1, "a": 2}', '[]']


@pytest.mark.parametrize("text", ODD_JSON)
def test_loads_reads_what_the_standard_library_reads(text):
    a, b = loads(text), json.loads(text)
    assert json.dumps(a) == json.dumps(b)


def test_loads_deep_nesting_fails_as_the_standard_library_does():
    with pytest.raises(RecursionError):
        loads("[" * 100_000 + "]" * 100_000)


def test_loads_errors_are_the_standard_librarys():
    with pytest.raises(json.JSONDecodeError) as e:
        loads('{"a": }')
    assert e.value.colno == 7


@pytest.mark.parametrize("obj", [
    {"t": "a\u2028b\u2029c </script> \U0001F600 é \x00 \"q\"", "n": [1, 2.5, -0.0, 10**18], "z": None, "b": True},
    {"lone": "\ud800x"},  # orjson refuses a lone surrogate; the standard library writes it escaped
    ["plain"]])
def test_dumps_ascii_is_ascii_and_reads_back_the_same(obj):
    text = dumps_ascii(obj)
    assert text.isascii() and "\u2028" not in text
    assert json.loads(text) == obj


def test_dumps_ascii_writes_non_finite_numbers_as_null():
    assert json.loads(dumps_ascii({"x": float("nan"), "y": float("inf"), "z": 1.0})) == {"x": None, "y": None, "z": 1.0}
