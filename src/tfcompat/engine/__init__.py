"""The rule engine: registry (what a rule is), selection (--select/--ignore), evaluate (the verdict).

It imports nothing of ``tfcompat.rules``: the families register themselves with ``rule()`` when
imported, and ``tfcompat.rules.catalog()`` lists every shipped rule for callers to pass in.
"""

from tfcompat.engine.evaluate import FACTS, error_report, evaluate, missing_fact
from tfcompat.engine.registry import (
    DOC_SECTIONS,
    RULES,
    Hit,
    NotApplicable,
    Rule,
    RuleFunc,
    lookup,
    registered,
    rule,
)
from tfcompat.engine.select import (
    SelectionError,
    check_waivers,
    known_prefix,
    matches,
    parse_ignores,
    parse_select,
)

__all__ = [
    "DOC_SECTIONS",
    "FACTS",
    "RULES",
    "Hit",
    "NotApplicable",
    "Rule",
    "RuleFunc",
    "SelectionError",
    "check_waivers",
    "error_report",
    "evaluate",
    "known_prefix",
    "lookup",
    "matches",
    "missing_fact",
    "parse_ignores",
    "parse_select",
    "registered",
    "rule",
]
