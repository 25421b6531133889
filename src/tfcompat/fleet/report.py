"""The gate's answer, as frozen dataclasses: a FleetReport of node verdicts, completeness, groups and drift.

The JSON of ``tfcompat gate -f json`` is ``to_json_dict`` of a FleetReport (schema in
``render/schemas/gate.schema.json``): a field added here is a field added to that contract.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from tfcompat.model import Severity

GATE_SCHEMA_VERSION = 1
SEVERITIES = tuple(s.value for s in Severity)  # the order of Severity.rank
STATUSES = ("pass", "fail", "error")


@dataclasses.dataclass(frozen=True)
class NodeFinding:
    """A finding of a node's report, as the gate shows it."""

    rule: str
    name: str
    severity: Severity
    message: str
    waived: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class NodeVerdict:
    """One node's verdict: its report's judgement, how old it is, its group and its findings."""

    node: str
    status: str  # pass | fail | error (could not decide) | stale (verdict below is too old to count)
    verdict: str  # pass | fail | error: the judgement of the report itself, at the gate's fail_on
    source: str
    created: Optional[str]
    age_seconds: Optional[float]
    group: str
    expected: bool  # False: not in --expect (judged and shown, but outside the gate's scope)
    findings: tuple[NodeFinding, ...]
    errors: tuple[str, ...]
    notes: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()  # the declared pools the node belongs to


@dataclasses.dataclass(frozen=True)
class Unreadable:
    """A report the gate could not read, and why."""

    source: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Duplicate:
    """A node that reported more than once: the report that counts and the ones ignored."""

    node: str
    used: str  # the source whose report counts (the newest)
    ignored: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Outlier:
    """A value of a fact that differs from the majority's, and the nodes that have it."""

    value: str
    count: int
    nodeset: str
    nodes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Drift:
    """A fleet rule's finding across the nodes of a group or pool: the majority value and the outliers."""

    rule: str
    fact: str
    severity: Severity
    group: str
    majority: str
    majority_count: int
    majority_nodeset: str
    outliers: tuple[Outlier, ...]
    message: str


@dataclasses.dataclass(frozen=True)
class Group:
    """A group of nodes (--group-by) and the drift found among them."""

    name: str
    count: int
    nodeset: str
    drift: tuple[Drift, ...]


@dataclasses.dataclass(frozen=True)
class Pool:
    """A declared pool (``--pool``, ``--pool-by``): its nodes must share GPU model, driver, CUDA driver API and MIG
    mode (TFC613), and each must report (TFC614)."""

    name: str
    declared_by: str  # "--pool gpu-[001-004]" or "label pool=h100"
    status: str  # pass | fail (TFC613) | incomplete (TFC614 only)
    count: int  # declared nodes
    nodeset: str
    compared: int  # nodes with a fresh report that carries an environment
    compared_nodeset: str
    unreported: tuple[str, ...]  # the others
    unreported_nodeset: str
    findings: tuple[Drift, ...]  # TFC613 per fact that differs, TFC614 for unreported nodes


@dataclasses.dataclass(frozen=True)
class Completeness:
    """Which nodes reported: expected, missing, stale, undecided, duplicate, unreadable, unexpected."""

    expected: Optional[int]
    expected_nodeset: Optional[str]
    reported: int  # distinct nodes with a readable report
    missing: tuple[str, ...]
    missing_nodeset: str
    stale: tuple[str, ...]
    stale_nodeset: str
    undecided: tuple[str, ...]
    undecided_nodeset: str
    duplicates: tuple[Duplicate, ...]
    unreadable: tuple[Unreadable, ...]
    unexpected: tuple[str, ...]
    unexpected_nodeset: str


@dataclasses.dataclass(frozen=True)
class Counts:
    """How many nodes in scope passed, failed, were undecided, stale, missing...; and how many drifts."""

    nodes: int  # nodes in scope with a readable report
    passed: int
    failed: int
    undecided: int
    stale: int
    missing: int
    duplicate: int
    unreadable: int
    unexpected: int
    drift: int


@dataclasses.dataclass(frozen=True)
class FleetReport:
    """The gate's verdict. `status` and `exit_code` mean the same in every output format."""

    schema_version: int
    tool_version: str
    status: str  # pass | fail | incomplete
    exit_code: int  # 0 | 1 | 2
    fail_on: Severity
    created: str
    max_age_seconds: Optional[float]
    group_by: Optional[str]
    environment_source: Optional[str]  # the image report joined with the host reports, if any
    reasons: tuple[str, ...]  # one line per reason for the status
    counts: Counts
    completeness: Completeness
    nodes: tuple[NodeVerdict, ...]
    groups: tuple[Group, ...]
    pools: tuple[Pool, ...] = ()  # declared pools (--pool, --pool-by), in declaration order
