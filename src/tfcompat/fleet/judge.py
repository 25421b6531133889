"""Judging one node: a report or snapshot as read (a JSON object) becomes a typed :class:`~tfcompat.model.Report`
and a verdict at the gate's ``--fail-on``.

- A report (``check -f json``) is decoded with the model's JSON codec and re-judged from its findings and
  severities (a waived finding never counts), never from its exit code alone. Fields this tfcompat does not know
  are skipped (a newer release may add fields within a ``schema_version``); fields it knows must have their type.
- A snapshot (``scan``), and with ``--environment`` every input, is decoded as ``check --from`` decodes it and
  judged with the rules (on the image's environment joined with the node's host facts, see ``fleet.join``).

Anything that does not decode makes that one report unreadable, with a one-line reason (BadReport), never a crash.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Sequence
from typing import Any, Callable, Optional

from tfcompat.fleet.drift import LIST_FIELDS
from tfcompat.fleet.facts import parse_time
from tfcompat.fleet.join import join_environment
from tfcompat.fleet.read import Loaded
from tfcompat.fleet.report import SEVERITIES, STATUSES, NodeFinding
from tfcompat.model import (
    Environment,
    Finding,
    Report,
    Scope,
    Severity,
    SnapshotError,
    environment_from_json,
    from_json_dict,
)


@dataclasses.dataclass(frozen=True)
class Judged:
    """One readable node report and the gate's verdict on it."""

    node: str
    source: str
    report: Report  # as read, or as re-evaluated here (snapshots, joins)
    verdict: str  # pass | fail | error
    findings: tuple[NodeFinding, ...]
    errors: tuple[str, ...]
    created: Optional[datetime.datetime]
    created_text: Optional[str]
    notes: tuple[str, ...]
    absent: frozenset[str] = frozenset()  # LIST_FIELDS the report does not carry (an older release)


class BadReport(Exception):
    """Why one report cannot be used (it is then unreadable); not a user error of the whole run."""


def _shown(value: Any) -> str:
    """A JSON value for a one-line reason, cut short."""
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _one_of(data: dict[str, Any], key: str, allowed: Sequence[str]) -> None:
    """data[key] must be one of `allowed` (strings) where present: the words the verdict rests on."""
    if key in data and not (isinstance(data[key], str) and data[key] in allowed):
        raise BadReport(f"$.{key}: expected one of {', '.join(allowed)}, not {_shown(data[key])}")


def _decode_report(data: dict[str, Any]) -> Report:
    # Checked here rather than by the codec: the codec takes any string for status, and these two reasons are
    # the ones the README shows.
    _one_of(data, "status", STATUSES)
    _one_of(data, "fail_on", SEVERITIES)
    try:
        report: Report = from_json_dict(Report, data, lenient=True)
    except SnapshotError as exc:
        raise BadReport(str(exc)) from None
    for i, f in enumerate(report.findings):
        if not f.rule:
            raise BadReport(f"$.findings[{i}]: expected a finding object with a rule id")
    return report


def _absent(env_data: Optional[dict[str, Any]]) -> frozenset[str]:
    """The LIST_FIELDS missing from a report's environment (an older release): not collected, rather than empty."""
    if env_data is None:
        return frozenset()
    return frozenset(
        path
        for path in LIST_FIELDS
        for parent, key in [path.split(".")]
        if isinstance(env_data.get(parent), dict) and key not in env_data[parent]
    )


def _decode_environment(data: dict[str, Any]) -> Environment:
    try:
        return environment_from_json(data)
    except SnapshotError as exc:
        raise BadReport(str(exc)) from None


def _report_scope(data: dict[str, Any]) -> Optional[Scope]:
    value = data.get("scope")
    if value is None:
        return None
    try:
        return Scope(value)
    except ValueError:
        raise BadReport(f"$.scope: expected one of node, job, not {_shown(value)}") from None


def _as_its_scope(report: Report) -> Report:
    """A node-scope report is judged as a node: a job-limit finding above info in it (a hand-made or altered
    report; tfcompat writes them as info) counts as information, as `check --scope node` would have written it."""
    if report.judged_as is not Scope.NODE:
        return report
    from tfcompat.engine.evaluate import node_scope_finding
    from tfcompat.rules import find  # every shipped rule; only here, where a node-scope report needs it

    def judged(f: Finding) -> Finding:
        r = find(f.rule)
        return node_scope_finding(f) if r is not None and r.job_limit and f.severity is not Severity.INFO else f

    findings = tuple(judged(f) for f in report.findings)
    return report if findings == report.findings else dataclasses.replace(report, findings=findings)


def judge_report(
    report: Report, fail_on: Severity
) -> tuple[str, tuple[NodeFinding, ...], tuple[str, ...], tuple[str, ...]]:
    """(verdict, findings, errors, notes) of one report at `fail_on`, from its findings, not its exit code."""
    findings = tuple(NodeFinding(f.rule, f.name, f.severity, f.message, f.waived) for f in report.findings)
    errors = tuple(e for e in report.errors if e.strip())

    def verdict_at(level: Severity) -> str:
        return "fail" if any(f.waived is None and f.severity.rank >= level.rank for f in findings) else "pass"

    notes: list[str] = []
    if errors or report.status == "error":
        verdict = "error"
        if not errors:
            errors = ("the report says status 'error' without a reason",)
    else:
        verdict = verdict_at(fail_on)
        own = verdict_at(report.fail_on)
        if report.status in ("pass", "fail") and own != report.status:
            notes.append(
                f"the report says {report.status!r} at fail-on {report.fail_on.value}, but its findings "
                f"say {own!r}: judged from the findings"
            )
    return verdict, findings, errors, tuple(notes)


def judge_loaded(
    item: Loaded, fail_on: Severity, matrix_loader: Callable[[], Any], image: Optional[Environment] = None
) -> Judged:
    """The verdict on one readable input; raises BadReport with the reason when it cannot be used."""
    data = item.data
    assert data is not None
    is_report = "schema_version" in data and "environment" in data
    is_snapshot = not is_report and "snapshot_version" in data and "host" in data
    version = data.get("schema_version")
    if is_report and not (type(version) is int and version == 1):
        raise BadReport(f"report schema_version {_shown(version)} is not supported (this tfcompat reads 1)")
    if not (is_report or is_snapshot):
        raise BadReport("neither a tfcompat report (check -f json) nor a snapshot (scan)")
    env_data = data.get("environment") if is_report else data
    if not (env_data is None or isinstance(env_data, dict)):
        raise BadReport(f"$.environment: expected an object or null, not {_shown(env_data)}")
    notes: list[str] = []
    absent: frozenset[str] = frozenset()
    if image is not None or is_snapshot:
        # Re-run the rules: on the image's environment joined with this node's host, or on a bare snapshot.
        from tfcompat.rules import (
            evaluate,  # every shipped rule (the rules import fleet.drift: not at the top)
        )

        if env_data is None:
            raise BadReport("the report carries no environment to judge")
        node_env = _decode_environment(env_data)
        # the scope the node's check said (a report's own, else its environment's): its limits are whose it says
        scope = _report_scope(data) if is_report else None
        scope = scope if scope is not None else node_env.scope
        if image is not None:
            node_env = join_environment(image, node_env)
            notes.append("judged on the joined environment: image target + node host")
        report = evaluate(node_env, matrix_loader(), fail_on=fail_on, scope=scope)
    else:
        report = _as_its_scope(_decode_report(data))
        absent = _absent(env_data)
    if report.judged_as is Scope.NODE:
        notes.append("judged as a node agent (--scope node): the checker's own limits (TFC801-803, TFC807) inform only")
    env = report.environment
    node = env.host.node_name if env is not None else None
    if not node:
        node = item.name_hint
        if not node:
            raise BadReport("the report names no node (environment.host.node_name) and its file name gives none")
    verdict, findings, errors, more = judge_report(report, fail_on)
    created_text = env.created if env is not None and env.created else None
    return Judged(
        node,
        item.source,
        report,
        verdict,
        findings,
        errors,
        parse_time(created_text),
        created_text,
        tuple(notes) + more,
        absent,
    )
