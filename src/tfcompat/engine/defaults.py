"""The shipped rule families, for callers that do not pass their own list of rules.

The engine does not import the families (they import the engine to register): it loads them by
package name, the way a plugin host loads its plugins. New code asks ``tfcompat.rules.catalog()``
for the rules and hands them to ``evaluate(..., rules=...)`` / ``parse_select(..., rules)``; these
defaults keep ``evaluate(env, matrix)`` and ``all_rules()`` whole for callers not yet switched.
"""

from __future__ import annotations

import importlib
from typing import List, Optional, Sequence

from tfcompat.engine.registry import Rule, lookup, registered

# Packages whose import registers the shipped rules (their __init__ imports every family module).
DEFAULT_FAMILIES: Sequence[str] = ("tfcompat.rules",)


def all_rules() -> List[Rule]:
    """Every shipped rule (environment and fleet scope), by id."""
    for package in DEFAULT_FAMILIES:
        importlib.import_module(package)
    return registered()


def find_rule(ident: str) -> Optional[Rule]:
    """The shipped rule with this id (any case) or name."""
    return lookup(ident, all_rules())
