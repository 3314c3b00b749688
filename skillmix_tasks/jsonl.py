"""Reading JSONL files whose errors name the file and the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator


def iter_objects(path: str | Path, error: type[Exception] = ValueError) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; ``error`` names ``file:line`` otherwise.

    Lines end at "\n" only (after "\r\n" is read as "\n"): ``str.splitlines`` also splits at
    U+2028, U+2029 and U+0085, which JSON allows raw inside strings and lm-eval writes so.
    A UTF-8 byte-order mark is skipped."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read ({e})") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise error(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise error(f"{path}:{lineno}: expected a JSON object")
        yield lineno, obj
