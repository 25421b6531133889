"""The gate's verdict for a person: what is missing, what fails and why, what drifts, then one result line."""

from __future__ import annotations

import collections

from tfcompat.fleet.expect import format_age
from tfcompat.fleet.nodeset import abbreviate, fold
from tfcompat.fleet.report import FleetReport, NodeVerdict
from tfcompat.model import Severity
from tfcompat.render.escape import visible

_COLOURS = {"fail": "\033[1;31m", "incomplete": "\033[1;33m", "pass": "\033[1;32m"}
_RESET = "\033[0m"
MAX_NODE_LINES = 50  # per section; a 10,000-node fleet must not print 10,000 lines


def _plural(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def _node_lines(v: NodeVerdict, fail_on: Severity) -> list[str]:
    lines = []
    for f in v.findings:
        if f.waived is None and f.severity.rank >= fail_on.rank:
            lines.append(f"    {f.severity.value.upper()} {f.rule} {f.name}: {f.message}")
    for e in v.errors:
        lines.append(f"    error: {e}")
    return lines


def _section(title: str, verdicts: list[NodeVerdict], fail_on: Severity, detail: bool) -> list[str]:
    if not verdicts:
        return []
    lines = ["", f"{title} ({len(verdicts)}): {abbreviate(fold(v.node for v in verdicts))}"]
    if detail:
        for v in verdicts[:MAX_NODE_LINES]:
            lines.append(f"  {v.node}  ({v.source})")
            lines += _node_lines(v, fail_on)
            lines += [f"    note: {n}" for n in v.notes]
        if len(verdicts) > MAX_NODE_LINES:
            lines.append(f"  ... {len(verdicts) - MAX_NODE_LINES} more (see -f json)")
    return lines


def render_gate_text(report: FleetReport, colour: bool = False) -> str:
    c = report.completeness
    n = report.counts
    scope = (
        f"{c.expected} expected ({abbreviate(c.expected_nodeset or '')})" if c.expected is not None else "no --expect"
    )
    lines = [
        f"tfcompat gate {report.tool_version}: {scope}, {_plural(c.reported, 'node')} reported, "
        f"fail-on {report.fail_on.value}"
        + (f", max-age {format_age(report.max_age_seconds)}" if report.max_age_seconds is not None else "")
    ]
    if report.environment_source:
        lines.append(f"Environment {report.environment_source} joined with each node's host facts")
    scoped = [v for v in report.nodes if v.expected]
    by_status: dict[str, list[NodeVerdict]] = collections.defaultdict(list)
    for v in scoped:
        by_status[v.status].append(v)
    lines += _section("Failing", by_status["fail"], report.fail_on, True)
    lines += _section("Undecided", by_status["error"], report.fail_on, True)
    if c.missing:
        lines += ["", f"Missing ({len(c.missing)}): {abbreviate(c.missing_nodeset)}"]
    if by_status["stale"]:
        lines += ["", f"Stale ({len(by_status['stale'])}): {abbreviate(c.stale_nodeset)}"]
        for v in by_status["stale"][:MAX_NODE_LINES]:
            if not v.created:
                when = "undated report"
            elif v.age_seconds is not None and v.age_seconds < 0:
                when = f"report from {v.created}, {format_age(-v.age_seconds)} in the future"
            else:
                when = f"report from {v.created}, {format_age(v.age_seconds)} old"
            lines.append(f"  {v.node}  {when}; its verdict then: {v.verdict}  ({v.source})")
    if c.duplicates:
        lines += ["", f"Duplicate ({len(c.duplicates)}): {abbreviate(fold(d.node for d in c.duplicates))}"]
        for d in c.duplicates[:MAX_NODE_LINES]:
            lines.append(f"  {d.node}  used {d.used}; ignored {', '.join(d.ignored)}")
    if c.unreadable:
        lines += ["", f"Unreadable ({len(c.unreadable)}):"]
        for u in c.unreadable[:MAX_NODE_LINES]:
            lines.append(f"  {u.source}: {u.reason}")
        if len(c.unreadable) > MAX_NODE_LINES:
            lines.append(f"  ... {len(c.unreadable) - MAX_NODE_LINES} more (see -f json)")
    if c.unexpected:
        lines += ["", f"Not in --expect ({len(c.unexpected)}, not counted): {abbreviate(c.unexpected_nodeset)}"]
    if by_status["pass"]:
        warned = sum(1 for v in by_status["pass"] if any(f.waived is None for f in v.findings))
        extra = f" ({warned} with findings below fail-on)" if warned else ""
        lines += [
            "",
            f"Passing ({len(by_status['pass'])}){extra}: {abbreviate(fold(v.node for v in by_status['pass']))}",
        ]

    for g in report.groups:
        head = f"Group {g.name}" if report.group_by else "Consistency"
        by = f" by {report.group_by}" if report.group_by else ""
        if not g.drift:
            lines += ["", f"{head}{by} ({_plural(g.count, 'node')}: {abbreviate(g.nodeset)}): no drift"]
            continue
        lines += [
            "",
            f"{head}{by} ({_plural(g.count, 'node')}: {abbreviate(g.nodeset)}): {_plural(len(g.drift), 'drift')}",
        ]
        for dr in g.drift:
            lines.append(
                f"  {dr.severity.value.upper()} {dr.rule} {dr.fact}: {dr.majority} on "
                f"{abbreviate(dr.majority_nodeset)} ({dr.majority_count})"
            )
            for o in dr.outliers[:MAX_NODE_LINES]:
                lines.append(f"      outlier: {o.value} on {abbreviate(o.nodeset)} ({o.count})")

    for p in report.pools:
        head = f"Pool {p.name} ({p.declared_by}; {_plural(p.count, 'node')}: {abbreviate(p.nodeset)})"
        if p.status == "pass":
            lines += ["", f"{head}: same GPU model, driver, CUDA driver API and MIG mode on {p.compared}"]
            continue
        lines += ["", f"{head}: {p.status.upper()}"]
        for pf in p.findings:
            if pf.majority_count:
                lines.append(
                    f"  {pf.severity.value.upper()} {pf.rule} {pf.fact}: {pf.majority} on "
                    f"{abbreviate(pf.majority_nodeset)} ({pf.majority_count})"
                )
            else:
                lines.append(f"  {pf.severity.value.upper()} {pf.rule} {pf.fact}: no node of the pool has a fresh one")
            word = "outlier" if pf.rule == "TFC613" else "without"
            for o in pf.outliers[:MAX_NODE_LINES]:
                lines.append(f"      {word}: {o.value} on {abbreviate(o.nodeset)} ({o.count})")

    verdict = {"pass": "PASS", "fail": "FAIL", "incomplete": "INCOMPLETE"}[report.status]
    if colour:
        verdict = _COLOURS[report.status] + verdict + _RESET
    summary = (
        f"{n.passed} pass, {n.failed} fail, {n.undecided} undecided, {n.stale} stale, {n.missing} missing, "
        f"{n.duplicate} duplicate, {n.unreadable} unreadable, {_plural(n.drift, 'drift')}"
    )
    lines.append("")
    if report.reasons:
        lines.append("Why:")
        lines += [f"  - {r}" for r in report.reasons]
    # Every line above may hold strings from the reports (node names, sources, messages, values): one line each,
    # control characters shown as escapes. The result line is the renderer's own (and the only one in colour).
    lines = [visible(line) for line in lines]
    lines.append(f"Result: {verdict} ({summary}; exit {report.exit_code})")
    return "\n".join(lines) + "\n"
