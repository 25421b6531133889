"""`tfcompat rules` (text, JSON) and `tfcompat explain RULE`: the registry's rules as text."""

from __future__ import annotations

import json as _json
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for the annotations: render never needs the engine at run time
    from tfcompat.engine import Rule


def render_rules_text(rules: Sequence[Rule]) -> str:
    return "".join(f"{r.id}  {r.severity.value:<7}  {r.name:<38} {r.summary}\n" for r in rules)


def render_rules_json(rules: Sequence[Rule]) -> str:
    data = [
        {"rule": r.id, "name": r.name, "severity": r.severity.value, "requires": list(r.requires), "summary": r.summary}
        for r in rules
    ]
    return _json.dumps(data, indent=2) + "\n"


def render_explain(r: Rule) -> str:
    requires = f"requires: {', '.join(r.requires)}\n" if r.requires else ""
    return f"{r.id} {r.name} (default severity: {r.severity.value})\n{requires}\n{r.doc}\n"
