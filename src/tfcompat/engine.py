"""Rule registry and evaluation: (Environment, Matrix) -> Report. No I/O here."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from tfcompat import __version__
from tfcompat.matrix import Matrix
from tfcompat.model import (
    REPORT_SCHEMA_VERSION,
    Environment,
    Evidence,
    Finding,
    MatrixInfo,
    Report,
    Severity,
    Skip,
)

DOC_SECTIONS = ("What", "Why it crashes", "How to fix")


@dataclasses.dataclass(frozen=True)
class Hit:
    """What a rule yields for one problem; the engine adds the rule's id, name and default severity."""

    message: str
    evidence: Tuple[Evidence, ...]
    remediation: str
    severity: Optional[Severity] = None


@dataclasses.dataclass(frozen=True)
class NotApplicable:
    """A rule that has nothing to judge here (e.g. a CPU-only build for a driver rule), and why."""

    reason: str


RuleFunc = Callable[[Environment, Matrix], Iterable[Union[Hit, NotApplicable]]]


@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    requires: Tuple[str, ...]
    doc: str
    func: RuleFunc
    blocks_verdict: bool = False  # a hit means tfcompat could not decide (exit 2), e.g. no TensorFlow
    # "environment": func(Environment, Matrix), judged by `check`; "fleet": judged by `gate` across node
    # reports (its func takes what the fleet layer passes); evaluate() runs environment rules only.
    scope: str = "environment"

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""


RULES: Dict[str, Rule] = {}


def rule(id: str, name: str, severity: Severity, requires: Sequence[str] = (), blocks_verdict: bool = False,
         scope: str = "environment"):
    """Register a rule. Its docstring is its documentation (first line, then What / Why it crashes / How to fix)."""

    def register(func: RuleFunc) -> RuleFunc:
        if id in RULES:
            raise ValueError(f"rule id {id} registered twice")  # programmer error
        if scope not in ("environment", "fleet"):
            raise ValueError(f"rule {id}: unknown scope {scope!r}")  # programmer error
        RULES[id] = Rule(id, name, severity, tuple(requires), inspect.getdoc(func) or "", func, blocks_verdict, scope)
        return func

    return register


def all_rules() -> List[Rule]:
    import tfcompat.rules  # noqa: F401  (registers every family)

    return [RULES[k] for k in sorted(RULES)]


def find_rule(ident: str) -> Optional[Rule]:
    for r in all_rules():
        if r.id.lower() == ident.lower() or r.name == ident:
            return r
    return None


# How to read each fact a rule can require. A fact that is absent without a recorded reason (an
# older or hand-written snapshot) is treated as unknown too, so rules can rely on what they require.
FACTS: Dict[str, Callable[[Environment], object]] = {
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


def _matches(rule_: Rule, prefixes: Iterable[str]) -> bool:
    return any(rule_.id.upper().startswith(p.upper()) or rule_.name == p for p in prefixes)


def evaluate(
    env: Environment,
    matrix: Matrix,
    fail_on: Severity = Severity.ERROR,
    select: Sequence[str] = (),
    ignore: Mapping[str, str] = {},  # prefix -> reason ("" for none)
) -> Report:
    findings: List[Finding] = []
    skipped: List[Skip] = []
    errors: List[str] = []
    for r in all_rules():
        if r.scope != "environment" or (select and not _matches(r, select)):
            continue
        missing = next(((fact, why) for fact in r.requires for why in [missing_fact(env, fact)] if why), None)
        if missing:
            skipped.append(Skip(r.id, r.name, f"{missing[0]} unknown: {missing[1]}"))
            continue
        waiver = next((ignore[p] or "ignored on the command line" for p in ignore if _matches(r, [p])), None)
        try:
            results = list(r.func(env, matrix))
        except Exception as exc:  # noqa: BLE001 - a rule bug must not hide the other rules' verdicts
            errors.append(f"rule {r.id} {r.name} failed: {type(exc).__name__}: {exc} (a tfcompat bug; please report it)")
            continue
        for result in results:
            if isinstance(result, NotApplicable):
                skipped.append(Skip(r.id, r.name, result.reason))
                continue
            f = Finding(r.id, r.name, result.severity or r.severity, result.message, result.evidence,
                        result.remediation, waiver)
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
    )


def error_report(message: str) -> Report:
    """The report for a run that could not even start (bad input): status error, exit 2."""
    return Report(REPORT_SCHEMA_VERSION, __version__, "error", 2, Severity.ERROR, None, (), (), (message,), None)
