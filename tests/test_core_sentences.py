"""The sentence counter against a hand-counted corpus.

Each text was counted by hand: a sentence is what a careful reader would end with a full stop,
a question mark or an exclamation mark (or a paragraph break / a list item / a speaker's line).
"""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    # -- more everyday English
    ("Wait... what?", 1),
    ("The U.K. Parliament met. Bees were discussed.", 2),
    ("She moved to the U.K. Everyone missed her.", 2),
    ("Ph.D. students sew too.", 1),
    ("He earned a Ph.D. Nobody was surprised.", 2),
    ("Call me at 9 a.m. sharp.", 1),
    ("The class starts at 10 a.m. Bring thread.", 2),
    ("Is it done? Not yet. Soon!", 3),
    ("\u201cStop,\u201d she said. \u201cThe bees are angry.\u201d", 2),
    ("She whispered, \u201cEnough.\u201d Silence followed.", 2),
    ("She said \u201cno.\u201d Then she left.", 2),
    ("(See the appendix.)", 1),
    ("The hive (which I built myself) is full. I am proud.", 2),
    ("Honey\u2014sweet, golden, slow\u2014drips from the comb.", 1),
    ("I sew; she knits. We both like wool.", 2),
    ("He asked why. I didn't know.", 2),
    ("The score was 3-2. Fans cheered.", 2),
    ("It cost 1,200 dollars. Too much!", 2),
    ("Version 1.2.3 is out. Update now.", 2),
    ("Visit www.example.com. It has patterns.", 2),
    ("Email me at ann@example.org. Thanks.", 2),
    ("The bees left at 5:30. Then it rained.", 2),
    ("I love it!!! Truly.", 2),
    ("Really? Really.", 2),
    ("John F. Kennedy spoke of the moon.", 1),
    ("The poem is by E. Dickinson.", 1),
    ("We asked St. Francis for help with the bees.", 1),
    ("Then St. Anne's bell rang.", 1),
    ("Warner Bros. Pictures made the film.", 1),
    ("The claim comes from Smith et al. (2019) and still holds.", 1),
    ("He moved here from Berlin. Life was quieter.", 2),
    ("He was born in 1990. Bees were his first love.", 2),
]

# -- a single capital letter or an abbreviation closes a clause, and the next word is capitalised
# but not on the starter list: a letter grade, a vitamin, a plan or row letter, a company suffix, a
# street, Jr. (a title before a name, Dr. Smith, stays inside the sentence).
CLAUSE_FINAL_ABBREVIATIONS = [
    ("The beekeeper fell back on plan C. Nobody complained.", 2),
    ("My daughter earned an A. Grandpa baked a cake.", 2),
    ("Oranges are full of vitamin C. Kiwis are too.", 2),
    ("Our seats were in row B. Ushers showed us the way.", 2),
    ("She scored a B. Chemistry was never her subject.", 2),
    ("The thread comes in size M. Larger spools cost more.", 2),
    ("Take the stairs to level D. Parking is free there.", 2),
    ("Exhibit A. Counsel rested.", 2),
    ("She buys wax from Hive Supplies Ltd. Prices went up.", 2),
    ("The loom was made by Weaver Bros. Nobody repairs them now.", 2),
    ("He sold the orchard to Fenwick Corp. Workers cut the trees.", 2),
    ("Our hive sits behind the shop on Elm St. Neighbours love the honey.", 2),
    ("We met at the bakery on Pine Ave. Bread was still warm.", 2),
    ("The speech was given by Martin Luther King Jr. Crowds filled the mall.", 2),
    ("Bring thread, wax, scissors, etc. Needles are supplied.", 2),
    ("The results match Smith et al. Further work is planned.", 2),
    ("The quilt was sewn by Ann Lee Sr. Grandchildren still use it.", 2),
]

# -- Spanish inverted openers, French guillemets (spaced), German quotes, CJK stops, other scripts
NON_ENGLISH = [
    ("\u00bfD\u00f3nde est\u00e1 la colmena? Est\u00e1 detr\u00e1s de la casa.", 2),
    ("Hola. \u00bfQu\u00e9 tal?", 2),
    ("\u00a1Qu\u00e9 miel tan dulce! \u00bfLa probaste?", 2),
    ("Me gusta coser. \u00a1Es tan relajante! \u00bfY a ti?", 3),
    ("\u2014\u00bfVienes ma\u00f1ana?\n\u2014S\u00ed, a las ocho.", 2),
    ("El Sr. Garc\u00eda cuida las abejas. Su hija lo ayuda.", 2),
    ("La Dra. Ruiz lleg\u00f3 tarde. \u00bfPor qu\u00e9?", 2),
    ("Ella dijo: \u00abYa voy\u00bb. Luego sali\u00f3.", 2),
    ("Pues\u2026 no s\u00e9. \u00bfY t\u00fa?", 2),
    ("Si llueve, \u00bfvamos al cine?", 1),
    ("Hola, amigo. \u00bfC\u00f3mo est\u00e1s? I'm fine.", 3),
    ("\u00ab Tu viens ? \u00bb Elle hocha la t\u00eate.", 2),
    ("Il pleut. \u00ab Quel dommage ! \u00bb dit-elle.", 2),
    ("Bonjour ! Comment allez-vous ? Tr\u00e8s bien, merci.", 3),
    ("M. Dupont arrive demain. Il apporte du miel.", 2),
    ("Il a dit\u00a0: \u00ab\u00a0Non.\u00a0\u00bb Puis il est parti.", 2),
    ("Voici mon avis : c'est bon.", 1),
    ("\u201eKommst du mit?\u201c, fragte sie. Er nickte.", 2),
    ("Er sagte: \u201eDie Bienen schlafen.\u201c Dann ging er.", 2),
    ("\u00bbWo ist der Honig?\u00ab Sie lachte.", 2),
    ("Er ging hinaus. \u00bbKomm!\u00ab, rief sie.", 2),
    ("Hr. Becker kommt um acht. Frau Lang kommt sp\u00e4ter.", 2),
    ("Das kostet ca. 5 Euro. Ist das teuer?", 2),
    ("Wir brauchen z.B. Wachs und Faden.", 1),
    ("\u4eca\u65e5\u306f\u6674\u308c\u3067\u3059\u3002\u660e\u65e5\u306f\u96e8\u3067\u3059\u3002", 2),
    ("\u4f60\u597d\uff01\u4f60\u5403\u996d\u4e86\u5417\uff1f\u6211\u5403\u4e86\u3002", 3),
    ("\u871c\u8702\u5f88\u5fd9\u3002\u5b83\u4eec\u5728\u91c7\u871c\u3002", 2),
    ("\u5979\u8bf4\uff1a\u201c\u4f60\u597d\uff01\u201d\u7136\u540e\u8d70\u4e86\u3002", 1),
    ("\u300c\u304a\u306f\u3088\u3046\u3002\u300d\u300c\u304a\u306f\u3088\u3046\uff01\u300d", 2),
    ("\u5f7c\u306f\u300c\u884c\u304d\u307e\u3059\u3002\u300d\u3068\u8a00\u3063\u305f\u3002", 1),
    ("\u4ef7\u683c\u662f\uff13\uff0e\uff15\u5143\u3002\u5f88\u4fbf\u5b9c\u3002", 2),
    ("\u5b9f\u9a13\u306f\u6210\u529f\u3057\u305f\uff0e\u6b21\u306b\u7d50\u679c\u3092\u793a\u3059\uff0e", 2),
    ("\u4ed6\u60f3\u4e86\u60f3\u2026\u2026\u7136\u540e\u8d70\u4e86\u3002", 1),
    ("I ordered \u5bff\u53f8\u3002It was fresh.", 2),
    ("We learned the word \u871c\u8702 today. It means bee.", 2),
    ("He said \u8c22\u8c22\uff01Then he left.", 2),
    ("The sign read \u55b6\u696d\u4e2d\u3002We went in.", 2),
    ("The label said \u300c\u65b0\u54c1\u300d. We bought it.", 2),
    ("\u041f\u0440\u0438\u0432\u0435\u0442. \u041a\u0430\u043a \u0434\u0435\u043b\u0430?", 2),
    ("\u0645\u0631\u062d\u0628\u0627. \u0643\u064a\u0641 \u062d\u0627\u0644\u0643\u061f", 2),
    ("\u092e\u0948\u0902 \u0918\u0930 \u091c\u093e \u0930\u0939\u093e \u0939\u0942\u0901\u0964 \u0924\u0941\u092e \u0915\u0939\u093e\u0901 \u0939\u094b?", 2),
]

# -- a line led by a dash: a list item only when it is one (several such lines, or the line before
# ended a sentence or opened a list with a colon); otherwise it carries on the unfinished sentence
DASH_LINES = [
    ("The hive was quiet\n\u2013 too quiet, some said \u2013\nuntil the queen stirred.", 1),
    ("She packed the essentials\n\u2014 needle, thread and a thimble.", 1),
    ("We waited for spring\n\u2013 or rather, for warmth \u2013\nand then the bees woke.", 1),
    ("The old loom\n\u2014 a gift from my aunt \u2014\nstill works.", 1),
    ("Some people knit\n- others sew.", 1),
    ("He paused \u2014\nthen spoke.", 1),
    ("Bring the following:\n\u2013 a veil\n\u2013 gloves\n\u2013 a smoker", 4),
    ("\u2013 Are you coming?\n\u2013 In a minute.", 2),
    ("The seam held.\n\u2013 Grandma", 2),
    ("Three things matter\n- patience\n- practice\n- good thread", 4),
    ("Thread the needle.\n\u2014 Then tie a knot.", 2),
    ("Notes:\n\u2014 wax the thread\n\u2014 keep the seam straight", 3),
    ("Remember one rule:\n- measure twice", 2),
    ("It was late. \u2013 Too late, said Ann.", 2),
]

CORPUS = CORPUS + CLAUSE_FINAL_ABBREVIATIONS + NON_ENGLISH + DASH_LINES


@pytest.mark.parametrize("text, expected", CORPUS)
def test_hand_counted_corpus(text, expected):
    assert count_sentences(text) == expected, split_sentences(text)


@pytest.mark.parametrize("text, expected", CLAUSE_FINAL_ABBREVIATIONS)
def test_a_letter_or_abbreviation_at_a_clause_end_ends_the_sentence(text, expected):
    assert count_sentences(text) == expected, split_sentences(text)


@pytest.mark.parametrize("text, expected", NON_ENGLISH)
def test_inverted_openers_guillemets_and_cjk_stops(text, expected):
    assert count_sentences(text) == expected, split_sentences(text)


@pytest.mark.parametrize("text, expected", DASH_LINES)
def test_a_dash_led_line_is_a_list_item_only_in_a_list(text, expected):
    assert count_sentences(text) == expected, split_sentences(text)


def test_cjk_stops_split_without_a_space():
    assert split_sentences("\u4eca\u65e5\u306f\u6674\u308c\u3002It rained later.") == [
        "\u4eca\u65e5\u306f\u6674\u308c\u3002", "It rained later."]


def test_a_dash_continuation_keeps_its_dash():
    text = "The old loom\n\u2014 a gift from my aunt \u2014\nstill works."
    assert split_sentences(text) == [text]


def test_the_corpus_is_large_and_has_no_duplicates():
    assert len(CORPUS) >= 150
    assert len({t for t, _ in CORPUS}) == len(CORPUS)


def test_split_keeps_the_text():
    parts = split_sentences('He said, "Stop!" and left. Mr. Lee stayed.')
    assert parts == ['He said, "Stop!" and left.', "Mr. Lee stayed."]


def test_list_markers_are_not_sentences_of_their_own():
    assert split_sentences("1. Measure the cloth.\n2. Cut it.") == ["Measure the cloth.", "Cut it."]


_PIECES = list("aB .!?\n-\u2013\u2014:\u00bf\u00a1\u00ab\u00bb\u201e\u201c\u201d\"'()\u3002\uff01\uff1f\uff0e\uff13"
               "\u300c\u300d\u00a0") + ["St.", "Dr.", "Inc.", "plan B.", "et al.", "U.S.", " The ", " Bees "]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
def test_never_crashes_and_sentences_are_the_text_in_order(text):
    parts = split_sentences(text)
    assert count_sentences(text) == len(parts)
    pos = 0
    for part in parts:  # each sentence is a piece of the text, in order, none overlapping
        found = text.find(part, pos)
        assert found >= 0, (text, parts)
        pos = found + len(part)


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
