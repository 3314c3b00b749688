"""Output paths checked before any paid or long work.

Every CLI calls one of these right after parsing its arguments: a grading run that fails to
write after 90 judge calls has lost them, and one that writes over its own input has lost more.
The checks are local file-system calls only (no network), and they change nothing: a missing
folder is not created here (the CLI creates it when it writes), and writability is tried with a
temporary file in the nearest folder that exists, which also catches read-only mounts and
permissions that ``os.access`` misjudges.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

PathLike = str | os.PathLike


class OutputPathError(ValueError):
    """An output path that cannot be written as asked; the message names the option and the path."""


def _same(a: Path, b: Path) -> bool:
    """The same file or folder, however spelled (relative, absolute, through symlinks, hard links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet: compare where it would be
        return a.resolve() == b.resolve()


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _writable_folder(folder: Path) -> str | None:
    """Why nothing can be created in ``folder`` (an existing path), or None if something can."""
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        fd, tmp = tempfile.mkstemp(prefix=".skillmix-write-test-", dir=folder)
    except OSError as e:
        return f"cannot create files in {folder} ({e.strerror or e})"
    os.close(fd)
    os.unlink(tmp)
    return None


def _writable_file(path: Path) -> str | None:
    """Why the existing file ``path`` cannot be overwritten, or None if it can."""
    if path.is_file():
        try:
            with open(path, "ab"):  # append mode with no write: the file is left as it is
                pass
        except OSError as e:
            return f"{path} cannot be written ({e.strerror or e})"
        return None
    return None if os.access(path, os.W_OK) else f"{path} cannot be written"


def _check_raw(raw: PathLike, what: str) -> Path:
    text = os.fspath(raw)
    if text == "-":
        raise OutputPathError(f"{what} -: writing to standard output is not supported here; give a path")
    if not str(text).strip():
        raise OutputPathError(f"{what}: empty path")
    return Path(text)


def _check_not_input(out: Path, inputs: Iterable[PathLike | None], what: str) -> None:
    for inp in inputs:
        if inp is None or os.fspath(inp) in ("", "-"):
            continue
        if _same(out, Path(inp)):
            raise OutputPathError(f"{what} {out} is the same path as the input {inp}; it would be overwritten. "
                                  f"Choose another output path")


def check_output_file(path: PathLike, *, inputs: Iterable[PathLike | None] = (), what: str = "--output") -> Path:
    """Refuse an output file that cannot be written, is a folder, or is one of ``inputs``.

    Returns it as a Path. A missing parent folder is fine if it can be created.
    """
    text = os.fspath(path)
    out = _check_raw(path, what)
    if text.endswith(("/", os.sep)):
        raise OutputPathError(f"{what} {text} names a folder (it ends with '/'); expected a file path")
    if out.is_dir():
        raise OutputPathError(f"{what} {out} is an existing folder; expected a file path")
    _check_not_input(out, inputs, what)
    if out.exists():
        why = _writable_file(out)
    else:
        anchor = _nearest_existing(out.parent)
        why = _writable_folder(anchor) if anchor.is_dir() else f"{anchor} is not a folder, so {out.parent} cannot be created"
    if why:
        raise OutputPathError(f"{what} {out}: {why}")
    return out


def check_output_dir(path: PathLike, *, files: Iterable[str] = (), inputs: Iterable[PathLike | None] = (),
                     what: str = "--out") -> Path:
    """Refuse an output folder that is a file, cannot be created or written, or is one of ``inputs``;
    ``files`` (names inside it the command writes) must not be folders, unwritable files or inputs.
    Returns it as a Path."""
    out = _check_raw(path, what)
    inputs = list(inputs)
    if os.path.lexists(out) and not out.is_dir():
        raise OutputPathError(f"{what} {out} is an existing file; expected a folder")
    _check_not_input(out, inputs, what)
    anchor = _nearest_existing(out)
    why = _writable_folder(anchor) if anchor.is_dir() else f"{anchor} is not a folder, so {out} cannot be created"
    if why:
        raise OutputPathError(f"{what} {out}: {why}")
    for name in files:
        p = out / name
        if p.is_dir():
            raise OutputPathError(f"{what} {out}: {p} is a folder, but the command writes a file there")
        _check_not_input(p, inputs, what)
        if p.exists() and (why := _writable_file(p)):
            raise OutputPathError(f"{what} {out}: {why}")
    return out
