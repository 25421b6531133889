"""Error -> exit 2: a TfcompatError is the user's, one line; anything else is a tfcompat bug ("internal error").

Every exit 2 prints `tfcompat: error: <one line>` on stderr; where the chosen format has an error renderer
(render/formats.py), the error also comes out in that format (JSON, a textfile, an NPD line) unless -q leaves
stdout empty. -v adds the traceback. An option that is given but has no effect is one warning line on stderr
(`tfcompat: warning: ...`), and the run goes on.
"""

from __future__ import annotations

import sys
import traceback
from types import TracebackType
from typing import Callable, Optional

import typer

from tfcompat.errors import TfcompatError
from tfcompat.outputs import emit
from tfcompat.render.escape import visible


class UsageProblem(TfcompatError):
    """Bad input the user can fix: printed as one line, exit 2."""


def warn(message: str) -> None:
    """One line on stderr, `tfcompat: warning: ...`: the run goes on (an option given but ignored)."""
    print(f"tfcompat: warning: {visible(message)}", file=sys.stderr)


class Run:
    """`with Run(...)`: the body of a command; an exception that escapes it becomes one line and exit 2."""

    def __init__(
        self,
        output: Optional[str] = None,
        verbose: bool = False,
        render_error: Optional[Callable[[str], Optional[str]]] = None,
        quiet: bool = False,
    ):
        self.output, self.verbose, self.quiet = output, verbose, quiet
        self.render_error = render_error  # message -> the output of that error in the chosen format

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        if exc is None or isinstance(exc, (typer.Exit, typer.Abort, SystemExit, KeyboardInterrupt)):
            return None  # not ours: typer's exits, ^C
        if isinstance(exc, TfcompatError):
            message = str(exc)
        else:
            message = f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)"
        if self.verbose:
            traceback.print_exception(exc_type, exc, tb)
        if self.render_error is not None:
            try:
                text = self.render_error(message)
            except Exception:  # noqa: BLE001 - the error line below must still come out
                text = None
            if text and (self.output or not self.quiet):  # -q: nothing on stdout, but --output is still written
                try:
                    emit(text, self.output)
                except (OSError, ValueError):
                    sys.stdout.write(text)
        print(f"tfcompat: error: {visible(message)}", file=sys.stderr)  # one line, whatever a snapshot holds
        raise typer.Exit(2)
