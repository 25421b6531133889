"""JUnit XML for CI systems: a testsuite per node plus one for fleet consistency and completeness.

Per node: ``report`` (present, readable, fresh), then one testcase per rule with findings (failure at or above
fail-on, skipped when waived, passed with the message in system-out below it). Missing nodes get a suite whose
``report`` testcase errors. Testcase names are unique within a suite, and suite names are unique.
"""

from __future__ import annotations

import collections
import xml.etree.ElementTree as ET

from tfcompat.fleet.expect import format_age
from tfcompat.fleet.report import FleetReport, NodeFinding
from tfcompat.render.escape import xml_safe

FLEET_SUITE = "tfcompat fleet"  # a node of that name gets "tfcompat fleet #2" (suite names stay unique)


class _Suite:
    """A testsuite element and the testcase names it holds so far (kept as cases are added: linear, not a rescan
    of the suite per testcase)."""

    def __init__(self, parent: ET.Element, name: str, timestamp: str) -> None:
        self.element = ET.SubElement(parent, "testsuite", name=name, timestamp=timestamp)
        self._taken: set[str] = set()
        self._next: dict[str, int] = {}  # name -> the next " #k" suffix to try

    def case(self, classname: str, name: str) -> ET.Element:
        unique = name
        if unique in self._taken:  # names stay unique within a suite whatever the input holds
            k = self._next.get(name, 2)
            while f"{name} #{k}" in self._taken:
                k += 1
            unique = f"{name} #{k}"
            self._next[name] = k + 1
        self._taken.add(unique)
        return ET.SubElement(self.element, "testcase", classname=classname, name=unique, time="0")


def _finish(s: _Suite) -> tuple[int, int, int, int]:
    """Set the suite's counts (once per suite, when all its testcases are in)."""
    suite = s.element
    cases = suite.findall("testcase")
    counts = (
        len(cases),
        sum(1 for c in cases if c.find("failure") is not None),
        sum(1 for c in cases if c.find("error") is not None),
        sum(1 for c in cases if c.find("skipped") is not None),
    )
    suite.set("tests", str(counts[0]))
    suite.set("failures", str(counts[1]))
    suite.set("errors", str(counts[2]))
    suite.set("skipped", str(counts[3]))
    suite.set("time", "0")
    return counts


def _xml_safe(root: ET.Element) -> None:
    """Node names, sources, messages and values come from the reports: characters XML 1.0 does not allow (ESC,
    NUL, lone surrogates...) are shown as escapes, so that the document is always well-formed."""
    for element in root.iter():
        if element.text:
            element.text = xml_safe(element.text)
        for key, value in element.attrib.items():
            safe = xml_safe(value)
            if safe is not value:
                element.set(key, safe)


def _suite_names(names: list[str]) -> list[str]:
    """Suite names, unique: node names come from the reports and may be anything (even ``tfcompat fleet``)."""
    taken: set[str] = {FLEET_SUITE}
    out = []
    for name in names:
        unique, k = name, 2
        while unique in taken:
            unique, k = f"{name} #{k}", k + 1
        taken.add(unique)
        out.append(unique)
    return out


def render_junit(report: FleetReport) -> str:
    root = ET.Element("testsuites", name="tfcompat gate")
    ts = report.created
    fail_rank = report.fail_on.rank
    c = report.completeness
    duplicates = {d.node: d for d in c.duplicates}

    suite_names = _suite_names([v.node for v in report.nodes] + list(c.missing))
    for v, suite_name in zip(report.nodes, suite_names):
        suite = _Suite(root, suite_name, ts)
        cls = f"tfcompat.node.{v.node}"
        props = ET.SubElement(suite.element, "properties")
        ET.SubElement(props, "property", name="source", value=v.source)
        if v.pools:
            ET.SubElement(props, "property", name="pools", value=", ".join(v.pools))
        case = suite.case(cls, "report")
        if v.status == "stale":
            ahead = v.age_seconds is not None and v.age_seconds < 0
            ET.SubElement(
                case,
                "error",
                type="stale",
                message=f"report from {v.created or 'an unknown time'} "
                + (
                    f"({format_age(-(v.age_seconds or 0))} in the future) is dated beyond the clock-skew allowance"
                    if ahead
                    else f"({format_age(v.age_seconds)} old) is older than --max-age"
                ),
            ).text = "\n".join(v.notes)
        elif v.node in duplicates:
            d = duplicates[v.node]
            ET.SubElement(
                case,
                "error",
                type="duplicate",
                message=f"reported more than once: used {d.used}, ignored {', '.join(d.ignored)}",
            )
        elif not v.expected:
            ET.SubElement(case, "skipped", message="not in --expect: judged, not counted")
        verdict = suite.case(cls, "verdict")
        if v.status == "stale":
            ET.SubElement(verdict, "skipped", message=f"stale report: its verdict then was {v.verdict}, not counted")
        elif v.verdict == "error":
            ET.SubElement(
                verdict,
                "error",
                type="undecided",
                message="the check could not decide" + (f": {v.errors[0]}" if v.errors else ""),
            ).text = "\n".join(v.errors + v.notes)
        elif v.verdict == "fail":
            counted = [f for f in v.findings if f.waived is None and f.severity.rank >= fail_rank]
            ET.SubElement(
                verdict,
                "failure",
                type="fail",
                message=f"{len(counted)} finding(s) at or above {report.fail_on.value}: "
                + ", ".join(sorted({f.rule for f in counted})),
            )
        by_rule: dict[str, list[NodeFinding]] = collections.defaultdict(list)
        for f in v.findings:
            by_rule[f.rule].append(f)
        for rule in sorted(by_rule):
            fs = by_rule[rule]
            case = suite.case(cls, f"{rule} {fs[0].name}".strip())
            active = [f for f in fs if f.waived is None]
            text = "\n".join(f"{f.severity.value.upper()}: {f.message}" for f in fs)
            if any(f.severity.rank >= fail_rank for f in active):
                worst = max(active, key=lambda f: f.severity.rank)
                ET.SubElement(case, "failure", type=worst.severity.value, message=worst.message).text = text
            elif not active:
                ET.SubElement(case, "skipped", message=f"waived: {fs[0].waived}")
            else:
                ET.SubElement(case, "system-out").text = text
        _finish(suite)

    for node, suite_name in zip(c.missing, suite_names[len(report.nodes) :]):
        suite = _Suite(root, suite_name, ts)
        case = suite.case(f"tfcompat.node.{node}", "report")
        ET.SubElement(case, "error", type="missing", message="no report from this node")
        _finish(suite)

    fleet = _Suite(root, FLEET_SUITE, ts)
    cls = "tfcompat.fleet"
    case = fleet.case(cls, "completeness")
    problems = []
    if c.missing:
        problems.append(f"{len(c.missing)} missing: {c.missing_nodeset}")
    if c.stale:
        problems.append(f"{len(c.stale)} stale: {c.stale_nodeset}")
    if c.undecided:
        problems.append(f"{len(c.undecided)} undecided: {c.undecided_nodeset}")
    if c.duplicates:
        problems.append(f"{len(c.duplicates)} duplicate: " + ", ".join(d.node for d in c.duplicates))
    if c.unreadable:
        problems.append(f"{len(c.unreadable)} unreadable")
    if not report.counts.nodes and not c.missing:
        problems.append("no node report to judge")
    if problems:
        ET.SubElement(case, "error", type="incomplete", message="; ".join(problems))
    for u in c.unreadable:
        case = fleet.case(cls, f"readable {u.source}")
        ET.SubElement(case, "error", type="unreadable", message=u.reason)
    for g in report.groups:
        drifted = {(x.rule, x.fact): x for x in g.drift}
        name = f"consistency [{g.name}]"
        case = fleet.case(cls, name)
        if not drifted:
            ET.SubElement(case, "system-out").text = f"{g.count} nodes agree: {g.nodeset}"
        for (rule, fact), dr in sorted(drifted.items()):
            dcase = fleet.case(cls, f"{rule} {fact} [{g.name}]")
            if dr.severity.rank >= fail_rank:
                ET.SubElement(dcase, "failure", type=dr.severity.value, message=dr.message)
            else:
                ET.SubElement(dcase, "system-out").text = f"{dr.severity.value.upper()}: {dr.message}"
    for p in report.pools:
        case = fleet.case(cls, f"pool [{p.name}]")
        if p.status == "pass":
            ET.SubElement(
                case, "system-out"
            ).text = f"{p.compared} nodes share GPU model, driver, CUDA driver API and MIG mode: {p.compared_nodeset}"
        for pf in p.findings:
            pcase = fleet.case(cls, f"{pf.rule} {pf.fact} [pool {p.name}]")
            if pf.rule == "TFC614":  # a node without a usable report: incomplete, as a missing node is
                ET.SubElement(pcase, "error", type="incomplete", message=pf.message)
            elif pf.severity.rank >= fail_rank:
                ET.SubElement(pcase, "failure", type=pf.severity.value, message=pf.message)
            else:
                ET.SubElement(pcase, "system-out").text = f"{pf.severity.value.upper()}: {pf.message}"
    _finish(fleet)

    totals = [0, 0, 0, 0]
    for element in root.findall("testsuite"):
        for i, key in enumerate(("tests", "failures", "errors", "skipped")):
            totals[i] += int(element.get(key, "0"))
    for i, key in enumerate(("tests", "failures", "errors", "skipped")):
        root.set(key, str(totals[i]))
    _xml_safe(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
