"""Command line: wiring and exit codes only. Probes, rules and renderers do the work.

Exit codes (the same in every format): 0 nothing at or above --fail-on; 1 findings at or above it;
2 tfcompat could not run or could not decide (bad input, unreadable snapshot, no TensorFlow, internal error).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from enum import Enum
from pathlib import Path
from typing import Dict, List, Optional

import typer

try:  # typer >= 0.2x vendors click; older releases depend on it
    from typer._click.exceptions import ClickException as _ClickException
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException as _ClickException

from tfcompat import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Find TensorFlow environment mismatches (driver, CUDA, cuDNN, packages, ABI) before they crash.",
)


class Format(str, Enum):
    text = "text"
    json = "json"


class FailOn(str, Enum):
    info = "info"
    warning = "warning"
    error = "error"


class UsageProblem(ValueError):
    """Bad input the user can fix: printed as one line, exit 2."""


def write_atomic(path: str, text: str) -> None:
    """Write `text` to `path` via a temp file in the same directory and a rename: never half a file."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise UsageProblem(f"--output {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(directory))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _emit(text: str, output: Optional[str]) -> None:
    if output:
        write_atomic(output, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


class _Run:
    """Turns user errors into one line (JSON in JSON mode) and exit 2; -v shows the traceback."""

    def __init__(self, fmt: Format = Format.text, output: Optional[str] = None, verbose: bool = False):
        self.fmt, self.output, self.verbose = fmt, output, verbose

    def __enter__(self) -> "_Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, (typer.Exit, typer.Abort, SystemExit, KeyboardInterrupt)):
            return False
        if isinstance(exc, ValueError) and type(exc).__module__.startswith("tfcompat"):
            message = str(exc)
        else:
            message = f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)"
        if self.verbose:
            traceback.print_exception(exc_type, exc, tb)
        if self.fmt is Format.json:
            from tfcompat.engine import error_report
            from tfcompat.render.json import render_json

            text = render_json(error_report(message))
            try:
                _emit(text, self.output)
            except (OSError, ValueError):
                sys.stdout.write(text)
        print(f"tfcompat: error: {message}", file=sys.stderr)
        raise typer.Exit(2)


def _version_callback(value: bool) -> None:
    if value:
        print(f"tfcompat {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """tfcompat: check a TensorFlow environment against the driver, GPUs and libraries it will meet."""


PythonOpt = typer.Option(None, "--python", help="Interpreter of the environment to check (e.g. a venv's bin/python).")
SiteOpt = typer.Option(None, "--site-packages", help="A site-packages directory to check (repeatable).")
RootOpt = typer.Option(None, "--root", help="A sysroot or unpacked container image; every path resolves inside it.")
NodeOpt = typer.Option(None, "--node-name", help="Node name for the report (default: $NODE_NAME, "
                                                 "$SLURMD_NODENAME, host name).")
NvmlOpt = typer.Option(True, "--nvml/--no-nvml", help="Query NVML (in a child process) for driver and GPUs.")
VerboseOpt = typer.Option(False, "-v", "--verbose", help="Show tracebacks for errors.")


def _scan(python, site_packages, root, node_name, nvml):
    from tfcompat.probes.target import TargetSpec
    from tfcompat.scan import scan

    spec = TargetSpec(python=python, site_packages=tuple(site_packages or ()), root=root)
    return scan(spec, node_name=node_name, nvml=nvml)


def _parse_ignores(values: Optional[List[str]]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for v in values or ():
        for item in v.split(",") if "=" not in v else [v]:
            key, _, reason = item.partition("=")
            if not key.strip():
                raise UsageProblem(f"--ignore {v!r}: expected RULE-PREFIX or RULE-PREFIX=reason")
            out[key.strip()] = reason.strip()
    return out


def _split(values: Optional[List[str]]) -> List[str]:
    return [s.strip() for v in values or () for s in v.split(",") if s.strip()]


@app.command()
def check(
    python: Optional[str] = PythonOpt,
    site_packages: Optional[List[str]] = SiteOpt,
    root: Optional[str] = RootOpt,
    from_: Optional[str] = typer.Option(None, "--from", help="Judge a snapshot written by `tfcompat scan` "
                                                             "(or a JSON report) instead of scanning."),
    matrix: Optional[str] = typer.Option(None, "--matrix", help="Use this compatibility matrix file."),
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="Output format."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the report here (atomically)."),
    fail_on: FailOn = typer.Option(FailOn.error, "--fail-on", help="Lowest severity that fails (exit 1)."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Only rules with these id prefixes."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Waive rules by id prefix: "
                                                                      "TFC201 or 'TFC201=reason'."),
    node_name: Optional[str] = NodeOpt,
    nvml: bool = NvmlOpt,
    colour: Optional[bool] = typer.Option(None, "--color/--no-color", help="Colour (default: on a terminal)."),
    verbose: bool = VerboseOpt,
) -> None:
    """Scan the environment (or read a snapshot), judge it, print the verdict; exit 0/1/2."""
    with _Run(fmt, output, verbose):
        from tfcompat.engine import evaluate
        from tfcompat.matrix import load_matrix
        from tfcompat.model import Severity

        if from_ and (python or site_packages or root):
            raise UsageProblem("--from judges a snapshot: it cannot be combined with --python/--site-packages/--root")
        ignores = _parse_ignores(ignore)
        mtx = load_matrix(Path(matrix) if matrix else None)
        env = _load_snapshot(from_) if from_ else _scan(python, site_packages, root, node_name, nvml)
        report = evaluate(env, mtx, fail_on=Severity(fail_on.value), select=_split(select), ignore=ignores)
        if fmt is Format.json:
            from tfcompat.render.json import render_json

            text = render_json(report)
        else:
            from tfcompat.render.text import render_text

            use_colour = colour if colour is not None else (output is None and sys.stdout.isatty()
                                                            and "NO_COLOR" not in os.environ)
            text = render_text(report, colour=use_colour)
        _emit(text, output)
    raise typer.Exit(report.exit_code)


def _load_snapshot(path: str):
    from tfcompat.model import SnapshotError, environment_from_json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read snapshot: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SnapshotError(f"{path}: not a JSON snapshot (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}") from None
    try:
        return environment_from_json(data)
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from None


@app.command()
def scan(
    python: Optional[str] = PythonOpt,
    site_packages: Optional[List[str]] = SiteOpt,
    root: Optional[str] = RootOpt,
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the snapshot here (atomically)."),
    node_name: Optional[str] = NodeOpt,
    nvml: bool = NvmlOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Collect the facts only and write them as a JSON snapshot (judge it later with `check --from`)."""
    with _Run(Format.text, output, verbose):
        from tfcompat.render.json import render_environment

        _emit(render_environment(_scan(python, site_packages, root, node_name, nvml)), output)


@app.command("rules")
def list_rules(fmt: Format = typer.Option(Format.text, "--format", "-f", help="Output format.")) -> None:
    """List every rule: id, default severity, name and what it checks."""
    from tfcompat.engine import all_rules

    rules = all_rules()
    if fmt is Format.json:
        data = [{"rule": r.id, "name": r.name, "severity": r.severity.value, "requires": list(r.requires),
                 "summary": r.summary} for r in rules]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    for r in rules:
        sys.stdout.write(f"{r.id}  {r.severity.value:<7}  {r.name:<38} {r.summary}\n")


@app.command()
def explain(rule: str = typer.Argument(..., help="Rule id (TFC201) or name.")) -> None:
    """Print a rule's documentation: what it checks, why it crashes, how to fix it."""
    from tfcompat.engine import find_rule

    r = find_rule(rule)
    if r is None:
        print(f"tfcompat: error: no rule {rule!r} (see `tfcompat rules`)", file=sys.stderr)
        raise typer.Exit(2)
    requires = f"requires: {', '.join(r.requires)}\n" if r.requires else ""
    sys.stdout.write(f"{r.id} {r.name} (default severity: {r.severity.value})\n{requires}\n{r.doc}\n")


@app.command()
def schema() -> None:
    """Print the JSON Schema of `tfcompat check --format json` output."""
    from tfcompat.render.json import schema_text

    sys.stdout.write(schema_text())


def main(argv: Optional[List[str]] = None) -> None:
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


if __name__ == "__main__":  # pragma: no cover
    main()
