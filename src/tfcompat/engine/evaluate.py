"""evaluate(): run the rules on one Environment and decide the verdict. No I/O here."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Callable, Optional

from tfcompat import __version__
from tfcompat.engine.registry import NotApplicable, Rule
from tfcompat.engine.select import matches_any
from tfcompat.model import (
    REPORT_SCHEMA_VERSION,
    Environment,
    Evidence,
    Finding,
    MatrixInfo,
    Report,
    Scope,
    Severity,
    Skip,
)

if TYPE_CHECKING:  # typing only: evaluate reads the matrix's path and date, it needs no matrix code
    from tfcompat.matrix import Matrix

# How to read each fact a rule can require. A fact that is absent without a recorded reason (an
# older or hand-written snapshot) is treated as unknown too, so rules can rely on what they require.
FACTS: dict[str, Callable[[Environment], object]] = {
    "tensorflow": lambda e: e.tensorflow,
    "tensorflow.build": lambda e: e.tensorflow and e.tensorflow.build_info_path,
    "python": lambda e: e.target.python,
    "python.version": lambda e: e.target.python.version,
    "driver": lambda e: e.host.driver,
    "gpus": lambda e: e.host.gpus,
    "rocm": lambda e: e.host.rocm,
    "rocm.version": lambda e: e.host.rocm and e.host.rocm.version,
    "resources.shm": lambda e: e.host.resources and e.host.resources.shm_bytes is not None,
    "resources.rlimits": lambda e: e.host.resources and e.host.resources.rlimit_source,
    "resources.cgroup": lambda e: e.host.resources and e.host.resources.cgroup_version,
}


def missing_fact(env: Environment, fact: str) -> Optional[str]:
    """Why `fact` cannot be used, or None when it is known."""
    reason = env.unknown(fact)
    if reason:
        return reason
    read = FACTS.get(fact)
    if read is not None and not read(env):
        return "not collected"
    return None


def evaluate(
    env: Environment,
    matrix: Matrix,
    rules: Sequence[Rule],  # which rules: tfcompat.rules.catalog() for every shipped one
    fail_on: Severity = Severity.ERROR,
    select: Sequence[str] = (),
    ignore: Mapping[str, str] = {},  # prefix -> reason ("" for none)
    scope: Optional[Scope] = None,  # --scope; None: the scope the environment was recorded with
) -> Report:
    """The verdict on `env`. Under Scope.NODE (a node agent) the findings of the rules that judge the checking
    process's own limits (Rule.job_limit) are information, never a node failure (see node_scope_finding)."""
    scope = scope if scope is not None else env.scope
    findings: list[Finding] = []
    skipped: list[Skip] = []
    errors: list[str] = []
    for r in sorted(rules, key=lambda r: r.id):
        if r.scope != "environment" or (select and not matches_any(r, select)):
            continue
        missing = next(((fact, why) for fact in r.requires for why in [missing_fact(env, fact)] if why), None)
        if missing:
            skipped.append(Skip(r.id, r.name, f"{missing[0]} unknown: {missing[1]}"))
            continue
        waiver = next((ignore[p] or "ignored on the command line" for p in ignore if matches_any(r, [p])), None)
        try:
            results = list(r.func(env, matrix))
        except Exception as exc:  # noqa: BLE001 - a rule bug must not hide the other rules' verdicts
            errors.append(
                f"rule {r.id} {r.name} failed: {type(exc).__name__}: {exc} (a tfcompat bug; please report it)"
            )
            continue
        for result in results:
            if isinstance(result, NotApplicable):
                skipped.append(Skip(r.id, r.name, result.reason))
                continue
            f = Finding(
                r.id, r.name, result.severity or r.severity, result.message, result.evidence, result.remediation, waiver
            )
            if scope is Scope.NODE and r.job_limit:
                f = node_scope_finding(f)
            findings.append(f)
            if r.blocks_verdict and waiver is None:
                errors.append(f.message)
    findings.sort(key=lambda f: (-f.severity.rank, f.rule))
    counted = [f for f in findings if f.waived is None]
    if errors:
        status, code = "error", 2
    elif any(f.severity.rank >= fail_on.rank for f in counted):
        status, code = "fail", 1
    else:
        status, code = "pass", 0
    return Report(
        schema_version=REPORT_SCHEMA_VERSION,
        tool_version=__version__,
        status=status,
        exit_code=code,
        fail_on=fail_on,
        matrix=MatrixInfo(matrix.path, matrix.updated.isoformat()),
        findings=tuple(findings),
        skipped=tuple(skipped),
        errors=tuple(errors),
        environment=env,
        scope=scope,
    )


NODE_SCOPE_NOTE = "node scope: the checker's own limit, not the job's"


def node_scope_finding(f: Finding) -> Finding:
    """A job-limit finding of a node agent (--scope node): information that keeps the severity it would have
    inside the job, never a failure of the node."""
    if f.severity is Severity.INFO:
        return f
    return dataclasses.replace(
        f,
        severity=Severity.INFO,
        message=f"{NODE_SCOPE_NOTE} ({f.severity.value} inside a job): {f.message}",
        evidence=f.evidence
        + (
            Evidence(
                "scope",
                "node",
                "--scope node: a node agent sees its own /dev/shm, rlimits, cgroup and environment; check inside "
                "the job (--scope job) to judge the job's",
            ),
        ),
    )


def error_report(message: str) -> Report:
    """The report for a run that could not even start (bad input): status error, exit 2."""
    return Report(REPORT_SCHEMA_VERSION, __version__, "error", 2, Severity.ERROR, None, (), (), (message,), None)
