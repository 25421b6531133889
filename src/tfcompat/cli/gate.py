"""`tfcompat gate` (merge node reports into one verdict) and `tfcompat fleet` (run check on a Dask cluster, gate)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import typer

from tfcompat.cli.options import (
    ColourOpt,
    ExpectOpt,
    FailOn,
    GateFailOnOpt,
    GateFmtOpt,
    GateFormat,
    GateOutputOpt,
    GroupByOpt,
    MaxAgeOpt,
    QuietOpt,
    VerboseOpt,
)
from tfcompat.cli.run import Run, UsageProblem, warn
from tfcompat.outputs import colour_wanted, emit

if TYPE_CHECKING:
    from tfcompat.fleet.gate import GateOptions
    from tfcompat.fleet.report import FleetReport
    from tfcompat.matrix import Matrix


def _error(command: str, fmt: str) -> Callable[[str], Optional[str]]:
    def on_error(message: str) -> Optional[str]:
        from tfcompat.render.formats import render_error

        return render_error(command, fmt, message)

    return on_error


def _emit_verdict(
    command: str, fmt: GateFormat, report: FleetReport, colour: Optional[bool], output: Optional[str]
) -> None:
    from tfcompat.render.formats import RenderContext, render

    if colour and fmt is not GateFormat.text:
        warn(f"--color is ignored with --format {fmt.value}: only text output is coloured")
    emit(render(command, fmt.value, report, RenderContext(colour=colour_wanted(colour, output))), output)


PoolOpt = typer.Option(
    None,
    "--pool",
    metavar="NAME=NODESET",
    help="Declare a pool: nodes that run one job and must share GPU model, driver, CUDA driver API and MIG mode "
    "(TFC613, an error; a node whose driver or GPUs are unknown differs); each must report (TFC614: incomplete). "
    "NODESET as for --expect: train-a=gpu-[001-004]. Repeatable; pools may overlap.",
)
PoolByOpt = typer.Option(
    None,
    "--pool-by",
    metavar="KEY",
    help="Declare one pool per value of the label KEY in the --expect file (gpu-[001-064] pool=h100), "
    "judged as --pool; nodes without the label are in no pool.",
)


def _gate_options(
    fail_on: FailOn,
    expect: Optional[list[str]],
    max_age: Optional[str],
    group_by: Optional[str],
    pool: Optional[list[str]] = None,
    pool_by: Optional[str] = None,
) -> GateOptions:
    from tfcompat.fleet.gate import GateError, GateOptions, parse_duration, parse_expect, parse_pools
    from tfcompat.model import Severity

    expectation = parse_expect(expect or ())
    if group_by and group_by.startswith("label:") and expectation is None:
        raise GateError(f"--group-by {group_by}: labels come from an --expect file")
    pools = parse_pools(
        pool or (),
        pool_by,
        expectation.labels if expectation is not None else None,
        expectation.nodes if expectation is not None else None,
    )
    return GateOptions(
        fail_on=Severity(fail_on.value),
        expect=expectation,
        max_age_seconds=parse_duration(max_age) if max_age else None,
        group_by=group_by,
        pools=pools,
    )


def gate(
    inputs: Optional[list[str]] = typer.Argument(
        None,
        metavar="REPORT",
        help="Node reports (`check -f json`) or snapshots: files, directories, globs, or '-' for JSON Lines on stdin.",
    ),
    expect: Optional[list[str]] = ExpectOpt,
    max_age: Optional[str] = MaxAgeOpt,
    fail_on: FailOn = GateFailOnOpt,
    group_by: Optional[str] = GroupByOpt,
    pool: Optional[list[str]] = PoolOpt,
    pool_by: Optional[str] = PoolByOpt,
    environment: Optional[str] = typer.Option(
        None,
        "--environment",
        metavar="REPORT",
        help="One environment report or snapshot (an image checked with --root) to join with each node's host facts.",
    ),
    matrix: Optional[str] = typer.Option(
        None, "--matrix", metavar="FILE", help="Matrix for re-judging snapshots and joins."
    ),
    fmt: GateFormat = GateFmtOpt,
    output: Optional[str] = GateOutputOpt,
    colour: Optional[bool] = ColourOpt,
    quiet: bool = QuietOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Merge node reports into one verdict: completeness, per-node verdicts, drift, declared pools.

    Exit 0 pass, 1 fail (a node fails, drift at fail-on, a pool's nodes differ), 2 incomplete (a node missing,
    stale or unreadable)."""
    with Run(output, verbose, render_error=_error("gate", fmt.value), quiet=quiet):
        from tfcompat.fleet.gate import read_inputs, run_gate
        from tfcompat.fleet.read import no_cyclic_gc
        from tfcompat.model import read_snapshot

        options = _gate_options(fail_on, expect, max_age, group_by, pool, pool_by)
        image = read_snapshot(environment) if environment else None
        mtx: list[Matrix] = []

        def matrix_loader() -> Matrix:
            if not mtx:
                from tfcompat.matrix import load_matrix  # only for snapshots and joins

                mtx.append(load_matrix(Path(matrix) if matrix else None))
            return mtx[0]

        if image is not None or matrix:
            matrix_loader()  # a broken --matrix is an error before any node is judged
        with no_cyclic_gc():  # reading, judging and rendering 10,000 reports: no cycles, millions of objects
            loaded = read_inputs(list(inputs or ()), stdin=sys.stdin)
            fleet_report = run_gate(loaded, options, matrix_loader=matrix_loader, image=image, image_source=environment)
            del loaded
            if output or not quiet:
                _emit_verdict("gate", fmt, fleet_report, colour, output)
    raise typer.Exit(fleet_report.exit_code)


def fleet(
    check_args: Optional[list[str]] = typer.Argument(
        None,
        metavar="CHECK_ARGS",
        help="Arguments for `tfcompat check` on every node, after `--`; {node} becomes the node's name.",
    ),
    scheduler: Optional[str] = typer.Option(
        None,
        "--scheduler",
        metavar="ADDRESS",
        help="Address of a running Dask scheduler (tcp://host:8786; default: $DASK_SCHEDULER_ADDRESS).",
    ),
    scheduler_file: Optional[str] = typer.Option(
        None,
        "--scheduler-file",
        metavar="FILE",
        help="Dask scheduler file (written by dask-jobqueue, dask-mpi, `dask scheduler --scheduler-file`).",
    ),
    local: Optional[int] = typer.Option(
        None,
        "--local",
        metavar="N",
        help="Start a Dask LocalCluster of N worker processes on this machine (demos and tests).",
    ),
    timeout: float = typer.Option(120.0, "--timeout", metavar="SECONDS", help="Seconds one node's check may take."),
    output_dir: Optional[str] = typer.Option(
        None,
        "--output-dir",
        metavar="DIR",
        help="Also keep each node's JSON report as DIR/<node>.json (DIR is created).",
    ),
    expect: Optional[list[str]] = ExpectOpt,
    max_age: Optional[str] = MaxAgeOpt,
    fail_on: FailOn = GateFailOnOpt,
    group_by: Optional[str] = GroupByOpt,
    pool: Optional[list[str]] = PoolOpt,
    pool_by: Optional[str] = PoolByOpt,
    fmt: GateFormat = GateFmtOpt,
    output: Optional[str] = GateOutputOpt,
    colour: Optional[bool] = ColourOpt,
    quiet: bool = typer.Option(
        False, "-q", "--quiet", help="No progress lines on stderr (the verdict still comes out: see `gate -q`)."
    ),
    verbose: bool = VerboseOpt,
) -> None:
    """Run `tfcompat check` once on every distinct node of a Dask cluster and gate the results (extra: dask)."""
    with Run(output, verbose, render_error=_error("fleet", fmt.value)):
        from tfcompat.fleet.dask import run_fleet
        from tfcompat.fleet.facts import dig
        from tfcompat.fleet.gate import run_gate
        from tfcompat.fleet.reportdir import write_node_report

        scheduler_from = "--scheduler"
        named = [x for x in (scheduler, scheduler_file, local) if x is not None]
        if len(named) > 1:
            raise UsageProblem("name one cluster: --scheduler ADDRESS, --scheduler-file FILE or --local N")
        if not named:
            scheduler = os.environ.get("DASK_SCHEDULER_ADDRESS") or None
            scheduler_from = "$DASK_SCHEDULER_ADDRESS"
            if scheduler is None:
                raise UsageProblem(
                    "name a cluster: --scheduler ADDRESS, --scheduler-file FILE or --local N "
                    "(or set DASK_SCHEDULER_ADDRESS)"
                )
        if local is not None and local < 1:
            raise UsageProblem("--local N: N must be at least 1")
        options = _gate_options(fail_on, expect, max_age, group_by, pool, pool_by)
        if output_dir:
            try:
                os.makedirs(output_dir, exist_ok=True)
            except OSError as exc:
                raise UsageProblem(f"--output-dir {output_dir}: cannot create it: {exc.strerror or exc}") from None
        loaded = run_fleet(
            list(check_args or ()),
            scheduler=scheduler,
            local=local,
            timeout=timeout,
            progress=(lambda line: None) if quiet else (lambda line: print(line, file=sys.stderr)),
            scheduler_file=scheduler_file,
            scheduler_from=scheduler_from,
        )
        if output_dir:
            for item in loaded:
                node = dig(item.data, ("environment", "host", "node_name")) or item.name_hint
                if item.data is not None and node:
                    write_node_report(output_dir, str(node), json.dumps(item.data, indent=2) + "\n")
        fleet_report = run_gate(loaded, options)
        _emit_verdict("fleet", fmt, fleet_report, colour, output)
    raise typer.Exit(fleet_report.exit_code)
