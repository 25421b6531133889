"""Where output goes: an atomic file write (temp file + rename: never half a file) or stdout."""

from __future__ import annotations

import os
import sys
import tempfile
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


def colour_wanted(colour: Optional[bool], output: Optional[str]) -> bool:
    """--color/--no-color as given; by default only on a terminal, never into a file, never under NO_COLOR."""
    if colour is not None:
        return colour
    return output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
