import json

import pytest

from skillmix_tasks.catalog import (
    HELDOUT_CATEGORIES,
    TRAIN_CATEGORIES,
    CatalogError,
    default_catalog,
    load_catalog,
    load_skills,
    load_topics,
)

PUBLIC_SKILLS = [
    "self serving bias", "accident (fallacy)", "complex question", "red herring", "metaphor",
    "spatial reasoning", "modus ponens", "statistical syllogism", "emotional self regulation",
    "folk physics", "false dichotomy", "availability bias", "visualization", "actor observer bias",
    "tu quoque", "categorical syllogism", "aphorism", "self motivation", "hyperbole", "equivocation",
    "ad hominem", "fallacy of division",
]
PUBLIC_TOPICS = ["Sewing", "Dueling", "The Ottoman Empire", "Urbanism", "Beekeeping", "Survivalism",
                 "Guerilla warfare", "Triathlons", "Gardening", "Knots"]


def test_packaged_catalog_has_the_published_shape():
    cat = default_catalog()
    assert len(cat.skills) == 101 and len(cat.topics) == 100
    assert len(cat.skills_in("train")) == 53 and len(cat.skills_in("heldout")) == 48
    assert {s.category for s in cat.skills_in("train")} == set(TRAIN_CATEGORIES)
    assert {s.category for s in cat.skills_in("heldout")} == set(HELDOUT_CATEGORIES)
    assert len(cat.topics_in("train")) == 50 and len(cat.topics_in("heldout")) == 50
    assert len(cat.skills_in("all")) == 101 and len(cat.topics_in("all")) == 100


def test_public_skills_and_topics_are_present():
    cat = default_catalog()
    for name in PUBLIC_SKILLS:
        assert cat.skill(name).name == name
    for name in PUBLIC_TOPICS:
        assert cat.topic(name.upper()).name == name


# The categories the public SKILL-MIX skill list gives these names (facts; its "theory of the mind"
# is our "theory of mind"). Train = rhetorical + literary, so "accident (fallacy)" is a train skill.
PUBLISHED_CATEGORIES = {
    "self serving bias": "reasoning", "accident (fallacy)": "rhetorical", "complex question": "rhetorical",
    "red herring": "rhetorical", "metaphor": "literary", "spatial reasoning": "logical",
    "modus ponens": "logical", "statistical syllogism": "logical", "emotional self regulation": "theory of mind",
    "folk physics": "physical knowledge",
}


@pytest.mark.parametrize("name, category", sorted(PUBLISHED_CATEGORIES.items()))
def test_public_skills_sit_in_their_published_categories(name, category):
    skill = default_catalog().skill(name)
    assert skill.category == category
    assert skill.split == ("train" if category in TRAIN_CATEGORIES else "heldout")


def test_examples_do_not_name_their_skill():
    from skillmix_tasks.scoring import names_skill

    for s in default_catalog().skills:
        assert not names_skill(s.example, s.name), s.name  # the name penalty's own test
        assert s.definition.strip() and s.example.strip()


def test_unknown_lookups_and_splits_are_clear_errors():
    cat = default_catalog()
    with pytest.raises(KeyError, match="unknown skill 'juggling'"):
        cat.skill("juggling")
    with pytest.raises(ValueError, match="unknown split 'test'"):
        cat.skills_in("test")


@pytest.mark.parametrize("lookup, name, suggestion", [
    ("skill", "red hering", "red herring"), ("skill", "metafor", "metaphor"),
    ("skill", "self-serving bias", "self serving bias"), ("topic", "Bee keeping", "Beekeeping"),
    ("split", "held-out", "heldout"), ("split", "held_out", "heldout"),
])
def test_misspelt_names_get_a_suggestion(lookup, name, suggestion):
    cat = default_catalog()
    call = {"skill": cat.skill, "topic": cat.topic, "split": cat.skills_in}[lookup]
    with pytest.raises((KeyError, ValueError)) as e:
        call(name)
    assert f"did you mean {suggestion!r}" in str(e.value)


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


GOOD_SKILL = {"name": "metaphor", "category": "literary", "definition": "d", "example": "e"}


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ({**GOOD_SKILL, "name": "simile", "category": "poetic"}, r"skills\.jsonl:2: field 'category': unknown category 'poetic'"),
        ({**GOOD_SKILL, "name": "simile", "definition": ""}, r"skills\.jsonl:2: field 'definition' is missing or empty"),
        ({"name": "simile", "category": "literary", "definition": "d"}, r"skills\.jsonl:2: field 'example' is missing"),
        ({**GOOD_SKILL, "name": "METAPHOR"}, r"skills\.jsonl:2: field 'name': 'METAPHOR' duplicates line 1"),
        ("{not json", r"skills\.jsonl:2: not valid JSON"),
        ('["a list"]', r"skills\.jsonl:2: expected a JSON object"),
    ],
)
def test_broken_skill_file_names_file_line_and_field(tmp_path, bad_row, message):
    path = _write(tmp_path / "skills.jsonl", [GOOD_SKILL, bad_row])
    with pytest.raises(CatalogError, match=message):
        load_skills(path, check_counts=False)


def test_counts_are_checked(tmp_path):
    path = _write(tmp_path / "skills.jsonl", [GOOD_SKILL])
    with pytest.raises(CatalogError, match="expected 101 skills .* found 1"):
        load_skills(path)
    tpath = _write(tmp_path / "topics.jsonl", [{"name": "Knots", "split": "train"}])
    with pytest.raises(CatalogError, match="expected 100 topics"):
        load_topics(tpath)


def test_bad_topic_split_is_named(tmp_path):
    path = _write(tmp_path / "topics.jsonl", [{"name": "Knots", "split": "test"}])
    with pytest.raises(CatalogError, match=r"topics\.jsonl:1: field 'split': 'test'"):
        load_topics(path, check_counts=False)


def test_custom_catalog_loads_without_counts(tmp_path):
    s = _write(tmp_path / "s.jsonl", [GOOD_SKILL, {**GOOD_SKILL, "name": "modus ponens", "category": "logical"}])
    t = _write(tmp_path / "t.jsonl", [{"name": "Knots", "split": "train"}, {"name": "Jazz", "split": "heldout"}])
    cat = load_catalog(s, t, check_counts=False)
    assert [x.name for x in cat.skills_in("heldout")] == ["modus ponens"]
    assert [x.name for x in cat.topics_in("train")] == ["Knots"]
