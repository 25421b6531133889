"""The gate's JSON: a versioned contract (schema in schemas/gate.schema.json)."""

from __future__ import annotations

import json as _json
from importlib import resources

from tfcompat.fleet.report import FleetReport
from tfcompat.model import to_json_dict


def render_gate_json(report: FleetReport) -> str:
    return _json.dumps(to_json_dict(report), indent=2) + "\n"


def gate_schema_text() -> str:
    return resources.files("tfcompat.render").joinpath("schemas/gate.schema.json").read_text(encoding="utf-8")
