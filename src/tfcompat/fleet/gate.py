"""The fleet gate: many node reports in, one verdict out.

``tfcompat gate`` reads the JSON reports that ``tfcompat check -f json`` wrote on each node (or snapshots
from ``tfcompat scan``), and answers three questions:

1. Is the set complete? Against ``--expect``: missing, duplicate, unreadable and stale (``--max-age``) reports.
2. Does every node pass? Each verdict is re-judged at the gate's ``--fail-on`` from the report's own findings and
   severities (never from its exit code alone).
3. Do the nodes of a group agree? Drift of TensorFlow, Python, CUDA/cuDNN, libraries, driver, GPUs, MIG, custom
   ops, tfcompat and matrix versions: the majority value and the outliers, as folded node lists.

It can also join one environment report (an image checked with ``--root``: host facts unknown) with many host
reports into a verdict per node, by re-running the rules on the merged facts.

Exit: 0 pass; 1 fail (a node fails, or drift at or above ``--fail-on``: more reports cannot turn that into a
pass); 2 incomplete (nothing fails, but a node is missing, stale, duplicated, unreadable or undecided).

The phases live in their own modules: ``read`` (inputs), ``reportdir`` (the ``DIR/<node>.json`` contract),
``judge`` (one typed report, one verdict), ``join`` (image x host), ``expect`` (completeness, age, duplicates),
``drift`` (the TFC6xx rules); this module runs them in order and re-exports their public names.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
from collections.abc import Iterable, Sequence
from typing import Any, Callable, Optional

from tfcompat import __version__
from tfcompat.fleet.drift import drift, fleet_rules
from tfcompat.fleet.expect import (
    CLOCK_SKEW_SECONDS,
    Expectation,
    age_status,
    format_age,
    from_the_future,
    parse_duration,
    parse_expect,
    pick_newest,
)
from tfcompat.fleet.facts import dig, field_text, library_items, parse_time
from tfcompat.fleet.join import HOST_FACTS, IMAGE_PLATFORM_FIELDS, join_environment
from tfcompat.fleet.judge import BadReport, Judged, judge_loaded, judge_report
from tfcompat.fleet.nodeset import abbreviate, fold
from tfcompat.fleet.pools import POOL_MISMATCH, POOL_UNREPORTED, PoolSpec, judge_pools, parse_pools
from tfcompat.fleet.read import GateError, Loaded, _iter_json_values, no_cyclic_gc, read_inputs
from tfcompat.fleet.report import (
    GATE_SCHEMA_VERSION,
    SEVERITIES,
    STATUSES,
    Completeness,
    Counts,
    Drift,
    Duplicate,
    FleetReport,
    Group,
    NodeFinding,
    NodeVerdict,
    Outlier,
    Pool,
    Unreadable,
)
from tfcompat.model import Environment, Report, Severity

__all__ = [
    "GATE_SCHEMA_VERSION",
    "HOST_FACTS",
    "IMAGE_PLATFORM_FIELDS",
    "SEVERITIES",
    "STATUSES",
    "BadReport",
    "Completeness",
    "Counts",
    "Drift",
    "Duplicate",
    "Expectation",
    "FleetReport",
    "GateError",
    "GateOptions",
    "Group",
    "Judged",
    "Loaded",
    "NodeFinding",
    "NodeVerdict",
    "Outlier",
    "Pool",
    "PoolSpec",
    "Unreadable",
    "_iter_json_values",
    "dig",
    "drift",
    "field_text",
    "fleet_rules",
    "format_age",
    "join_environment",
    "judge_loaded",
    "judge_report",
    "library_items",
    "parse_duration",
    "parse_expect",
    "parse_pools",
    "parse_time",
    "read_inputs",
    "run_gate",
]


@dataclasses.dataclass(frozen=True)
class GateOptions:
    """How the gate judges: the severity that fails, the expected nodes, the maximum age, groups, pools."""

    fail_on: Severity = Severity.ERROR
    expect: Optional[Expectation] = None
    max_age_seconds: Optional[float] = None
    group_by: Optional[str] = None  # a dotted report field (environment.host.gpus.0.name) or label:KEY
    now: Optional[datetime.datetime] = None
    pools: tuple[PoolSpec, ...] = ()  # declared pools (--pool, --pool-by): see fleet.pools


def _group_of(report: Any, node: str, options: GateOptions) -> str:
    g = options.group_by
    if not g:
        return "all"
    if g.startswith("label:"):
        labels = options.expect.labels.get(node, {}) if options.expect else {}
        return labels.get(g[len("label:") :]) or "(no label)"
    return field_text(report, g.split(".")) or "(unknown)"


def run_gate(
    loaded: Sequence[Loaded],
    options: GateOptions = GateOptions(),
    matrix_loader: Optional[Callable[[], Any]] = None,
    image: Optional[Environment] = None,
    image_source: Optional[str] = None,
) -> FleetReport:
    """Merge node reports into one FleetReport. `image` (an Environment) joins every node with one image."""
    now = options.now or datetime.datetime.now(datetime.timezone.utc)
    if matrix_loader is None:
        from tfcompat.matrix import load_matrix

        cache: list[Any] = []

        def matrix_loader() -> Any:
            if not cache:
                cache.append(load_matrix())
            return cache[0]

    unreadable: list[Unreadable] = []
    by_node: dict[str, list[Judged]] = collections.defaultdict(list)
    with no_cyclic_gc():
        for item in loaded:
            if item.data is None:
                unreadable.append(Unreadable(item.source, item.error or "unreadable"))
                continue
            try:
                j = judge_loaded(item, options.fail_on, matrix_loader, image)
            except BadReport as exc:
                unreadable.append(Unreadable(item.source, str(exc)))
                continue
            except RecursionError:  # read, but nested too deeply for what judges it: this report only
                unreadable.append(Unreadable(item.source, "not readable: JSON nested too deeply to judge"))
                continue
            by_node[j.node].append(j)
    chosen, duplicates = pick_newest(by_node, now)

    expected_set = set(options.expect.nodes) if options.expect else None
    verdicts: list[NodeVerdict] = []
    in_scope: list[Judged] = []
    stale: list[str] = []
    pools_of: dict[str, tuple[str, ...]] = collections.defaultdict(tuple)
    for spec in options.pools:
        for n in spec.nodes:
            pools_of[n] += (spec.name,)
    pool_reports: dict[str, Report] = {}  # what a pool compares: fresh, expected reports with an environment
    pool_absent: dict[str, frozenset[str]] = {}
    why_not: dict[str, str] = {}
    for node in sorted(chosen):
        j = chosen[node]
        status, age, age_notes = age_status(j, now, options.max_age_seconds)
        notes = list(j.notes) + list(age_notes)
        is_expected = expected_set is None or node in expected_set
        if status == "stale" and is_expected:
            stale.append(node)
        if not is_expected:
            notes.append("not in --expect: judged, but outside the gate's scope")
        group = _group_of(j.report, node, options)
        if is_expected and status == "stale":
            why_not[node] = "stale report"
        elif is_expected and j.report.environment is None:
            why_not[node] = "its check could not run: no environment"
        elif is_expected:
            pool_reports[node] = j.report
            pool_absent[node] = j.absent
        verdicts.append(
            NodeVerdict(
                node,
                status,
                j.verdict,
                j.source,
                j.created_text,
                age,
                group,
                is_expected,
                j.findings,
                j.errors,
                tuple(notes),
                pools_of.get(node, ()),
            )
        )
        if is_expected and status != "stale":
            in_scope.append(j)

    missing = [n for n in options.expect.nodes if n not in chosen] if options.expect else []
    unexpected = [v.node for v in verdicts if not v.expected]
    scoped = [v for v in verdicts if v.expected]
    failed = [v.node for v in scoped if v.status == "fail"]
    undecided = [v.node for v in scoped if v.status == "error"]
    passed = [v.node for v in scoped if v.status == "pass"]

    groups: list[Group] = []
    members_by_group: dict[str, list[Judged]] = collections.defaultdict(list)
    group_of = {v.node: v.group for v in verdicts}
    for j in in_scope:
        members_by_group[group_of[j.node]].append(j)
    all_drift: list[Drift] = []
    for name in sorted(members_by_group):
        members = members_by_group[name]
        found = drift(name, [(j.node, j.report, j.absent) for j in members])
        all_drift += found
        groups.append(Group(name, len(members), fold(sorted(j.node for j in members)), tuple(found)))
    failing_drift = [d for d in all_drift if d.severity.rank >= options.fail_on.rank]
    pools = judge_pools(options.pools, pool_reports, pool_absent, why_not)
    pool_findings = [d for p in pools for d in p.findings]
    # TFC614 (a pool node without a usable report) leaves the gate incomplete, never failed: like a missing node
    failing_pool = [d for d in pool_findings if d.rule == POOL_MISMATCH and d.severity.rank >= options.fail_on.rank]
    unreported_pool = [d for d in pool_findings if d.rule == POOL_UNREPORTED]

    reasons: list[str] = []
    if failed:
        reasons.append(
            f"{_n(len(failed), 'node')} fail{'s' if len(failed) == 1 else ''} at fail-on "
            f"{options.fail_on.value}: {abbreviate(fold(failed))}"
        )
    for d in failing_drift + failing_pool:
        reasons.append(f"{d.rule} {d.message}")
    if missing:
        reasons.append(f"{_n(len(missing), 'node')} missing: {abbreviate(fold(missing))}")
    if stale:
        ahead = any(from_the_future(chosen[node].created, now) for node in stale)
        reasons.append(
            f"{_n(len(stale), 'report')} stale (older than --max-age "
            f"{format_age(options.max_age_seconds)}"
            + (
                f", undated, or dated more than {format_age(CLOCK_SKEW_SECONDS)} ahead (clock-skew allowance)"
                if ahead
                else " or undated"
            )
            + f"): {abbreviate(fold(stale))}"
        )
    if undecided:
        reasons.append(
            f"{_n(len(undecided), 'node')} undecided (the check could not decide): "
            f"{abbreviate(fold(undecided))}{_undecided_why(v for v in scoped if v.status == 'error')}"
        )
    if duplicates:
        reasons.append(
            f"{_n(len(duplicates), 'node')} reported more than once: {abbreviate(fold(d.node for d in duplicates))}"
        )
    if unreadable:
        reasons.append(
            f"{_n(len(unreadable), 'report')} unreadable: "
            + ", ".join(u.source for u in unreadable[:5])
            + (" ..." if len(unreadable) > 5 else "")
        )
    for d in unreported_pool:
        reasons.append(f"{d.rule} {d.message}")
    if not scoped and not missing:
        reasons.append("no node report to judge")

    if failed or failing_drift or failing_pool:
        status, code = "fail", 1
    elif missing or stale or undecided or duplicates or unreadable or not scoped or unreported_pool:
        status, code = "incomplete", 2
    else:
        status, code = "pass", 0

    completeness = Completeness(
        expected=len(options.expect.nodes) if options.expect else None,
        expected_nodeset=fold(options.expect.nodes) if options.expect else None,
        reported=len(chosen),
        missing=tuple(missing),
        missing_nodeset=fold(missing),
        stale=tuple(stale),
        stale_nodeset=fold(stale),
        undecided=tuple(undecided),
        undecided_nodeset=fold(undecided),
        duplicates=tuple(duplicates),
        unreadable=tuple(unreadable),
        unexpected=tuple(unexpected),
        unexpected_nodeset=fold(unexpected),
    )
    counts = Counts(
        nodes=len(scoped),
        passed=len(passed),
        failed=len(failed),
        undecided=len(undecided),
        stale=len(stale),
        missing=len(missing),
        duplicate=len(duplicates),
        unreadable=len(unreadable),
        unexpected=len(unexpected),
        drift=len(all_drift),
    )
    return FleetReport(
        schema_version=GATE_SCHEMA_VERSION,
        tool_version=__version__,
        status=status,
        exit_code=code,
        fail_on=options.fail_on,
        created=now.replace(microsecond=0).isoformat(),
        max_age_seconds=options.max_age_seconds,
        group_by=options.group_by,
        environment_source=image_source,
        reasons=tuple(reasons),
        counts=counts,
        completeness=completeness,
        nodes=tuple(verdicts),
        groups=tuple(groups),
        pools=pools,
    )


def _undecided_why(verdicts: Iterable[NodeVerdict], most: int = 3) -> str:
    """' (n7: reason)', or ' (n[1-2]: reason A; n3: reason B; 2 more reasons)': the first error of each node."""
    by_reason: dict[str, list[str]] = collections.defaultdict(list)
    for v in verdicts:
        reason = " ".join(v.errors[0].split()) if v.errors else "no reason given"
        by_reason[reason if len(reason) <= 120 else reason[:117] + "..."].append(v.node)
    ranked = sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))
    parts = [f"{abbreviate(fold(nodes), 60)}: {reason}" for reason, nodes in ranked[:most]]
    if len(ranked) > most:
        parts.append(f"{len(ranked) - most} more reasons")
    return f" ({'; '.join(parts)})" if parts else ""


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"
