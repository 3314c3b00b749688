"""The sentence counter: is it right (against maintained segmenters), and does it stay linear?

``--compare`` counts the sentences of every text of the hand-counted corpus
(tests/test_core_sentences.py, ``CORPUS``) and of a held-out set below (``HELDOUT``: texts written
after the counter's last change and never used to tune it) with each counter, and prints per group
the share counted exactly and the time per 1,000 corpus texts. Counters: ours (``count_sentences``),
a bare ``re.split`` on end marks, pysbd, sentencex and spaCy's rule-based ``sentencizer``
(``spacy.blank("en")``, no model). One that is not installed is skipped, and the table says so.
Each segmenter runs twice: on the whole text, and on the blocks our counter cuts first (paragraphs,
list items, speaker lines; ``+blocks``), which isolates the within-line decisions.
A counter's count is its number of segments that hold a letter or digit.

``--linear`` times ``count_sentences`` on 11 KB to 350 KB (ordinary sentences, titles, initials,
acronyms, list lines) against a baseline measured in the same run: a bare ``re.split`` on end
marks, which is linear by construction. A flat ratio across sizes is linear; a quadratic counter's
ratio grows with the size (the previous one took about a minute at 170 KB).

Run: python bench/sentences_bench.py [--compare] [--linear]  (no flag: both)
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from skillmix_tasks.sentences import _LIST_MARKER, _pieces, count_sentences  # noqa: E402

UNIT = ("The bees bask in the sun. Mr. Lee hums at 5 p.m. in the U.S. Army camp. J. K. Rowling wrote. "
        "Prices rose 3.5% e.g. for wax... Then it rained!\n- a list line\n- another one\n\n")
BASELINE = re.compile(r"[.!?]+\s+")
_WORD = re.compile(r"\w")

# Written after the counter's last change, counted by hand, never used to tune it: a fairer yardstick
# for our counter than the corpus it was built against.
HELDOUT = [
    ("The recipe calls for vitamin D. Sunlight works as well.", 2),
    ("I finally got my B. Dad was thrilled.", 2),
    ("Meet me on Baker St. Holmes will be waiting.", 2),
    ("She joined Globex Corp. Three years later she left.", 2),
    ("They toured the U.S. Tourists love the parks.", 2),
    ("Mr. Brown sells honey at the market.", 1),
    ("Dr. Okoye examined the hive. It was healthy.", 2),
    ("\u00bfTe gusta la miel? \u00a1Me encanta!", 2),
    ("Llegamos tarde. \u00a1Qu\u00e9 verg\u00fcenza!", 2),
    ("\u00ab C'est pr\u00eat ? \u00bb demanda-t-il.", 1),
    ("Elle sourit. \u00ab Oui, bien s\u00fbr. \u00bb", 2),
    ("\u201eWie sp\u00e4t ist es?\u201c Niemand antwortete.", 2),
    ("Sie sagte: \u00bbIch komme morgen.\u00ab Er freute sich.", 2),
    ("\u5929\u6c14\u5f88\u597d\u3002\u6211\u4eec\u53bb\u516c\u56ed\u5427\uff01", 2),
    ("\u3053\u308c\u306f\u30da\u30f3\u3067\u3059\u3002\u3042\u308c\u306f\u672c\u3067\u3059\u3002", 2),
    ("\u6771\u4eac\u306b\u884c\u304d\u307e\u3057\u305f\uff01\u697d\u3057\u304b\u3063\u305f\u3067\u3059\u3002", 2),
    ("The meeting ended\n\u2013 nobody said a word \u2013\nand we went home.", 1),
    ("Packing list:\n- sunscreen\n- hat\n- water", 4),
    ("He was tired\n\u2014 so tired that he slept at noon.", 1),
    ("I met Prof. Ito. She studies bees.", 2),
    ("The box is marked with a Q. Inside are old letters.", 2),
    ("Send it to Initech Inc. Their office is in Austin.", 2),
    ("It was signed by R. Tagore.", 1),
    ("Ana y yo fuimos al mercado. Compramos pan.", 2),
    ("Wow! That's a big hive.", 2),
    ("So... are we done?", 1),
    ('She said, "I\'m leaving." And she did.', 2),
    ("The film was made by Pixar Animation Studios Inc. Critics loved it.", 2),
    ("His grade point average rose to 3.9. Everyone was proud.", 2),
    ("Lesson 1: patience. Lesson 2: practice.", 2),
    ("The answer is C. Most students chose A.", 2),
    ("Rich in vitamin B12. Eat more eggs.", 2),
    ("Caf\u00e9 au lait, s'il vous pla\u00eet. Merci !", 2),
    ("\u042d\u0442\u043e \u043c\u043e\u0439 \u0434\u043e\u043c. \u041e\u043d \u0441\u0442\u0430\u0440\u044b\u0439.", 2),
    ("Let's meet at 3 p.m. Don't be late.", 2),
    ("I'm reading vol. 2 now.", 1),
    ("He lives in Washington, D.C. Traffic is awful there.", 2),
    ("See you at Elm Rd. Bring the ladder.", 2),
    ("Kaffee? Ja, gern.", 2),
    ("They chose option A. Later they regretted it.", 2),
    ("\u201cHush!\u201d whispered Mom. \u201cThe baby is asleep.\u201d", 2),
    ("Our team beat Team B. Coach smiled.", 2),
    ("Mrs. Lee, Mr. Kim and Dr. Ruiz arrived.", 1),
    ("The company is called Foo Co. It makes glue.", 2),
    ("We visited Mt. Fuji. It was snowy.", 2),
    ("Remember:\n1. Breathe\n2. Relax", 3),
    ("The bees hum\nand the garden sleeps\nunder the moon.", 1),
    ("Chapter 3\n\nThe storm came at night.", 2),
]


def _count(segments) -> int:
    return sum(1 for s in segments if _WORD.search(s))


def _blocks(text: str) -> list[str]:
    """Our counter's blocks (paragraphs, list items, speaker lines), list markers removed."""
    out = []
    for block in _pieces(text):
        block = block.lstrip("\n")
        m = _LIST_MARKER.match(block)
        out.append(block[m.end():] if m else block)
    return out


def _with_blocks(segment: Callable[[str], list[str]]) -> Callable[[str], int]:
    return lambda text: sum(_count(segment(b)) for b in _blocks(text) if b.strip())


def counters() -> tuple[dict[str, Callable[[str], int]], list[str]]:
    """Every counter that can run here, and a line for each one that cannot."""
    found: dict[str, Callable[[str], int]] = {
        "ours (count_sentences)": count_sentences,
        "re.split on [.!?]+": lambda t: _count(BASELINE.split(t)),
    }
    skipped = []
    try:
        import pysbd

        seg = pysbd.Segmenter(language="en", clean=False)
        found["pysbd"] = lambda t: _count(seg.segment(t))
        found["pysbd +blocks"] = _with_blocks(seg.segment)
    except ImportError:
        skipped.append("pysbd: not installed (pip install pysbd)")
    try:
        import sentencex

        found["sentencex"] = lambda t: _count(sentencex.segment("en", t))
        found["sentencex +blocks"] = _with_blocks(lambda b: list(sentencex.segment("en", b)))
    except ImportError:
        skipped.append("sentencex: not installed (pip install sentencex)")
    try:
        import spacy

        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        found["spaCy sentencizer"] = lambda t: _count(s.text for s in nlp(t).sents)
        found["spaCy sentencizer +blocks"] = _with_blocks(lambda b: [s.text for s in nlp(b).sents])
    except ImportError:
        skipped.append("spaCy: not installed (pip install spacy; the sentencizer needs no model)")
    return found, skipped


def compare(repeats: int = 5) -> None:
    from test_core_sentences import CLAUSE_FINAL_ABBREVIATIONS, CORPUS, DASH_LINES, NON_ENGLISH

    groups = {
        "corpus": CORPUS,
        "abbrev.": CLAUSE_FINAL_ABBREVIATIONS,
        "non-Eng.": NON_ENGLISH,
        "dash lines": DASH_LINES,
        "held-out": HELDOUT,
    }
    found, skipped = counters()
    texts = [t for t, _ in CORPUS]
    head = " ".join(f"{g + f' ({len(items)})':>17}" for g, items in groups.items())
    print(f"{'counter':<27} {head} {'ms / 1,000 texts':>17}")
    for name, fn in found.items():
        cells = []
        for items in groups.values():
            ok = sum(fn(t) == n for t, n in items)
            cells.append(f"{ok:>4}/{len(items):<3} {100 * ok / len(items):5.1f}%")
        fn(texts[0])  # warm-up (lazy imports, caches)
        best = min(_timed(fn, texts) for _ in range(repeats))
        print(f"{name:<27} {' '.join(f'{c:>17}' for c in cells)} {1e3 * best * 1000 / len(texts):>17.1f}")
    for line in skipped:
        print(f"skipped: {line}")


def _timed(fn: Callable[[str], int], texts: list[str]) -> float:
    start = time.perf_counter()
    for t in texts:
        fn(t)
    return time.perf_counter() - start


def misses(name: str) -> None:
    """The texts one counter gets wrong: expected, got, text."""
    from test_core_sentences import CORPUS

    fn = counters()[0][name]
    for label, items in (("corpus", CORPUS), ("held-out", HELDOUT)):
        for t, n in items:
            got = fn(t)
            if got != n:
                print(f"{label}: expected {n}, got {got}: {t!r}")


def best(fn, text: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - start)
    return min(times)


def linear() -> None:
    print(f"{'size':>9} {'counter ms':>11} {'baseline ms':>12} {'ratio':>7}")
    for kb in (11, 44, 176, 352):
        text = UNIT * (kb * 1000 // len(UNIT) + 1)
        ours = best(count_sentences, text)
        base = best(lambda t: len(BASELINE.split(t)), text)
        print(f"{len(text) // 1000:>7}KB {ours * 1e3:>11.1f} {base * 1e3:>12.2f} {ours / base:>7.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--compare", action="store_true", help="accuracy and speed against other segmenters")
    parser.add_argument("--linear", action="store_true", help="time count_sentences on 11-352 KB texts")
    parser.add_argument("--misses", metavar="COUNTER", help="list the texts COUNTER gets wrong ('ours', 'pysbd', ...)")
    args = parser.parse_args(argv)
    if args.misses:
        names = [n for n in counters()[0] if n.startswith(args.misses)]
        for n in names[:1]:
            misses(n)
        return
    both = not (args.compare or args.linear)
    if args.compare or both:
        compare()
    if args.linear or both:
        linear()


if __name__ == "__main__":
    main()
