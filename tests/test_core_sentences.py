"""The sentence counter against a hand-counted corpus.

Each text was counted by hand: a sentence is what a careful reader would end with a full stop,
a question mark or an exclamation mark (or a paragraph break / a list item / a speaker's line).
"""

import time

import pytest

from skillmix_tasks.sentences import count_sentences, split_sentences

CORPUS = [
    # -- the basics
    ("", 0),
    ("   ", 0),
    ("...", 0),
    ("One sentence.", 1),
    ("No end mark at all", 1),
    ("First. Second.", 2),
    ("First! Second? Third.", 3),
    ("Really?! Yes.", 2),
    ("What?!? No way!!", 2),
    ("Sew carefully; measure twice. Cut once.", 2),
    ("the lowercase start. another lowercase.", 1),
    # -- ordinary words that look like abbreviations, at a sentence end (issue 14, defect 2)
    ("The bees bask in the sun. The hive hums.", 2),
    ("The cat sat. It purred.", 2),
    ("She said no. Then she left.", 2),
    ("He ate a fig. It was sweet.", 2),
    ("One more rep. Then rest.", 2),
    ("He called her hon. She smiled.", 2),
    ("The sap ran on the cut col. The tree healed.", 2),
    ("Knots hold best when wet, est. by sailors. Sailors knew.", 2),
    ("They flew to the U.S. The trip was long.", 2),
    ("We left at 6 a.m. It was still dark.", 2),
    ("The market opens at 5 p.m. Vendors arrive early.", 2),
    ("She works for Acme Inc. The firm sells thread.", 2),
    ("Bring needles, pins, etc. The rest is provided.", 2),
    ("We bought apples, pears, etc. and went home.", 1),
    ("We bought apples, pears, etc. Then we left.", 2),
    ("Smith et al. They disagreed.", 2),
    ("The study by Smith et al. found little.", 1),
    # -- titles and abbreviations inside a sentence
    ("Mr. Smith went to Washington.", 1),
    ("Dr. Jones and Mrs. Lee met at St. Paul's.", 1),
    ("Ask Dr. Smith about the hive.", 1),
    ("Rep. Lewis spoke. The hall cheered.", 2),
    ("Prof. Okafor and Sen. Warren met Gov. Hale.", 1),
    ("Gen. Grant and Col. Mustard met on Jan. 5.", 1),
    ("See Fig. 3 and No. 7 in Vol. 2 of the guide.", 1),
    ("The hive holds approx. 40 thousand bees.", 1),
    ("The U.S. Army marched.", 1),
    ("The meeting is at 5 p.m. tomorrow.", 1),
    ("Use a thimble, e.g. the brass one. It helps.", 2),
    ("That is, i.e. the hive, is busy.", 1),
    ("Use silk vs. Cotton for this seam.", 1),
    ("Martin Luther King Jr. spoke of dreams.", 1),
    ("He lives on Main St. The house is blue.", 2),
    # -- initials
    ("J. K. Rowling wrote it.", 1),
    ("A. A. Milne loved honey.", 1),
    ("The letter was signed T. S. Eliot.", 1),
    ("We chose plan B. The other plan failed.", 2),
    ("Her name was Anna K. She sewed every day.", 2),
    # -- numbers and decimals
    ("Pi is about 3.14 and e is 2.72.", 1),
    ("It costs $4.50. Cheap.", 2),
    ("Version 2. Then version 3.", 2),
    ("Numbers: 1. Two.", 2),
    ("Is it true? 42 bees said yes.", 2),
    ("The knot holds 2.5 kg. It slips at 3.", 2),
    ("In 1850. The guild formed.", 2),
    ("Set the stitch length to 2.5mm. Then sew.", 2),
    # -- ellipses and quotes
    ("I waited... then it came.", 1),
    ("I waited... Then it came.", 2),
    ("I waited\u2026 Then it came.", 2),
    ("Ends with ellipsis...", 1),
    ('He said, "Stop!" and left.', 1),
    ('"Stop!" He left.', 2),
    ('She asked, "Why?" He shrugged.', 2),
    ("\u201cIs the hive quiet?\u201d she asked.", 1),
    ("\u201cIs the hive quiet?\u201d The bees hummed.", 2),
    ('"We sew," she said. "We mend."', 2),
    ("(This is aside.) Then the main point.", 2),
    ("He whispered 'enough.' Then silence.", 2),
    # -- dialogue
    ("Sarah: Hello. Emily: Hi.", 2),
    ("Sarah: Is the pattern straight?\nEmily: It is now", 2),
    ("Coach: Breathe\nAthlete: I am trying", 2),
    ('"Did you check the hive?" asked Tom. "Yes," said Ann.', 2),
    # -- lists
    ("1. Measure the cloth.\n2. Cut along the line.\n3. Sew the seam.", 3),
    ("Steps:\n- measure twice\n- cut once", 3),
    ("- Thread the needle\n- Tie a knot\n- Start sewing", 3),
    ("* One bee\n* Two bees", 2),
    ("Gather these: thread, needle, and cloth.", 1),
    ("a) wax the thread\nb) tie it off", 2),
    # -- verse and line breaks
    ("A line\nthat wraps.", 1),
    ("Roses in the garden,\nbees upon the vine,\nsummer in the hive.", 1),
    ("Needle, thread,\nseam and hem;\nI sew.\nYou mend.", 2),
    ("The hive is a city.\nIts queen a quiet mayor.", 2),
    ("First paragraph without a stop\n\nSecond paragraph", 2),
    ("Title Line\n\nThe hive hums. The keeper smiles.", 3),
    # -- markdown emphasis
    ("**The hive hums.** The keeper smiles.", 2),
    ("*Why* sew by hand? Because it lasts.", 2),
]


@pytest.mark.parametrize("text, expected", CORPUS)
def test_hand_counted_corpus(text, expected):
    assert count_sentences(text) == expected, split_sentences(text)


def test_the_corpus_is_large_and_has_no_duplicates():
    assert len(CORPUS) >= 60
    assert len({t for t, _ in CORPUS}) == len(CORPUS)


def test_split_keeps_the_text():
    parts = split_sentences('He said, "Stop!" and left. Mr. Lee stayed.')
    assert parts == ['He said, "Stop!" and left.', "Mr. Lee stayed."]


def test_list_markers_are_not_sentences_of_their_own():
    assert split_sentences("1. Measure the cloth.\n2. Cut it.") == ["Measure the cloth.", "Cut it."]


def _elapsed(text: str) -> float:
    start = time.perf_counter()
    count_sentences(text)
    return time.perf_counter() - start


@pytest.mark.parametrize("unit", [
    "The bees bask in the sun. Mr. Lee hums. ",  # many sentence ends
    "word " * 8,  # no end mark at all: one long sentence
    "Dr. Lee and e.g. the U.S. Army, ",  # many abbreviations, no end
])
def test_time_grows_linearly_not_quadratically(unit):
    # 170 KB took about a minute with the old quadratic scan. 16x the text costs ~16x the time when
    # linear and ~256x when quadratic; the bound (128x) leaves room for a busy machine, the best of
    # three runs each keeps scheduler noise out.
    small = unit * (20_000 // len(unit) + 1)
    big = small * 16
    assert len(big) > 320_000
    t_small = min(_elapsed(small) for _ in range(3))
    t_big = min(_elapsed(big) for _ in range(3))
    assert t_big < 128 * max(t_small, 1e-4), (t_small, t_big)
