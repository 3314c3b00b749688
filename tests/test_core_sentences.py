import pytest

from skillmix_tasks.sentences import count_sentences, split_sentences

CASES = [
    ("", 0),
    ("   ", 0),
    ("One sentence.", 1),
    ("No end mark at all", 1),
    ("First. Second.", 2),
    ("First! Second? Third.", 3),
    ("Really?! Yes.", 2),
    ("What?!? No way!!", 2),
    ("Mr. Smith went to Washington.", 1),
    ("Dr. Jones and Mrs. Lee met at St. Paul's.", 1),
    ("We bought apples, pears, etc. and went home.", 1),
    ("We bought apples, pears, etc. Then we left.", 2),
    ("Use a thimble, e.g. the brass one. It helps.", 2),
    ("That is, i.e. the hive, is busy.", 1),
    ("J. K. Rowling wrote it.", 1),
    ("The U.S. Army marched.", 1),
    ("Pi is about 3.14 and e is 2.72.", 1),
    ("It costs $4.50. Cheap.", 2),
    ("I waited... then it came.", 1),
    ("I waited... Then it came.", 2),
    ("I waited\u2026 Then it came.", 2),
    ('He said, "Stop!" and left.', 1),
    ('"Stop!" He left.', 2),
    ('She asked, "Why?" He shrugged.', 2),
    ("\u201cIs the hive quiet?\u201d she asked.", 1),
    ("\u201cIs the hive quiet?\u201d The bees hummed.", 2),
    ("(This is aside.) Then the main point.", 2),
    ("The meeting is at 5 p.m. tomorrow.", 1),
    ("Version 2. Then version 3.", 2),
    ("First paragraph without a stop\n\nSecond paragraph", 2),
    ("A line\nthat wraps.", 1),
    ("Sarah: Hello. Emily: Hi.", 2),
    ("the lowercase start. another lowercase.", 1),
    ("Numbers: 1. Two.", 2),
    ("Ends with ellipsis...", 1),
    ("Gen. Grant and Col. Mustard met on Jan. 5.", 1),
    ("Is it true? 42 bees said yes.", 2),
    ("Sew carefully; measure twice. Cut once.", 2),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_count_sentences(text, expected):
    assert count_sentences(text) == expected, split_sentences(text)


def test_at_least_thirty_cases():
    assert len(CASES) >= 30


def test_split_keeps_the_text():
    parts = split_sentences('He said, "Stop!" and left. Mr. Lee stayed.')
    assert parts == ['He said, "Stop!" and left.', "Mr. Lee stayed."]
