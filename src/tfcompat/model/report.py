"""The verdict: severities, findings with their evidence, skips, and the report that carries them."""

from __future__ import annotations

import dataclasses
import enum
from typing import Optional

from tfcompat.model.environment import Environment, Scope

REPORT_SCHEMA_VERSION = 1


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclasses.dataclass(frozen=True)
class Evidence:
    """A fact a finding rests on: its value and which file or API said so."""

    fact: str
    value: str
    source: str  # which file or API said so


@dataclasses.dataclass(frozen=True)
class Finding:
    """A problem a rule found: its severity, message, evidence and remediation."""

    rule: str
    name: str
    severity: Severity
    message: str
    evidence: tuple[Evidence, ...]
    remediation: str
    waived: Optional[str] = None  # reason, when an --ignore waived it


@dataclasses.dataclass(frozen=True)
class Skip:
    """A rule that judged nothing here, and why (a fact it needs is unknown, or it does not apply)."""

    rule: str
    name: str
    reason: str


@dataclasses.dataclass(frozen=True)
class MatrixInfo:
    """The matrix file a check used, and its [meta] updated date."""

    path: str
    updated: str


@dataclasses.dataclass(frozen=True)
class Report:
    """The verdict. `status` and `exit_code` mean the same in every output format."""

    schema_version: int
    tool_version: str
    status: str  # "pass" | "fail" | "error" (could not decide)
    exit_code: int  # 0 | 1 | 2
    fail_on: Severity
    matrix: Optional[MatrixInfo]
    findings: tuple[Finding, ...]
    skipped: tuple[Skip, ...]
    errors: tuple[str, ...]  # why tfcompat could not decide (status "error")
    environment: Optional[Environment]
    # How the findings were judged (`--scope`): node (a node agent: job limits are information) or job. It may
    # differ from environment.scope, the scope the snapshot was recorded with (`check --from F --scope job`).
    # None: nothing was judged (an error report: the JSON leaves the key out, one error shape for every command),
    # or a report of an older release (judged as a job).
    scope: Optional[Scope] = None

    @property
    def judged_as(self) -> Scope:
        return self.scope if self.scope is not None else Scope.JOB
