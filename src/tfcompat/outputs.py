"""Where output goes: an atomic file write (temp file + rename: never half a file) or stdout."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from tfcompat.errors import TfcompatError


class OutputError(TfcompatError):
    """An output file that cannot be written where the user asked: one line, exit 2."""


def write_atomic(path: str, text: str) -> None:
    """Write `text` to `path` via a temp file in the same directory and a rename: never half a file."""
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise OutputError(f"--output {path}: directory {directory} does not exist")
    if target.is_dir():
        raise OutputError(f"--output {path}: is a directory (name a file)")
    if target.exists() and not target.is_file():
        # /dev/null, /dev/stdout, a FIFO: write into it; a rename would replace the device node itself
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise OutputError(f"--output {path}: cannot write it: {exc.strerror or exc}") from None
        return
    try:
        import tempfile  # here: a check that prints to stdout never needs it (tempfile imports random)

        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(directory))
    except OSError as exc:
        raise OutputError(f"--output {path}: cannot write in {directory}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"--output {path}: cannot write it: {exc.strerror or exc}") from None
        raise


def emit(text: str, output: Optional[str]) -> None:
    """`text` to the --output file (atomically) or, without one, to stdout."""
    if output:
        write_atomic(output, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def colour_wanted(
    colour: Optional[bool],
    output: Optional[str],
    environ: Optional[Mapping[str, str]] = None,
    tty: Optional[bool] = None,
) -> bool:
    """Whether text output is coloured, first rule that applies:

    1. --color / --no-color, as given;
    2. never into an --output file;
    3. NO_COLOR set and not empty: no colour (no-color.org: an empty NO_COLOR is ignored);
    4. FORCE_COLOR set and not empty: colour, even on a dumb terminal or a pipe;
    5. TERM=dumb: no colour;
    6. colour only if stdout is a terminal.

    NO_COLOR before FORCE_COLOR, as CPython 3.13 orders them. `environ` and `tty` default to os.environ and
    stdout.isatty() (tests pass their own)."""
    if colour is not None:
        return colour
    if output is not None:
        return False
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    if env.get("TERM") == "dumb":
        return False
    if tty is None:
        try:
            tty = sys.stdout.isatty()
        except (AttributeError, ValueError):  # replaced or closed stdout
            tty = False
    return tty
