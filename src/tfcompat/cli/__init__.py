"""Command line: wiring and exit codes only. Probes, rules and renderers do the work.

One module per command family (check: check, scan, rules, explain, schema; gate: gate, fleet; matrix:
cli.matrix), the options they share (options), typer's command and group classes with tfcompat's help and a
coercion without pydantic (classes), the error -> exit 2 handling (run). `tfcompat completion SHELL` prints a
shell's completion script.

Start-up stays light: `tfcompat --version` and `tfcompat <command> --help` import typer and the command modules
only; the matrix, the probes, the rules, the gate, Dask and the renderers are imported inside the commands that
use them, and pydantic (typer's coercion) not at all for plain values (tests/cli/test_habits.py keeps it so).

Exit codes (the same in every format): 0 nothing at or above --fail-on; 1 findings at or above it;
2 tfcompat could not run or could not decide (bad input, unreadable snapshot, no TensorFlow, internal error).
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from typing import Optional

import typer
from typer.main import get_command_name

try:  # typer >= 0.2x vendors click; older releases depend on it
    from typer._click.exceptions import ClickException as _ClickException  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException as _ClickException  # type: ignore[assignment,unused-ignore]

from tfcompat import __version__
from tfcompat.cli import check as _check
from tfcompat.cli import gate as _gate
from tfcompat.cli.classes import Command, Group
from tfcompat.cli.matrix import matrix_app
from tfcompat.cli.options import CONTEXT_SETTINGS
from tfcompat.cli.run import UsageProblem
from tfcompat.outputs import write_atomic

# The environment variable a shell's completion function sets when it asks tfcompat for completions.
COMPLETE_VAR = "_TFCOMPAT_COMPLETE"


def _typer() -> typer.Typer:
    return typer.Typer(
        cls=Group,
        context_settings=CONTEXT_SETTINGS,
        add_completion=False,  # --install-completion edits rc files; `tfcompat completion SHELL` prints the script
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        help="Find TensorFlow environment mismatches (driver, CUDA, cuDNN, packages, ABI) before they crash.",
    )


app = _typer()


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


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"
    pwsh = "pwsh"


def completion(
    shell: Shell = typer.Argument(..., metavar="SHELL", help="bash, zsh, fish, powershell or pwsh."),
) -> None:
    """Print the shell completion script for SHELL (it installs nothing).

    bash: eval "$(tfcompat completion bash)" in ~/.bashrc, or save it as
    ~/.local/share/bash-completion/completions/tfcompat. zsh: save it as _tfcompat in a directory on $fpath.
    fish: save it as ~/.config/fish/completions/tfcompat.fish."""
    from typer._completion_shared import get_completion_script

    sys.stdout.write(get_completion_script(prog_name="tfcompat", complete_var=COMPLETE_VAR, shell=shell.value) + "\n")


app.command(cls=Command)(_check.check)
app.command(cls=Command)(_check.scan)
app.command("rules", cls=Command)(_check.list_rules)
app.command(cls=Command)(_check.explain)
app.command(cls=Command)(_check.schema)
app.command(cls=Command)(_check.examples)
app.command(cls=Command)(_gate.gate)
app.command(cls=Command)(_gate.fleet)
app.add_typer(matrix_app, name="matrix")
app.command(cls=Command)(completion)


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point. Usage errors become one line and exit 2 (click's code for them)."""
    if os.environ.get(COMPLETE_VAR):  # a shell asks for completions (the script `tfcompat completion` prints)
        from typer._completion_classes import completion_init

        completion_init()  # typer registers its shells only with add_completion; do it here, when needed
    try:
        code = _app_for(argv)(args=argv, standalone_mode=False, prog_name="tfcompat", complete_var=COMPLETE_VAR)
    except typer.Exit as exc:
        code = exc.exit_code
    except _ClickException as exc:  # usage errors: unknown option, bad choice, missing argument
        print(f"tfcompat: error: {exc.format_message()} (see --help)", file=sys.stderr)
        code = 2
    except typer.Abort:
        code = 130
    sys.exit(code or 0)


def _command_name(info: typer.models.CommandInfo) -> Optional[str]:
    if info.name:
        return info.name
    return get_command_name(info.callback.__name__) if info.callback else None


def _app_for(argv: Optional[list[str]]) -> typer.Typer:
    """`app`, or for `tfcompat COMMAND ...` (a top-level command or group) the group with that command alone:
    typer builds the click parameters of every command on each run, 7 ms for all of them against 1.5 ms for
    one (issue 16). The command's options, help, usage line and errors are the same; the group's own help,
    --version, an unknown command and shell completion go to the whole app."""
    args = sys.argv[1:] if argv is None else argv
    if not args or os.environ.get(COMPLETE_VAR):
        return app
    commands = [c for c in app.registered_commands if _command_name(c) == args[0]]
    groups = [g for g in app.registered_groups if g.name == args[0]]  # `matrix`
    if len(commands) + len(groups) != 1:
        return app
    lean = _typer()
    lean.registered_callback = app.registered_callback
    lean.registered_commands = commands
    lean.registered_groups = groups
    return lean


__all__ = ["UsageProblem", "app", "main", "write_atomic"]
