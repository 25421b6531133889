"""One table of output formats (pip-audit's format interface).

For each command and each ``--format`` name: the renderer of the command's result and the renderer of an
error the command could not get past. Renderers return strings; only the CLI prints.

Every command that speaks JSON prints an error as the same object, the ``check`` report with status
``"error"`` and exit code 2 (schemas/report.schema.json; schemas/gate.schema.json accepts it too)::

    {"schema_version": 1, "tool_version": "0.1.0", "status": "error", "exit_code": 2, "fail_on": "error",
     "matrix": null, "findings": [], "skipped": [], "errors": ["<one line>"], "environment": null}

``check --format jsonl`` prints the same object (report or error) as one compact line.

A format without an error renderer (text, JUnit) says it on stderr only: ``tfcompat: error: <one line>``.
"""

from __future__ import annotations

import dataclasses
import json as _json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from tfcompat.engine import Rule
    from tfcompat.fleet.gate import FleetReport
    from tfcompat.model import Environment, Report

# Renderers are imported inside the adapters: `check` must not pay for importing the gate, and back.


@dataclasses.dataclass(frozen=True)
class RenderContext:
    """What a renderer needs besides the result, decided by the CLI."""

    colour: bool = False
    hostname: str = ""  # the node's name, for the `hostname` label of the Prometheus textfile


Renderer = Callable[[Any, RenderContext], str]
ErrorRenderer = Callable[[str, RenderContext], str]


@dataclasses.dataclass(frozen=True)
class OutputFormat:
    """One --format of a command: how it renders a result, and an error."""

    render: Optional[Renderer]  # None: the command renders it itself (`matrix`: one text per question)
    render_error: Optional[ErrorRenderer] = None  # None: the stderr line is the whole error


def error_report_json(message: str, ctx: Optional[RenderContext] = None) -> str:
    """The one JSON shape of an error, for every command."""
    from tfcompat.engine import error_report
    from tfcompat.render.json import render_json

    return render_json(error_report(message))


def error_report_jsonl(message: str, ctx: Optional[RenderContext] = None) -> str:
    """The one JSON shape of an error as one compact line (``check --format jsonl``)."""
    from tfcompat.engine import error_report
    from tfcompat.render.json import render_json_line

    return render_json_line(error_report(message))


def _error_report(message: str) -> Report:
    from tfcompat.engine import error_report

    return error_report(message)


def _text(report: Report, ctx: RenderContext) -> str:
    from tfcompat.render.text import render_text

    return render_text(report, colour=ctx.colour)


def _report_json(report: Report, ctx: RenderContext) -> str:
    from tfcompat.render.json import render_json

    return render_json(report)


def _report_jsonl(report: Report, ctx: RenderContext) -> str:
    from tfcompat.render.json import render_json_line

    return render_json_line(report)


def _prometheus(report: Report, ctx: RenderContext) -> str:
    from tfcompat.render.prometheus import render_prometheus

    return render_prometheus(report, hostname=ctx.hostname, now=time.time())


def _npd(report: Report, ctx: RenderContext) -> str:
    from tfcompat.render.npd import render_npd

    return render_npd(report)


def _npd_error(message: str, ctx: RenderContext) -> str:
    from tfcompat.render.npd import render_npd_error

    return render_npd_error(message)


def _nfd(report: Report, ctx: RenderContext) -> str:
    from tfcompat.render.nfd import render_nfd

    return render_nfd(report)


def _gate_text(fleet_report: FleetReport, ctx: RenderContext) -> str:
    from tfcompat.render.gate_text import render_gate_text

    return render_gate_text(fleet_report, colour=ctx.colour)


def _gate_json(fleet_report: FleetReport, ctx: RenderContext) -> str:
    from tfcompat.render.gate_json import render_gate_json

    return render_gate_json(fleet_report)


def _junit(fleet_report: FleetReport, ctx: RenderContext) -> str:
    from tfcompat.render.junit import render_junit

    return render_junit(fleet_report)


def _environment(env: Environment, ctx: RenderContext) -> str:
    from tfcompat.render.json import render_environment

    return render_environment(env)


def _rules_text(rules: Sequence[Rule], ctx: RenderContext) -> str:
    from tfcompat.render.rules import render_rules_text

    return render_rules_text(rules)


def _rules_json(rules: Sequence[Rule], ctx: RenderContext) -> str:
    from tfcompat.render.rules import render_rules_json

    return render_rules_json(rules)


def _plain_json(value: Any, ctx: RenderContext) -> str:
    return _json.dumps(value, indent=2) + "\n"


_GATE = {
    "text": OutputFormat(_gate_text),
    "json": OutputFormat(_gate_json, error_report_json),
    "junit": OutputFormat(_junit),
}

FORMATS: dict[str, dict[str, OutputFormat]] = {
    "check": {
        "text": OutputFormat(_text),
        "json": OutputFormat(_report_json, error_report_json),
        # the same report as one compact line, for fan-in (clush -b, pdsh, srun -l, Ansible)
        "jsonl": OutputFormat(_report_jsonl, error_report_jsonl),
        # node_exporter textfile collector: an error is a textfile with status "error"
        "prometheus": OutputFormat(_prometheus, lambda m, ctx: _prometheus(_error_report(m), ctx)),
        # node-problem-detector custom plugin: one line, exit 0/1/2
        "npd": OutputFormat(_npd, _npd_error),
        # Node Feature Discovery features.d file
        "nfd": OutputFormat(_nfd, lambda m, ctx: _nfd(_error_report(m), ctx)),
    },
    "scan": {"json": OutputFormat(_environment)},  # the snapshot; an error is the stderr line
    "rules": {"text": OutputFormat(_rules_text), "json": OutputFormat(_rules_json)},
    "gate": _GATE,
    "fleet": _GATE,
    "matrix": {"text": OutputFormat(None), "json": OutputFormat(_plain_json, error_report_json)},
}


def output_format(command: str, name: str) -> OutputFormat:
    return FORMATS[command][name]


def render(command: str, name: str, value: Any, ctx: RenderContext = RenderContext()) -> str:
    """`value` (a Report, FleetReport, Environment, ...) in format `name` of `command`."""
    renderer = FORMATS[command][name].render
    if renderer is None:  # programmer error: that command renders this format itself
        raise TypeError(f"{command} --format {name}: rendered by the command, not by the formats table")
    return renderer(value, ctx)


def render_error(command: str, name: str, message: str, ctx: RenderContext = RenderContext()) -> Optional[str]:
    """The error `message` in format `name` of `command`; None where stderr's one line is all."""
    renderer = FORMATS[command][name].render_error
    return renderer(message, ctx) if renderer is not None else None
