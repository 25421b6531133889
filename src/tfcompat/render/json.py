"""JSON output: the versioned contract (schema in schemas/report.schema.json)."""

from __future__ import annotations

import json as _json
from importlib import resources

from tfcompat.model import Environment, Report, to_json_dict


def render_json(report: Report) -> str:
    data = to_json_dict(report)
    if report.scope is None:  # an error report: the one error shape every command prints has no scope
        del data["scope"]
    return _json.dumps(data, indent=2, sort_keys=False) + "\n"


def render_json_line(report: Report) -> str:
    """The same report as ONE compact line (JSON Lines, for fan-in: ``clush``, ``pdsh``, ``srun -l``, Ansible):
    no newline inside (json escapes control characters in strings; ensure_ascii also escapes U+2028/U+2029,
    which some line splitters take for line ends), and a newline at the end."""
    return _json.dumps(to_json_dict(report), separators=(",", ":")) + "\n"


def render_environment(env: Environment) -> str:
    return _json.dumps(to_json_dict(env), indent=2) + "\n"


def schema_text() -> str:
    return resources.files("tfcompat.render").joinpath("schemas/report.schema.json").read_text(encoding="utf-8")
