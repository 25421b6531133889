"""Command line: wiring and exit codes only. Probes, rules and renderers do the work.

One module per command family (check: check, scan, rules, explain, schema; gate: gate, fleet; matrix:
cli.matrix), the options they share (options), the error -> exit 2 handling (run).

Exit codes (the same in every format): 0 nothing at or above --fail-on; 1 findings at or above it;
2 tfcompat could not run or could not decide (bad input, unreadable snapshot, no TensorFlow, internal error).
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

try:  # typer >= 0.2x vendors click; older releases depend on it
    from typer._click.exceptions import ClickException as _ClickException
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException as _ClickException  # type: ignore[assignment]

from tfcompat import __version__
from tfcompat.cli import check as _check
from tfcompat.cli import gate as _gate
from tfcompat.cli.matrix import matrix_app
from tfcompat.cli.run import UsageProblem
from tfcompat.outputs import write_atomic

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Find TensorFlow environment mismatches (driver, CUDA, cuDNN, packages, ABI) before they crash.",
)


def _version_callback(value: bool) -> None:
    if value:
        print(f"tfcompat {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """tfcompat: check a TensorFlow environment against the driver, GPUs and libraries it will meet."""


app.command()(_check.check)
app.command()(_check.scan)
app.command("rules")(_check.list_rules)
app.command()(_check.explain)
app.command()(_check.schema)
app.command()(_gate.gate)
app.command()(_gate.fleet)
app.add_typer(matrix_app, name="matrix")


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point. Usage errors become one line and exit 2 (click's code for them)."""
    try:
        code = app(args=argv, standalone_mode=False, prog_name="tfcompat")
    except typer.Exit as exc:
        code = exc.exit_code
    except _ClickException as exc:  # usage errors: unknown option, bad choice, missing argument
        print(f"tfcompat: error: {exc.format_message()} (see --help)", file=sys.stderr)
        code = 2
    except typer.Abort:
        code = 130
    sys.exit(code or 0)


__all__ = ["UsageProblem", "app", "main", "write_atomic"]
