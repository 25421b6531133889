"""The rule registry: what a rule is, how it registers, how to look one up.

It imports nothing of ``tfcompat.rules``: the rule families import this module to register
themselves, never the other way round (see ``tfcompat.rules.catalog()`` for the list of every rule).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Optional,
    TypeVar,
    Union,
)

from tfcompat.model import Environment, Evidence, Severity

if TYPE_CHECKING:  # typing only: the registry does not need the matrix at run time
    from tfcompat.matrix import Matrix

DOC_SECTIONS = ("What", "Why it crashes", "How to fix")


@dataclasses.dataclass(frozen=True)
class Hit:
    """What a rule yields for one problem; the engine adds the rule's id, name and default severity."""

    message: str
    evidence: tuple[Evidence, ...]
    remediation: str
    severity: Optional[Severity] = None


@dataclasses.dataclass(frozen=True)
class NotApplicable:
    """A rule that has nothing to judge here (e.g. a CPU-only build for a driver rule), and why."""

    reason: str


RuleFunc = Callable[[Environment, "Matrix"], Iterable[Union[Hit, NotApplicable]]]
# The function @rule decorates, returned unchanged: an environment rule is a RuleFunc, a fleet rule takes what
# the fleet layer passes (fleet.drift.FleetRuleFunc), so the decorator keeps each function's own signature.
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Rule:
    """A registered rule: its id, name, default severity, the facts it requires, its doc and its function."""

    id: str
    name: str
    severity: Severity
    requires: tuple[str, ...]
    doc: str
    func: RuleFunc
    blocks_verdict: bool = False  # a hit means tfcompat could not decide (exit 2), e.g. no TensorFlow
    # "environment": func(Environment, Matrix), judged by `check`; "fleet": judged by `gate` across node
    # reports (its func takes what the fleet layer passes); evaluate() runs environment rules only.
    scope: str = "environment"
    # True: the rule judges a limit of the checking process (/dev/shm, RLIMIT_MEMLOCK, cgroup memory,
    # CUDA_VISIBLE_DEVICES): the job's only where the check runs where the job runs. Under `--scope node` (a node
    # agent) its findings are information (see evaluate).
    job_limit: bool = False

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""


RULES: dict[str, Rule] = {}


def rule(
    id: str,
    name: str,
    severity: Severity,
    requires: Sequence[str] = (),
    blocks_verdict: bool = False,
    scope: str = "environment",
    job_limit: bool = False,
) -> Callable[[_F], _F]:
    """Register a rule. Its docstring is its documentation (first line, then What / Why it crashes / How to fix)."""

    def register(func: _F) -> _F:
        if id in RULES:
            raise ValueError(f"rule id {id} registered twice")  # programmer error
        if scope not in ("environment", "fleet"):
            raise ValueError(f"rule {id}: unknown scope {scope!r}")  # programmer error
        RULES[id] = Rule(
            id, name, severity, tuple(requires), inspect.getdoc(func) or "", func, blocks_verdict, scope, job_limit
        )
        return func

    return register


def registered() -> list[Rule]:
    """The rules registered so far, by id (only the families imported so far have registered)."""
    return [RULES[k] for k in sorted(RULES)]


def lookup(ident: str, rules: Iterable[Rule]) -> Optional[Rule]:
    """The rule whose id (any case) or name is `ident`."""
    for r in rules:
        if r.id.lower() == ident.lower() or r.name == ident:
            return r
    return None
