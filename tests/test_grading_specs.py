"""Judge specs, settings and resolution: all checked eagerly, without the network."""

import re

import pytest

from grading_helpers import FAKE_KEY
from skillmix.grading import JudgeConfigError, JudgeSpec, make_settings, parse_spec, resolve_judge
from skillmix.grading.specs import HOW_TO_CONFIGURE


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in ("SKILLMIX_JUDGE", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL",
                "ANTHROPIC_BASE_URL", "SKILLMIX_JUDGE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SKILLMIX_CACHE", str(tmp_path / "c.sqlite"))


@pytest.mark.parametrize("text, spec", [
    ("openai:gpt-4o", JudgeSpec("openai", "gpt-4o")),
    ("anthropic:claude-sonnet-4-6", JudgeSpec("anthropic", "claude-sonnet-4-6")),
    ("openai-compatible:meta/llama-3@http://localhost:8000/v1/", JudgeSpec("openai-compatible", "meta/llama-3", "http://localhost:8000/v1")),
    ("hf:/models/judge:v2", JudgeSpec("hf", "/models/judge:v2")),
])
def test_parse_spec_round_trips(text, spec):
    assert parse_spec(text) == spec
    assert parse_spec(str(spec)) == spec


@pytest.mark.parametrize("bad", ["gpt-4o", "azure:gpt-4o", "openai:", "openai-compatible:model", "openai-compatible:m@ftp://x"])
def test_bad_specs_are_config_errors(bad):
    with pytest.raises(JudgeConfigError):
        parse_spec(bad)


def test_no_judge_lists_the_four_ways():
    with pytest.raises(JudgeConfigError) as e:
        resolve_judge()
    msg = str(e.value)
    for way in ("--judge", "SKILLMIX_JUDGE", "YAML", "OPENAI_API_KEY"):
        assert way in msg
    for form in ("openai:", "anthropic:", "openai-compatible:", "hf:"):
        assert form in msg
    assert msg == HOW_TO_CONFIGURE


@pytest.mark.parametrize("command, flag, absent", [
    ("skillmix-grade", "skillmix-grade --judge", "lm_eval"),
    ("skillmix-datagen", "skillmix-datagen --config judge.yaml", "lm_eval"),
    ("lm_eval", """--metadata '{"judge": "openai:gpt-4o"}'""", "--judge"),
])
def test_the_no_judge_error_shows_the_flags_of_its_command(command, flag, absent):
    from skillmix.grading.specs import choose_spec

    with pytest.raises(JudgeConfigError) as e:
        choose_spec(None, None, command=command)
    assert flag in str(e.value) and absent not in str(e.value)
    with pytest.raises(JudgeConfigError) as e:
        resolve_judge(command=command)
    assert flag in str(e.value) and absent not in str(e.value)


def test_missing_keys_and_dirs_fail_fast(tmp_path):
    with pytest.raises(JudgeConfigError, match="OPENAI_API_KEY"):
        resolve_judge("openai:gpt-4o")
    with pytest.raises(JudgeConfigError, match="ANTHROPIC_API_KEY"):
        resolve_judge("anthropic:claude-sonnet-4-6")
    with pytest.raises(JudgeConfigError, match="not a directory"):
        resolve_judge(f"hf:{tmp_path / 'nope'}")
    with pytest.raises(JudgeConfigError, match="config.json"):
        resolve_judge(f"hf:{tmp_path}")


def test_dry_run_credentials_stand_in_for_a_missing_key_without_touching_the_environment(monkeypatch):
    import asyncio
    import os

    from skillmix.grading.specs import dry_run_credentials

    env = dict(os.environ)
    with dry_run_credentials():
        judges = [resolve_judge("openai:gpt-4o", {"cache": "off"}),
                  resolve_judge("anthropic:claude-sonnet-4-6", {"cache": "off"})]
        assert dict(os.environ) == env  # nothing is added to the process environment
        for j in judges:
            assert j.backend._creds.dry_run
            with pytest.raises(RuntimeError, match="dry run"):  # a placeholder never goes out
                asyncio.run(j.backend.complete([{"role": "user", "content": "hi"}], temperature=0, max_tokens=5))
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)  # a key that is set is used as usual
        creds = resolve_judge("openai:gpt-4o", {"cache": "off"}).backend._creds
        assert creds.api_key == FAKE_KEY and not creds.dry_run and FAKE_KEY not in repr(creds)
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(JudgeConfigError, match="OPENAI_API_KEY"):  # only inside the block
        resolve_judge("openai:gpt-4o")


def test_resolution_order(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("SKILLMIX_JUDGE", "openai:from-env")
    assert resolve_judge().spec == "openai:from-env"
    assert resolve_judge(config={"judge": "openai:from-config"}).spec == "openai:from-config"
    assert resolve_judge("openai:from-arg", {"judge": "openai:from-config"}).spec == "openai:from-arg"
    monkeypatch.delenv("SKILLMIX_JUDGE")
    assert resolve_judge().spec == "openai:gpt-4o"  # a key alone picks the provider's default


def test_settings_from_config_and_key_stays_hidden(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    config = {"temperature": 0.2, "max_tokens": 300, "n_gradings": 5, "concurrency": 7, "system_prompt": "Be strict.",
              "max_cost": 1.5, "prices": {"input": 1, "output": 2}}
    j = resolve_judge("openai:some-model", config)
    s = j.settings
    assert (s.temperature, s.max_tokens, s.n_gradings, s.concurrency, s.system_prompt, s.max_cost) == (0.2, 300, 5, 7, "Be strict.", 1.5)
    assert FAKE_KEY not in repr(j) + repr(j.backend._creds) + j.spec + str(s.to_dict())
    with pytest.raises(JudgeConfigError):
        make_settings({"n_gradings": 0})
    with pytest.raises(JudgeConfigError):
        make_settings({"temperature": "hot"})


def test_max_cost_needs_a_price(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    with pytest.raises(JudgeConfigError, match="price"):
        resolve_judge("openai:unknown-model-xyz", {"max_cost": 1.0})
    assert resolve_judge("openai:gpt-4o-2024-08-06", {"max_cost": 1.0}).price.input == 2.5  # prefix match


def test_compatible_key_optional(monkeypatch):
    j = resolve_judge("openai-compatible:m@http://127.0.0.1:9/v1")
    assert j.spec == "openai-compatible:m@http://127.0.0.1:9/v1"


# -- a misspelt setting is an error naming it, never silently ignored (issue 14, defect 9)
@pytest.mark.parametrize("key, suggestion", [("max_cst", "max_cost"), ("temprature", "temperature"),
                                             ("n_grading", "n_gradings"), ("Max_Tokens", "max_tokens"),
                                             ("system-prompt", "system_prompt"), ("concurency", "concurrency")])
def test_unknown_setting_is_an_error_with_a_suggestion(key, suggestion):
    with pytest.raises(JudgeConfigError) as e:
        make_settings({key: 1})
    assert f"unknown judge setting {key!r}" in str(e.value) and f"did you mean {suggestion!r}" in str(e.value)
    with pytest.raises(JudgeConfigError, match=f"did you mean {suggestion!r}"):
        resolve_judge("openai-compatible:m@http://127.0.0.1:9/v1", {key: 1})


def test_unknown_setting_far_from_any_lists_the_known_ones():
    with pytest.raises(JudgeConfigError) as e:
        make_settings({"banana": 1})
    assert "did you mean" not in str(e.value) and "max_cost" in str(e.value) and "temperature" in str(e.value)


def test_a_config_file_with_a_typo_names_the_file_and_the_key(tmp_path):
    from skillmix.grading.specs import load_config_file

    path = tmp_path / "judge.yaml"
    path.write_text("judge: openai:gpt-4o\ntemperature: 0.2\nmax_cst: 5\n")
    with pytest.raises(JudgeConfigError) as e:
        load_config_file(path)
    assert str(path) in str(e.value) and "'max_cst'" in str(e.value) and "did you mean 'max_cost'" in str(e.value)
    path.write_text("judge: openai:gpt-4o\ntemperature: 0.2\nmax_cost: 5\n")
    assert load_config_file(path)["max_cost"] == 5


@pytest.mark.parametrize("text, words", [
    ("openai-compatible:m@http://127.0.0.1:9/v1,anthropic:claude-sonnet-4-6", "holds ','"),
    ("openai-compatible:m@http://127.0.0.1:9/v1;x", "holds ';'"),
    ("openai-compatible:m@http://host:99999/v1", "Port out of range"),
    ("openai-compatible:m@http://bad host/v1", "expected openai-compatible"),
    ("openai-compatible:m@http://a..b/v1", "is not a host name"),
    ("openai:gpt-4o extra", "is not a model name"),
    ("anthropic:claude-sonnet-4-6,openai:gpt-4o", "is not a model name"),
])
def test_a_spec_with_trailing_text_or_a_second_judge_is_refused(text, words):
    with pytest.raises(JudgeConfigError, match=re.escape(words)):
        parse_spec(text)


@pytest.mark.parametrize("text", ["openai:ft:gpt-4o-mini:org:name:abc1", "anthropic:claude-sonnet-4-6",
                                  "openai-compatible:meta-llama/Llama-3.1-70B-Instruct@http://[::1]:8000/v1",
                                  "openai-compatible:q@http://vllm_server:8000/v1", "openai-compatible:q@https://h.example/v1?x=1"])
def test_real_specs_still_parse(text):
    assert str(parse_spec(text)).split(":", 1)[0] == text.split(":", 1)[0]
