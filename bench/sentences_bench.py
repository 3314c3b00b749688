"""Sentence counter speed: it must stay linear, since one huge answer would stall a grading run.

For texts of 11 KB to 350 KB (ordinary sentences, titles, initials, acronyms, list lines) it times
``count_sentences`` against a baseline measured in the same run: a bare ``re.split`` on end marks,
which is linear by construction. A flat ratio across sizes is linear; a quadratic counter's ratio
grows with the size (the previous one took about a minute at 170 KB).

Run: python bench/sentences_bench.py
"""

from __future__ import annotations

import re
import time

from skillmix_tasks.sentences import count_sentences

UNIT = ("The bees bask in the sun. Mr. Lee hums at 5 p.m. in the U.S. Army camp. J. K. Rowling wrote. "
        "Prices rose 3.5% e.g. for wax... Then it rained!\n- a list line\n- another one\n\n")
BASELINE = re.compile(r"[.!?]+\s+")


def best(fn, text: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    print(f"{'size':>9} {'counter ms':>11} {'baseline ms':>12} {'ratio':>7}")
    for kb in (11, 44, 176, 352):
        text = UNIT * (kb * 1000 // len(UNIT) + 1)
        ours = best(count_sentences, text)
        base = best(lambda t: len(BASELINE.split(t)), text)
        print(f"{len(text) // 1000:>7}KB {ours * 1e3:>11.1f} {base * 1e3:>12.2f} {ours / base:>7.1f}")


if __name__ == "__main__":
    main()
