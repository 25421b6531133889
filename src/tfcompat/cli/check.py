"""`tfcompat check`, `scan`, `rules`, `explain`, `schema`: one environment, and the rule catalogue."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import typer

from tfcompat.cli.options import (
    BudgetOpt,
    CheckFormat,
    CheckScopeOpt,
    ColourOpt,
    FailOn,
    Format,
    NodeOpt,
    NvmlOpt,
    OpOpt,
    ProbeOpt,
    ProbeTimeoutOpt,
    PythonOpt,
    QuietOpt,
    RootOpt,
    ScanScopeOpt,
    ScopeChoice,
    SiteOpt,
    VerboseOpt,
)
from tfcompat.cli.run import Run, UsageProblem, warn
from tfcompat.outputs import colour_wanted, emit

if TYPE_CHECKING:
    from tfcompat.matrix import WorldFacts
    from tfcompat.model import Environment, Report, Scope


def scan_environment(
    python: Optional[str],
    site_packages: Optional[Sequence[str]],
    root: Optional[str],
    node_name: Optional[str],
    nvml: bool,
    probe: bool = False,
    probe_timeout: float = 120.0,
    ops: Optional[Sequence[str]] = (),
    facts: Optional[WorldFacts] = None,
    budget: Optional[float] = None,
    scope: Optional[Scope] = None,
    quiet: bool = False,
) -> Environment:
    """Scan with a wall-clock `budget` in seconds (None: DEFAULT_BUDGET, plus `probe_timeout` with --probe);
    `scope` (--scope, default job) is recorded in the Environment."""
    from tfcompat.probes.budget import DEFAULT_BUDGET, Budget
    from tfcompat.probes.custom_ops import op_files
    from tfcompat.probes.target import TargetSpec
    from tfcompat.scan import scan

    for pattern in ops or ():
        if not op_files(pattern):
            raise UsageProblem(f"--op {pattern}: no such file")
    spec = TargetSpec(python=python, site_packages=tuple(site_packages or ()), root=root)
    if probe and not quiet and sys.stderr.isatty():
        print(
            f"tfcompat: --probe: importing TensorFlow in a child process (at most {probe_timeout:.0f} s)...",
            file=sys.stderr,
        )
    if budget is None:
        budget = DEFAULT_BUDGET + (probe_timeout if probe else 0.0)
    return scan(
        spec,
        node_name=node_name,
        nvml=nvml,
        probe=probe,
        probe_timeout=probe_timeout,
        ops=tuple(ops or ()),
        facts=facts,
        budget=Budget(budget),
        scope=scope,
    )


def _hostname(node_name: Optional[str]) -> str:
    from tfcompat.scan import node_identity

    return node_identity(node_name)[0]


def _to_output_dir(output_dir: str, report: Report, node_name: Optional[str]) -> str:
    from tfcompat.fleet.reportdir import write_node_report
    from tfcompat.render.json import render_json

    env = report.environment
    node = (env.host.node_name if env is not None else None) or _hostname(node_name)
    return write_node_report(output_dir, node, render_json(report))


def _check_error(fmt: str, output_dir: Optional[str], node_name: Optional[str]) -> Callable[[str], Optional[str]]:
    """An error `check` cannot judge past: in its format, and in --output-dir for the gate."""

    def on_error(message: str) -> Optional[str]:
        from tfcompat.engine import error_report
        from tfcompat.render.formats import RenderContext, render_error

        if output_dir and os.path.isdir(output_dir):
            try:
                _to_output_dir(output_dir, error_report(message), node_name)
            except (OSError, ValueError):
                pass  # the error line still comes out
        hostname = _hostname(node_name) if fmt == "prometheus" else ""
        return render_error("check", fmt, message, RenderContext(hostname=hostname))

    return on_error


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave option `name` (on the command line or through its environment variable)."""
    source = ctx.get_parameter_source(name)  # by name: typer vendors click's ParameterSource in some releases
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _warn_ignored(ctx: typer.Context, from_: Optional[str], probe: bool, fmt: str, colour: Optional[bool]) -> None:
    """One warning line for each option that was given but has no effect with the others."""
    ignored = []
    if from_:
        why = "with --from: it only affects a scan, and the snapshot is judged as it was recorded"
        ignored += [(n, why) for n in ("node_name", "nvml", "op", "budget") if _given(ctx, n)]
    if not probe and _given(ctx, "probe_timeout"):
        ignored.append(("probe_timeout", "without --probe: it is the time limit of the --probe child"))
    if colour and fmt != "text":
        ignored.append(("colour", f"with --format {fmt}: only text output is coloured"))
    for name, why in ignored:
        warn(f"{_option_name(ctx, name)} is ignored {why}")


def _option_name(ctx: typer.Context, name: str) -> str:
    """The option as the user wrote it: --nvml or --no-nvml, --color or --no-color."""
    for param in ctx.command.params:
        if param.name == name:
            value = ctx.params.get(name)
            opts = param.secondary_opts if value is False and param.secondary_opts else param.opts
            return max(opts, key=len)
    return name  # pragma: no cover - every name above is an option of check and scan


def check(
    ctx: typer.Context,
    python: Optional[str] = PythonOpt,
    site_packages: Optional[list[str]] = SiteOpt,
    root: Optional[str] = RootOpt,
    from_: Optional[str] = typer.Option(
        None,
        "--from",
        metavar="SNAPSHOT",
        help="Judge a snapshot written by `tfcompat scan` (or a JSON report) instead of scanning.",
    ),
    matrix: Optional[str] = typer.Option(None, "--matrix", metavar="FILE", help="Use this compatibility matrix file."),
    matrix_overlay: Optional[list[str]] = typer.Option(
        None,
        "--matrix-overlay",
        metavar="FILE",
        help="Add a site overlay (known-bad drivers, waivers, thresholds); repeatable.",
    ),
    fmt: CheckFormat = typer.Option(
        CheckFormat.text,
        "--format",
        "-f",
        help="Output format: text, json, jsonl (the JSON report as one line, for clush/pdsh/srun -l), "
        "prometheus (node_exporter textfile), "
        "npd (node-problem-detector plugin), nfd (NFD features.d file).",
    ),
    output: Optional[str] = typer.Option(
        None, "--output", "-o", metavar="FILE", help="Write the report here (atomically)."
    ),
    output_dir: Optional[str] = typer.Option(
        None,
        "--output-dir",
        metavar="DIR",
        help="Also write the JSON report to DIR/<node>.json (atomically), for `tfcompat gate`.",
    ),
    fail_on: FailOn = typer.Option(FailOn.error, "--fail-on", help="Lowest severity that fails (exit 1)."),
    select: Optional[list[str]] = typer.Option(
        None, "--select", metavar="PREFIX", help="Only rules with these id prefixes (repeatable or comma-separated)."
    ),
    ignore: Optional[list[str]] = typer.Option(
        None, "--ignore", metavar="PREFIX[=REASON]", help="Waive rules by id prefix: TFC201 or 'TFC201=reason'."
    ),
    node_name: Optional[str] = NodeOpt,
    nvml: bool = NvmlOpt,
    probe: bool = ProbeOpt,
    probe_timeout: float = ProbeTimeoutOpt,
    op: Optional[list[str]] = OpOpt,
    budget: Optional[float] = BudgetOpt,
    scope: Optional[ScopeChoice] = CheckScopeOpt,
    colour: Optional[bool] = ColourOpt,
    quiet: bool = QuietOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Scan the environment (or read a snapshot), judge it, print the verdict; exit 0/1/2."""
    with Run(output, verbose, render_error=_check_error(fmt.value, output_dir, node_name), quiet=quiet):
        if python and not (from_ or root):
            from tfcompat.probes.interpreter import ask_early

            ask_early(python)  # its start-up overlaps the imports below
        from tfcompat.engine import check_waivers, evaluate, parse_ignores, parse_select
        from tfcompat.matrix import load_matrix
        from tfcompat.model import Scope, Severity, read_snapshot
        from tfcompat.render.formats import RenderContext, render
        from tfcompat.rules import catalog

        if from_ and (python or site_packages or root):
            raise UsageProblem("--from judges a snapshot: it cannot be combined with --python/--site-packages/--root")
        if from_ and probe:
            raise UsageProblem(
                "--probe imports TensorFlow on this node: it cannot be combined with --from "
                "(record it with `tfcompat scan --probe` on the node)"
            )
        if fmt.value != "npd":  # an NPD plugin's output is its one line
            _warn_ignored(ctx, from_, probe, fmt.value, colour)
        rules = catalog()
        ignores = parse_ignores(ignore, rules)
        mtx = load_matrix(Path(matrix) if matrix else None, [Path(o) for o in matrix_overlay or ()])
        check_waivers({w.rule: w.origin for w in mtx.waivers}, rules)  # refused as --ignore refuses them
        ignores = {**mtx.waiver_reasons(), **ignores}  # the overlay's waivers act like --ignore
        wanted = Scope(scope.value) if scope is not None else None
        env = (
            read_snapshot(from_)
            if from_
            else scan_environment(
                python,
                site_packages,
                root,
                node_name,
                nvml,
                probe,
                probe_timeout,
                op,
                mtx.facts,
                budget,
                wanted,
                quiet=quiet,
            )
        )
        if wanted is not None and wanted is not env.scope and fmt.value != "npd" and not quiet:
            # --scope wins over the snapshot's; the report records both (scope, environment.scope)
            print(
                f"tfcompat: --scope {wanted.value}: judging {from_} as {'a job' if wanted is Scope.JOB else 'a node'}"
                f" (it was recorded with --scope {env.scope.value})",
                file=sys.stderr,
            )
        report = evaluate(
            env,
            mtx,
            rules,
            fail_on=Severity(fail_on.value),
            select=parse_select(select, rules),
            ignore=ignores,
            scope=wanted or env.scope,
        )
        if output_dir:
            _to_output_dir(output_dir, report, node_name)
        rctx = RenderContext(
            colour=colour_wanted(colour, output), hostname=_hostname(node_name) if fmt.value == "prometheus" else ""
        )
        if output or not quiet:
            emit(render("check", fmt.value, report, rctx), output)
    if report.status == "error" and fmt.value != "npd":
        # "could not decide" also gets its one line on stderr, as every exit 2 does
        print(f"tfcompat: error: {report.errors[0] if report.errors else 'could not decide'}", file=sys.stderr)
    raise typer.Exit(report.exit_code)


def scan(
    ctx: typer.Context,
    python: Optional[str] = PythonOpt,
    site_packages: Optional[list[str]] = SiteOpt,
    root: Optional[str] = RootOpt,
    output: Optional[str] = typer.Option(
        None, "--output", "-o", metavar="FILE", help="Write the snapshot here (atomically)."
    ),
    node_name: Optional[str] = NodeOpt,
    nvml: bool = NvmlOpt,
    probe: bool = ProbeOpt,
    probe_timeout: float = ProbeTimeoutOpt,
    op: Optional[list[str]] = OpOpt,
    budget: Optional[float] = BudgetOpt,
    scope: ScopeChoice = ScanScopeOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Collect the facts only and write them as a JSON snapshot (judge it later with `check --from`)."""
    if python and not root:
        from tfcompat.probes.interpreter import ask_early

        ask_early(python)  # its start-up overlaps the imports below
    from tfcompat.model import Scope
    from tfcompat.render.formats import render

    with Run(output, verbose):
        _warn_ignored(ctx, None, probe, "json", None)
        env = scan_environment(
            python,
            site_packages,
            root,
            node_name,
            nvml,
            probe,
            probe_timeout,
            op,
            budget=budget,
            scope=Scope(scope.value),
        )
        emit(render("scan", "json", env), output)


def list_rules(fmt: Format = typer.Option(Format.text, "--format", "-f", help="Output format.")) -> None:
    """List every rule: id, default severity, name and what it checks."""
    from tfcompat.render.formats import render
    from tfcompat.rules import catalog

    sys.stdout.write(render("rules", fmt.value, catalog()))


def explain(rule: str = typer.Argument(..., metavar="RULE", help="Rule id (TFC201) or name.")) -> None:
    """Print a rule's documentation: what it checks, why it crashes, how to fix it."""
    from tfcompat.render.rules import render_explain
    from tfcompat.rules import find

    r = find(rule)
    if r is None:
        print(f"tfcompat: error: no rule {rule!r} (see `tfcompat rules`)", file=sys.stderr)
        raise typer.Exit(2)
    sys.stdout.write(render_explain(r))


def schema() -> None:
    """Print the JSON Schema of `tfcompat check --format json` output."""
    from tfcompat.render.json import schema_text

    sys.stdout.write(schema_text())


def examples() -> None:
    """Print the folder of the shipped example fleet.

    Gate it: tfcompat gate "$(tfcompat examples)" --expect 'gpu-[001-008]'"""
    from tfcompat.examples import fleet_dir

    print(fleet_dir())
