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
from tfcompat.errors import TfcompatError

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


class CheckFormat(str, Enum):
    text = "text"
    json = "json"
    prometheus = "prometheus"  # node_exporter textfile collector
    npd = "npd"  # node-problem-detector custom plugin: one line, exit 0/1/2
    nfd = "nfd"  # Node Feature Discovery features.d file


class GateFormat(str, Enum):
    text = "text"
    json = "json"
    junit = "junit"


class FailOn(str, Enum):
    info = "info"
    warning = "warning"
    error = "error"


class UsageProblem(TfcompatError):
    """Bad input the user can fix: printed as one line, exit 2."""


def write_atomic(path: str, text: str) -> None:
    """Write `text` to `path` via a temp file in the same directory and a rename: never half a file."""
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise UsageProblem(f"--output {path}: directory {directory} does not exist")
    if target.is_dir():
        raise UsageProblem(f"--output {path}: is a directory (name a file)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(directory))
    except OSError as exc:
        raise UsageProblem(f"--output {path}: cannot write in {directory}: {exc.strerror or exc}") from None
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
            raise UsageProblem(f"--output {path}: cannot write it: {exc.strerror or exc}") from None
        raise


def _emit(text: str, output: Optional[str]) -> None:
    if output:
        write_atomic(output, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


class _Run:
    """Turns user errors into one line (JSON in JSON mode) and exit 2; -v shows the traceback."""

    def __init__(self, fmt: Format = Format.text, output: Optional[str] = None, verbose: bool = False,
                 render_error=None):
        self.fmt, self.output, self.verbose = fmt, output, verbose
        self.render_error = render_error  # message -> the output of that error in the chosen format

    def __enter__(self) -> "_Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, (typer.Exit, typer.Abort, SystemExit, KeyboardInterrupt)):
            return False
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
            if text:
                try:
                    _emit(text, self.output)
                except (OSError, ValueError):
                    sys.stdout.write(text)
        elif self.fmt is Format.json:
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
ProbeOpt = typer.Option(False, "--probe", help="Also import TensorFlow with the target interpreter in a sandboxed "
                                               "child process and report what happened (crash, error, libraries "
                                               "loaded, classified log lines). Off by default.")
ProbeTimeoutOpt = typer.Option(120.0, "--probe-timeout", min=1.0, help="Seconds the --probe child may take before "
                                                                     "its process group is killed.")
VerboseOpt = typer.Option(False, "-v", "--verbose", help="Show tracebacks for errors.")


ColourOpt = typer.Option(None, "--color/--no-color", help="Colour (default: on a terminal).")
GateFailOnOpt = typer.Option(FailOn.error, "--fail-on", help="Lowest severity that fails a node or a drift.")
GateOutputOpt = typer.Option(None, "--output", "-o", help="Write the verdict here (atomically).")
OpOpt = typer.Option(None, "--op", help="An in-house custom-op library to check against the installed "
                                          "TensorFlow (repeatable; globs allowed).")


def _scan(python, site_packages, root, node_name, nvml, probe=False, probe_timeout=120.0, ops=()):
    from tfcompat.probes.target import TargetSpec
    from tfcompat.scan import scan

    import glob as _glob

    for pattern in ops or ():
        if not (_glob.glob(pattern) if any(c in pattern for c in "*?[") else os.path.isfile(pattern)):
            raise UsageProblem(f"--op {pattern}: no such file")
    spec = TargetSpec(python=python, site_packages=tuple(site_packages or ()), root=root)
    if probe and sys.stderr.isatty():
        print(f"tfcompat: --probe: importing TensorFlow in a child process (at most {probe_timeout:.0f} s)...",
              file=sys.stderr)
    return scan(spec, node_name=node_name, nvml=nvml, probe=probe, probe_timeout=probe_timeout, ops=tuple(ops or ()))


def _known_prefix(option: str, prefix: str) -> str:
    """A --select/--ignore prefix must match some rule: a typo must not silently pass a gate."""
    from tfcompat.engine import all_rules

    matching = [r for r in all_rules() if r.id.upper().startswith(prefix.upper()) or r.name == prefix]
    if not matching:
        raise UsageProblem(f"{option} {prefix}: no rule id starts with it and no rule has that name "
                           "(see `tfcompat rules`)")
    if all(r.scope == "fleet" for r in matching):  # TFC6xx: `check` never runs them, so this would select nothing
        raise UsageProblem(f"{option} {prefix}: only fleet rules match it, and `tfcompat gate` judges those "
                           "across node reports, not `check`")
    return prefix


def _parse_ignores(values: Optional[List[str]]) -> Dict[str, str]:
    """`TFC201`, `TFC201=reason`, `TFC105,TFC301=reason` (the reason applies to every id before it)."""
    out: Dict[str, str] = {}
    for v in values or ():
        keys, _, reason = v.partition("=")
        for key in keys.split(","):
            if not key.strip():
                raise UsageProblem(f"--ignore {v!r}: expected RULE-PREFIX[,RULE-PREFIX...][=reason]")
            out[_known_prefix("--ignore", key.strip())] = reason.strip()
    return out


def _split(values: Optional[List[str]]) -> List[str]:
    return [_known_prefix("--select", s.strip()) for v in values or () for s in v.split(",") if s.strip()]


@app.command()
def check(
    python: Optional[str] = PythonOpt,
    site_packages: Optional[List[str]] = SiteOpt,
    root: Optional[str] = RootOpt,
    from_: Optional[str] = typer.Option(None, "--from", help="Judge a snapshot written by `tfcompat scan` "
                                                             "(or a JSON report) instead of scanning."),
    matrix: Optional[str] = typer.Option(None, "--matrix", help="Use this compatibility matrix file."),
    matrix_overlay: Optional[List[str]] = typer.Option(None, "--matrix-overlay", help="Add a site overlay "
                                                       "(known-bad drivers, waivers, thresholds); repeatable."),
    fmt: CheckFormat = typer.Option(CheckFormat.text, "--format", "-f",
                                    help="Output format: text, json, prometheus (node_exporter textfile), "
                                         "npd (node-problem-detector plugin), nfd (NFD features.d file)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the report here (atomically)."),
    output_dir: Optional[str] = typer.Option(None, "--output-dir", help="Also write the JSON report to "
                                             "DIR/<node>.json (atomically), for `tfcompat gate`."),
    fail_on: FailOn = typer.Option(FailOn.error, "--fail-on", help="Lowest severity that fails (exit 1)."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Only rules with these id prefixes."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Waive rules by id prefix: "
                                                                      "TFC201 or 'TFC201=reason'."),
    node_name: Optional[str] = NodeOpt,
    nvml: bool = NvmlOpt,
    probe: bool = ProbeOpt,
    probe_timeout: float = ProbeTimeoutOpt,
    op: Optional[List[str]] = OpOpt,
    colour: Optional[bool] = ColourOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Scan the environment (or read a snapshot), judge it, print the verdict; exit 0/1/2."""
    base_fmt = Format.json if fmt is CheckFormat.json else Format.text
    with _Run(base_fmt, output, verbose, render_error=_check_error_renderer(fmt, output_dir, node_name)):
        from tfcompat.engine import evaluate
        from tfcompat.matrix import load_matrix
        from tfcompat.model import Severity

        if from_ and (python or site_packages or root):
            raise UsageProblem("--from judges a snapshot: it cannot be combined with --python/--site-packages/--root")
        if from_ and probe:
            raise UsageProblem("--probe imports TensorFlow on this node: it cannot be combined with --from "
                               "(record it with `tfcompat scan --probe` on the node)")
        ignores = _parse_ignores(ignore)
        mtx = load_matrix(Path(matrix) if matrix else None, [Path(o) for o in matrix_overlay or ()])
        ignores = {**mtx.waiver_reasons(), **ignores}  # the overlay's waivers act like --ignore
        env = _load_snapshot(from_) if from_ else _scan(python, site_packages, root, node_name, nvml, probe,
                                                        probe_timeout, op)
        report = evaluate(env, mtx, fail_on=Severity(fail_on.value), select=_split(select), ignore=ignores)
        if output_dir:
            _write_node_report(output_dir, report, node_name)
        if fmt is CheckFormat.json:
            from tfcompat.render.json import render_json

            text = render_json(report)
        elif fmt in (CheckFormat.prometheus, CheckFormat.npd, CheckFormat.nfd):
            text = _render_dashboard(fmt, report, node_name)
        else:
            from tfcompat.render.text import render_text

            use_colour = colour if colour is not None else (output is None and sys.stdout.isatty()
                                                            and "NO_COLOR" not in os.environ)
            text = render_text(report, colour=use_colour)
        _emit(text, output)
    if report.status == "error" and fmt is not CheckFormat.npd:
        # "could not decide" also gets its one line on stderr, as every exit 2 does
        print(f"tfcompat: error: {report.errors[0] if report.errors else 'could not decide'}", file=sys.stderr)
    raise typer.Exit(report.exit_code)


def _write_node_report(output_dir: str, report, node_name: Optional[str]) -> str:
    """DIR/<node>.json, atomically: what `tfcompat gate DIR` reads (the contract: fleet.reportdir)."""
    from tfcompat.fleet.reportdir import write_node_report
    from tfcompat.render.json import render_json
    from tfcompat.scan import node_identity

    env = report.environment
    node = (env.host.node_name if env is not None else None) or node_identity(node_name)[0]
    return write_node_report(output_dir, node, render_json(report), write_atomic)


def _render_dashboard(fmt: "CheckFormat", report, node_name: Optional[str]) -> str:
    if fmt is CheckFormat.prometheus:
        import time

        from tfcompat.render.prometheus import render_prometheus
        from tfcompat.scan import node_identity

        return render_prometheus(report, hostname=node_identity(node_name)[0], now=time.time())
    if fmt is CheckFormat.npd:
        from tfcompat.render.npd import render_npd

        return render_npd(report)
    from tfcompat.render.nfd import render_nfd

    return render_nfd(report)


def _check_error_renderer(fmt: "CheckFormat", output_dir: Optional[str], node_name: Optional[str]):
    """How `check` reports an error it cannot judge past: in its format, and in --output-dir for the gate."""

    def render(message: str) -> Optional[str]:
        from tfcompat.engine import error_report

        report = error_report(message)
        if output_dir and os.path.isdir(output_dir):
            try:
                _write_node_report(output_dir, report, node_name)
            except (OSError, ValueError):
                pass  # the error line still comes out
        if fmt is CheckFormat.json:
            from tfcompat.render.json import render_json

            return render_json(report)
        if fmt is CheckFormat.npd:
            from tfcompat.render.npd import render_npd_error

            return render_npd_error(message)
        if fmt in (CheckFormat.prometheus, CheckFormat.nfd):
            return _render_dashboard(fmt, report, node_name)
        return None

    return render


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
    probe: bool = ProbeOpt,
    probe_timeout: float = ProbeTimeoutOpt,
    op: Optional[List[str]] = OpOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Collect the facts only and write them as a JSON snapshot (judge it later with `check --from`)."""
    with _Run(Format.text, output, verbose):
        from tfcompat.render.json import render_environment

        _emit(render_environment(_scan(python, site_packages, root, node_name, nvml, probe, probe_timeout, op)),
              output)


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


ExpectOpt = typer.Option(None, "--expect", help="Nodes that must report: a file (one node set per line, "
                                                "optionally with key=value labels) or a folded node set such as "
                                                "'gpu-[001-128]' (repeatable).")
MaxAgeOpt = typer.Option(None, "--max-age", help="Reports older than this are stale: 30m, 24h, 7d.")
GroupByOpt = typer.Option(None, "--group-by", help="Compare nodes within groups: a dotted report field "
                                                   "(environment.host.gpus.0.name) or label:KEY from --expect.")
GateFmtOpt = typer.Option(GateFormat.text, "--format", "-f", help="Output format: text, json, junit.")


def _gate_error_renderer(fmt: "GateFormat"):
    def render(message: str) -> Optional[str]:
        if fmt is GateFormat.json:
            return json.dumps({"schema_version": 1, "tool_version": __version__, "status": "error",
                               "exit_code": 2, "errors": [message]}, indent=2) + "\n"
        return None

    return render


def _gate_options(fail_on: "FailOn", expect, max_age, group_by):
    from tfcompat.fleet.gate import GateError, GateOptions, parse_duration, parse_expect
    from tfcompat.model import Severity

    expectation = parse_expect(expect or ())
    if group_by and group_by.startswith("label:") and expectation is None:
        raise GateError(f"--group-by {group_by}: labels come from an --expect file")
    return GateOptions(fail_on=Severity(fail_on.value), expect=expectation,
                       max_age_seconds=parse_duration(max_age) if max_age else None, group_by=group_by)


def _render_gate(fleet_report, fmt: "GateFormat", colour: Optional[bool], output: Optional[str]) -> str:
    if fmt is GateFormat.json:
        from tfcompat.render.gate_json import render_gate_json

        return render_gate_json(fleet_report)
    if fmt is GateFormat.junit:
        from tfcompat.render.junit import render_junit

        return render_junit(fleet_report)
    from tfcompat.render.gate_text import render_gate_text

    use_colour = colour if colour is not None else (output is None and sys.stdout.isatty()
                                                    and "NO_COLOR" not in os.environ)
    return render_gate_text(fleet_report, colour=use_colour)


@app.command()
def gate(
    inputs: Optional[List[str]] = typer.Argument(None, help="Node reports (`check -f json`) or snapshots: files, "
                                                            "directories, globs, or '-' for JSON Lines on stdin."),
    expect: Optional[List[str]] = ExpectOpt,
    max_age: Optional[str] = MaxAgeOpt,
    fail_on: FailOn = GateFailOnOpt,
    group_by: Optional[str] = GroupByOpt,
    environment: Optional[str] = typer.Option(None, "--environment", help="One environment report or snapshot "
                                              "(an image checked with --root) to join with each node's host facts."),
    matrix: Optional[str] = typer.Option(None, "--matrix", help="Matrix for re-judging snapshots and joins."),
    fmt: GateFormat = GateFmtOpt,
    output: Optional[str] = GateOutputOpt,
    colour: Optional[bool] = ColourOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Merge node reports into one verdict: completeness, per-node verdicts, drift; exit 0 pass / 1 fail / 2 incomplete."""
    with _Run(Format.text, output, verbose, render_error=_gate_error_renderer(fmt)):
        from tfcompat.fleet.gate import read_inputs, run_gate
        from tfcompat.matrix import load_matrix

        options = _gate_options(fail_on, expect, max_age, group_by)
        image = _load_snapshot(environment) if environment else None
        loaded = read_inputs(list(inputs or ()), stdin=sys.stdin)
        mtx: list = []

        def matrix_loader():
            if not mtx:
                mtx.append(load_matrix(Path(matrix) if matrix else None))
            return mtx[0]

        if image is not None or matrix:
            matrix_loader()  # a broken --matrix is an error before any node is judged
        fleet_report = run_gate(loaded, options, matrix_loader=matrix_loader, image=image,
                                image_source=environment)
        _emit(_render_gate(fleet_report, fmt, colour, output), output)
    raise typer.Exit(fleet_report.exit_code)


@app.command()
def fleet(
    check_args: Optional[List[str]] = typer.Argument(None, help="Arguments for `tfcompat check` on every node, "
                                                               "after `--`; {node} becomes the node's name."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler "
                                                                      "(tcp://host:8786)."),
    local: Optional[int] = typer.Option(None, "--local", help="Start a Dask LocalCluster of N worker processes "
                                                              "on this machine (demos and tests)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds one node's check may take."),
    output_dir: Optional[str] = typer.Option(None, "--output-dir", help="Also keep each node's JSON report "
                                                                        "as DIR/<node>.json."),
    expect: Optional[List[str]] = ExpectOpt,
    max_age: Optional[str] = MaxAgeOpt,
    fail_on: FailOn = GateFailOnOpt,
    group_by: Optional[str] = GroupByOpt,
    fmt: GateFormat = GateFmtOpt,
    output: Optional[str] = GateOutputOpt,
    colour: Optional[bool] = ColourOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Run `tfcompat check` once on every distinct node of a Dask cluster and gate the results (extra: dask)."""
    with _Run(Format.text, output, verbose, render_error=_gate_error_renderer(fmt)):
        from tfcompat.fleet.dask import run_fleet
        from tfcompat.fleet.gate import run_gate

        if (scheduler is None) == (local is None):
            raise UsageProblem("name a cluster: --scheduler ADDRESS or --local N (one of them)")
        if local is not None and local < 1:
            raise UsageProblem("--local N: N must be at least 1")
        if output_dir and not os.path.isdir(output_dir):
            raise UsageProblem(f"--output-dir {output_dir}: no such directory")
        options = _gate_options(fail_on, expect, max_age, group_by)
        loaded = run_fleet(list(check_args or ()), scheduler=scheduler, local=local, timeout=timeout,
                           progress=lambda line: print(line, file=sys.stderr))
        if output_dir:
            from tfcompat.fleet.gate import dig
            from tfcompat.fleet.reportdir import write_node_report

            for item in loaded:
                node = dig(item.data, ("environment", "host", "node_name")) or item.name_hint
                if item.data is not None and node:
                    write_node_report(output_dir, str(node), json.dumps(item.data, indent=2) + "\n", write_atomic)
        fleet_report = run_gate(loaded, options)
        _emit(_render_gate(fleet_report, fmt, colour, output), output)
    raise typer.Exit(fleet_report.exit_code)


from tfcompat.matrix_cli import matrix_app  # noqa: E402  (`tfcompat matrix ...`)

app.add_typer(matrix_app, name="matrix")


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
