"""The name penalty: does a text name a skill?

A text names a skill when it writes the skill's bare name (the part before any "(" gloss) in
any form of the noun:
- any case; each word also in its plural and possessive ("puns", "fallacies", "metaphor's",
  "herrings'"), its irregular plural ("straw men", "oxymora", "antitheses", "chiasmi",
  "zeugmata"), and, for a plural-named skill, its singular ("a social norm", "an affordance",
  "an object property");
- British or American spelling (visualization/visualisation and other -ize/-ise and -yze/-yse
  endings; -or/-our, -er/-re, -ense/-ence, -og/-ogue for the words that have them; travel(l)ed);
- the words joined by anything or nothing: spaces (several, no-break, narrow), line breaks,
  hyphens and dashes (U+2010-U+2015, the non-breaking hyphen U+2011), soft hyphens, underscores,
  or run together ("strawman", "#RedHerring", "#red_herring", "redHerring");
- at word boundaries: the name is not next to another letter, except at a camel-case step
  ("#SpotTheRedHerring"). A word that only contains the name does not count ("punishment" for
  *pun*, "strawberry" for *straw man*).

Words derived from the name (adjectives, adverbs, verbs: "metaphorical", "metaphorically",
"ironic", "hyperbolic", "sarcastic", "gravitational") do not name the skill. They describe the
text's language rather than label the skill, fluent prose uses them without announcing anything
(a text about a wry remark is "ironic" whether or not it means to show irony), and a rule that
took them would need a morphology for each of the catalog's names and would still guess;
the scoring tests have always held that "A metaphorical hive." does not name *metaphor*. The
line is the same for every skill: the noun in any spelling or number counts, a derived word
does not.
"""

from __future__ import annotations

import functools
import re

from .prompts import skill_name

# What may stand between the words of a name, including nothing at all.
_SEPARATOR = "[\\s_\\-\u00ad\u200b\u200c\u200d\u2060\u2010-\u2015\u2212]*"
# How a name is split into words.
_WORD_SPLIT = re.compile("[\\s_\\-\u2010-\u2015]+")
# A name starts and ends where no letter touches it, or at a camel-case step ("theRed", "HerringRule").
_START = "(?:(?<![^\\W\\d_])|(?<=[a-z])(?=[A-Z]))"
_END = "(?:(?![^\\W\\d_])|(?<=[a-z])(?=[A-Z]))"

_IRREGULAR_PLURALS = {
    "man": "men", "woman": "women", "child": "children", "person": "people", "foot": "feet",
    "tooth": "teeth", "goose": "geese", "mouse": "mice", "louse": "lice", "ox": "oxen",
    "criterion": "criteria", "phenomenon": "phenomena", "datum": "data", "index": "indices",
    "appendix": "appendices", "matrix": "matrices", "vertex": "vertices",
    # f(e) -> ves only where English does it ("beliefs", "proofs", "chiefs" keep their f)
    "leaf": "leaves", "loaf": "loaves", "half": "halves", "calf": "calves", "self": "selves",
    "shelf": "shelves", "wolf": "wolves", "thief": "thieves", "sheaf": "sheaves", "elf": "elves",
    "scarf": "scarves", "dwarf": "dwarves", "hoof": "hooves", "life": "lives", "knife": "knives",
    "wife": "wives",
}
_IRREGULAR_SINGULARS = {plural: singular for singular, plural in _IRREGULAR_PLURALS.items()}

# American spellings with a British -our: behavior/behaviour, humor/humour ... (with any ending).
_OR_OUR = tuple(
    "behavior color favor flavor harbor honor humor labor neighbor rumor vapor vigor savor odor "
    "endeavor candor clamor armor parlor splendor valor tumor ardor rigor fervor demeanor savior "
    "glamor".split()
)
# Whole-word pairs, American first.
_WORD_PAIRS = tuple(tuple(p.split("/")) for p in (
    "center/centre theater/theatre meter/metre liter/litre fiber/fibre caliber/calibre somber/sombre "
    "luster/lustre specter/spectre meager/meagre saber/sabre maneuver/manoeuvre "
    "defense/defence offense/offence pretense/pretence license/licence "
    "analog/analogue catalog/catalogue dialog/dialogue monolog/monologue prolog/prologue "
    "epilog/epilogue program/programme gray/grey judgment/judgement aging/ageing"
).split())
_IZE = re.compile(r"^(\w{3,}[iy])[zs](e|es|ed|ing|ation|ations|er|ers)$")
_ELL = re.compile(r"^(\w{2,}[^l]e)(ll?)(ed|ing|er|ers|or|ors)$")


def _spellings(word: str) -> set[str]:
    """``word`` in its British and American spellings (lower case)."""
    out = {word}
    m = _IZE.match(word)
    if m:  # visualization/visualisation, analyze/analyse
        out |= {f"{m.group(1)}z{m.group(2)}", f"{m.group(1)}s{m.group(2)}"}
    m = _ELL.match(word)
    if m:  # traveled/travelled, modeling/modelling
        out |= {f"{m.group(1)}l{m.group(3)}", f"{m.group(1)}ll{m.group(3)}"}
    for us in _OR_OUR:
        uk = us[:-2] + "our"
        if word.startswith(us):
            out.add(uk + word[len(us):])
        elif word.startswith(uk):
            out.add(us + word[len(uk):])
    for us, uk in _WORD_PAIRS:
        if word in (us, uk):
            out |= {us, uk}
    return out


def _singulars(word: str) -> set[str]:
    """The singular of a word that looks plural ("norms", "affordances", "properties"); none for
    words that only end in s ("logos", "ethos", "bias", "deixis", "chiasmus", "physics", "awareness")."""
    if word in _IRREGULAR_SINGULARS:
        return {_IRREGULAR_SINGULARS[word]}
    if len(word) < 4 or not word.endswith("s") or word.endswith(("ss", "us", "is", "os", "as", "ics")):
        return set()
    if word.endswith("ies"):
        return {word[:-3] + "y"}
    if word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return {word[:-2]}
    return {word[:-1]}


def _plurals(word: str) -> set[str]:
    """Regular and irregular plurals of ``word`` (more than English has: a form no one writes
    costs nothing, a form someone writes that is missing lets a name through)."""
    out = {word + "s", word + "es"}
    if len(word) > 2 and word[-1] == "y" and word[-2] not in "aeiou":
        out.add(word[:-1] + "ies")
    if word in _IRREGULAR_PLURALS:
        out.add(_IRREGULAR_PLURALS[word])
    if word.endswith("man"):
        out.add(word[:-3] + "men")  # straw man, scotsman
    if len(word) > 4:
        if word.endswith("is"):
            out.add(word[:-2] + "es")  # antithesis, apophasis
        if word.endswith("us"):
            out.add(word[:-2] + "i")  # chiasmus
        if word.endswith("on") and not word.endswith("ion"):
            out.add(word[:-2] + "a")  # oxymoron, tricolon
        if word.endswith("um"):
            out.add(word[:-2] + "a")
        if word.endswith("ma"):
            out.add(word + "ta")  # zeugma, stigma
        elif word.endswith("a"):
            out.add(word + "e")  # anaphora
    return out


def _word_forms(word: str) -> list[str]:
    """Every form of one word of a name, longest first."""
    word = word.lower().replace("\u2019", "'")
    bases = set()
    for spelling in _spellings(word):
        bases |= {spelling} | _singulars(spelling)
    forms = set()
    for base in bases:
        forms |= {base} | _plurals(base)
    return sorted(forms, key=lambda f: (-len(f), f))


def _word_pattern(word: str) -> str:
    forms = "|".join(re.escape(f).replace("'", "['\u2019]") for f in _word_forms(word))
    return f"(?:{forms})(?:['\u2019]s?)?"


@functools.lru_cache(maxsize=1024)
def _pattern(skill: str) -> re.Pattern[str] | None:
    words = [w for w in _WORD_SPLIT.split(skill_name(skill)) if w]
    if not words:
        return None
    body = _SEPARATOR.join(_word_pattern(w) for w in words)
    return re.compile(f"{_START}(?i:{body}){_END}")


def names_skill(text: str, skill: str) -> bool:
    """True if ``text`` names ``skill`` (see the module docstring for what counts)."""
    pattern = _pattern(skill)
    return pattern is not None and pattern.search(text) is not None
