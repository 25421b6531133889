"""--select / --ignore: rule prefixes, parsed and checked against the known rules, and the one matcher
that evaluate() uses too (by id prefix, any case, or by exact rule name)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Optional

from tfcompat.engine.registry import Rule
from tfcompat.errors import TfcompatError


class SelectionError(TfcompatError):
    """A --select/--ignore value that names no rule, or is malformed: one line, exit 2."""


def matches(rule_: Rule, prefix: str) -> bool:
    """True when `prefix` starts `rule_`'s id (any case) or is its name."""
    return rule_.id.upper().startswith(prefix.upper()) or rule_.name == prefix


def matches_any(rule_: Rule, prefixes: Iterable[str]) -> bool:
    return any(matches(rule_, p) for p in prefixes)


def known_prefix(option: str, prefix: str, rules: Sequence[Rule]) -> str:
    """A --select/--ignore prefix must match some environment rule: a typo must not silently pass a gate."""
    matching = [r for r in rules if matches(r, prefix)]
    if not matching:
        raise SelectionError(
            f"{option} {prefix}: no rule id starts with it and no rule has that name (see `tfcompat rules`)"
        )
    if all(r.scope == "fleet" for r in matching):  # TFC6xx: `check` never runs them, so this would select nothing
        raise SelectionError(
            f"{option} {prefix}: only fleet rules match it, and `tfcompat gate` judges those "
            "across node reports, not `check`"
        )
    return prefix


def parse_select(values: Optional[Iterable[str]], rules: Sequence[Rule]) -> list[str]:
    """`--select TFC1 --select TFC301,TFC302` -> ["TFC1", "TFC301", "TFC302"]; each must match a rule."""
    return [known_prefix("--select", s.strip(), rules) for v in values or () for s in v.split(",") if s.strip()]


def parse_ignores(values: Optional[Iterable[str]], rules: Sequence[Rule]) -> dict[str, str]:
    """`TFC201`, `TFC201=reason`, `TFC105,TFC301=reason` (the reason applies to every id before it)
    -> {prefix: reason} ("" for none); each prefix must match a rule."""
    out: dict[str, str] = {}
    for v in values or ():
        keys, _, reason = v.partition("=")
        for key in keys.split(","):
            if not key.strip():
                raise SelectionError(f"--ignore {v!r}: expected RULE-PREFIX[,RULE-PREFIX...][=reason]")
            out[known_prefix("--ignore", key.strip(), rules)] = reason.strip()
    return out


def check_waivers(waivers: Mapping[str, str], rules: Sequence[Rule]) -> None:
    """Site overlay waivers (rule prefix -> the overlay file that states it) are checked as --ignore is: a waiver
    that matches no rule (a typo, a retired id) or only fleet rules is an error naming the overlay, not a no-op."""
    for prefix, origin in waivers.items():
        known_prefix(f"site overlay {origin}: [[waiver]] rule", prefix, rules)
