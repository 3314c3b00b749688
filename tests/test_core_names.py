"""The name penalty (skillmix_tasks.names.names_skill) over the real catalog's skills.

A text names a skill when it writes the skill's bare name (the part before any "(") in any of the
noun's forms: plural and possessive, a singular of a plural-named skill, irregular plurals, British
or American spelling, the words run together, hyphenated or split by any separator, a hashtag or
camel case. Words that only contain the name ("punishment" for pun) and words derived from it
("metaphorical", "ironic") do not name it.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skillmix_tasks import default_catalog
from skillmix_tasks.names import names_skill
from skillmix_tasks.prompts import skill_name

SKILLS = [s.name for s in default_catalog().skills]


def skill(name: str) -> str:
    """A catalog skill by name: the tests below are about skills the benchmark really has."""
    assert name in SKILLS, f"{name!r} is not a catalog skill"
    return name


# -- closed compounds and irregular plurals
@pytest.mark.parametrize("text, name", [
    ("That argument is a strawman.", "straw man"),
    ("They built two straw men.", "straw man"),
    ("Strawmen everywhere.", "straw man"),
    ("Her straw-men fell over.", "straw man"),
    ("The strawman's flaw was obvious.", "straw man"),
    ("No true Scotsmen were harmed.", "no true scotsman"),
    ("A redherring, plainly.", "red herring"),
    ("Oxymora such as 'jumbo shrimp' amuse me.", "oxymoron"),
    ("Both antitheses were neat.", "antithesis"),
    ("The speech was full of chiasmi.", "chiasmus"),
    ("Three tricola in one speech!", "tricolon"),
    ("Zeugmata are rare.", "zeugma"),
    ("Such apophases annoy me.", "apophasis"),
])
def test_closed_compounds_and_irregular_plurals_name_the_skill(text, name):
    assert names_skill(text, skill(name))


# -- British and American spellings
@pytest.mark.parametrize("text, name", [
    ("Visualisation helps.", "visualization"),
    ("Two visualisations of the hive.", "visualization"),
    ("The visualisation's colours were bright.", "visualization"),
    ("Visualization helps.", "visualization"),
])
def test_british_and_american_spellings_name_the_skill(text, name):
    assert names_skill(text, skill(name))


@pytest.mark.parametrize("text, name", [
    # No catalog skill has an -or/-our word (metaphor, actor are not -our words): names a user's
    # catalog might hold.
    ("British humour at its best.", "humor"),
    ("Good behaviour here.", "behavior"),
    ("A matter of honor.", "honour"),
    ("They organized it well.", "organisation"),  # not the noun: a different word
])
def test_or_our_and_ize_ise_spellings_for_other_catalogs(text, name):
    expected = name != "organisation"
    assert names_skill(text, name) is expected


def test_the_organisation_spelling_of_a_custom_skill():
    assert names_skill("The organization of the hive.", "organisation")
    assert names_skill("Organisations grow.", "organization")


# -- singulars of plural-named skills
@pytest.mark.parametrize("text, name", [
    ("That is a social norm here.", "social norms"),
    ("The handle is an affordance.", "affordances"),
    ("Weight is an object property.", "object properties"),
    ("A part-whole relation holds.", "part-whole relations"),
    ("A part whole relation holds.", "part-whole relations"),
    ("Part-whole relations hold.", "part-whole relations"),
])
def test_a_singular_names_a_plural_named_skill(text, name):
    assert names_skill(text, skill(name))


# -- any separator between the words
@pytest.mark.parametrize("sep", [
    " ", "-", "\u2013", "\u2014", "\u2011", "\u2010", "\u00a0", "\u202f", "\n", " \n ", "   ", "\t", "_", " - ",
], ids=repr)
def test_any_separator_between_the_words(sep):
    assert names_skill(f"Spot the red{sep}herring here.", skill("red herring"))
    assert names_skill(f"An appeal{sep}to{sep}authority again.", skill("appeal to authority"))
    assert names_skill(f"It was part{sep}whole{sep}relations.", skill("part-whole relations"))


# -- hashtags and camel case
@pytest.mark.parametrize("text, name", [
    ("Watch out! #RedHerring", "red herring"),
    ("#red_herring alert", "red herring"),
    ("RedHerring spotted.", "red herring"),
    ("a redHerring again", "red herring"),
    ("#SpotTheRedHerring today", "red herring"),
    ("#StrawMan arguments", "straw man"),
    ("#SlipperySlope", "slippery slope"),
    ("#NoTrueScotsman", "no true scotsman"),
    ("ConfirmationBias is real.", "confirmation bias"),
    ("#PunIntended", "pun"),
])
def test_hashtags_and_camel_case_name_the_skill(text, name):
    assert names_skill(text, skill(name))


# -- words that only contain a name, or are derived from it, do not name it
@pytest.mark.parametrize("text, name", [
    ("The punishment fit the crime.", "pun"),
    ("A spun thread.", "pun"),
    ("The pundit spoke.", "pun"),
    ("PUNISHMENT!", "pun"),
    ("A metaphorical hive.", "metaphor"),  # adjectives describe, they do not name (see names.py)
    ("Metaphorically speaking, yes.", "metaphor"),
    ("How ironic.", "irony"),
    ("A hyperbolic claim.", "hyperbole"),
    ("She was sarcastic.", "sarcasm"),
    ("Gravitational pull.", "gravity"),
    ("An empathetic nurse.", "empathy"),
    ("The company logo was blue.", "logos"),
    ("A straw hat and a man.", "straw man"),
    ("Strawberry mandarins.", "straw man"),
    ("The reddish herring swam.", "red herring"),
    ("A normal social life.", "social norms"),
    ("Biased reporting.", "confirmation bias"),
])
def test_words_that_contain_or_derive_from_a_name_do_not_name_it(text, name):
    assert not names_skill(text, skill(name))


# -- every catalog skill: its own name is caught, unrelated words are not
def _bare(name: str) -> str:
    return skill_name(name)


@pytest.mark.parametrize("name", SKILLS)
def test_every_skill_is_named_by_its_own_bare_name(name):
    bare = _bare(name)
    words = bare.replace("-", " ").split()
    assert names_skill(f"We talked about {bare} today.", name)
    assert names_skill(f"{bare.upper()}!", name)
    assert names_skill(f"This is {bare.title()}.", name)
    assert names_skill(f"The {'-'.join(words)} was clear.", name)
    assert names_skill("#" + "".join(w.title() for w in words), name)


@pytest.mark.parametrize("name", SKILLS)
def test_a_sentence_of_unrelated_words_names_no_skill(name):
    assert not names_skill("The bees hum over the quiet garden while we sew a blue quilt at noon.", name)


UNRELATED = ("bee hive honey garden needle thread quilt blue green river bread window kettle "
             "morning evening walk sing grandmother pocket lantern pebble meadow cloud tea apple").split()


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.sampled_from(UNRELATED), min_size=1, max_size=12),
       seps=st.lists(st.sampled_from([" ", "-", "\n", "_", ""]), min_size=12, max_size=12),
       caps=st.booleans())
def test_unrelated_words_joined_any_way_name_no_skill(words, seps, caps):
    text = "".join(w.title() if caps else w for pair in zip(words, seps) for w in pair)
    assert not any(names_skill(text, s) for s in SKILLS), text


def test_catalog_examples_do_not_name_their_skill():
    for s in default_catalog().skills:
        assert not names_skill(s.example, s.name), s.name
