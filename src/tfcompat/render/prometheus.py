"""Prometheus text format for node_exporter's textfile collector (``check --format prometheus``).

Conventions: every name starts with ``tfcompat_``; versions are labels of ``_info`` series whose value is 1;
one series per GPU carries the labels dcgm-exporter puts on its ``DCGM_FI_*`` series, spelled as it spells them
(``gpu``, ``UUID``, ``pci_bus_id``, ``device``, ``modelName``, ``Hostname``), so that PromQL joins on any of them
(``UUID`` is the safest); plus ``hostname`` and ``model_name``, the same values in tfcompat's own snake_case
(what tfcompat's dashboard and the node-level series use; they match nothing in dcgm-exporter). No sample
timestamps (the textfile collector rejects them); the time of the last run is a gauge of its own. The CLI writes
the file atomically.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Optional

from tfcompat.fleet.facts import library_items, parse_time
from tfcompat.model import Report, Severity

# name -> (help, type); also the list tests and deploy/ alert rules check against.
METRICS: dict[str, tuple[str, str]] = {
    "tfcompat_info": ("tfcompat and compatibility-matrix versions of the last check (value 1).", "gauge"),
    "tfcompat_check_status": (
        "Result of the last check: 1 for its status (pass, fail, error), 0 for the others.",
        "gauge",
    ),
    "tfcompat_exit_code": ("Exit code of the last check: 0 pass, 1 fail, 2 could not decide.", "gauge"),
    "tfcompat_compatible": ("1 when the last check passed at its fail-on severity, else 0.", "gauge"),
    "tfcompat_findings": ("Findings of the last check by rule and severity (waived findings not counted).", "gauge"),
    "tfcompat_findings_by_severity": (
        "Findings of the last check per severity (waived findings not counted).",
        "gauge",
    ),
    "tfcompat_findings_waived": ("Findings of the last check waived with --ignore, per severity.", "gauge"),
    "tfcompat_rules_skipped": ("Rules the last check skipped because a fact was unknown.", "gauge"),
    "tfcompat_last_run_timestamp_seconds": ("Unix time at which the checked facts were collected.", "gauge"),
    "tfcompat_tensorflow_info": ("TensorFlow in the checked environment: versions as labels (value 1).", "gauge"),
    "tfcompat_driver_info": ("NVIDIA driver of the node: versions as labels (value 1).", "gauge"),
    "tfcompat_gpu_info": ("One series per GPU with dcgm-exporter's join labels (value 1).", "gauge"),
    "tfcompat_gpu_compatible": ("Per GPU: 1 unless a finding at or above fail-on names this GPU.", "gauge"),
    "tfcompat_library_info": ("CUDA libraries the loader picks for TensorFlow: versions as labels (value 1).", "gauge"),
}


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series(name: str, labels: Sequence[tuple[str, object]], value: float) -> str:  # an int is a float to mypy
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels if v is not None)
    number = repr(float(value)) if isinstance(value, float) else str(int(value))
    return f"{name}{{{inner}}} {number}"


def render_prometheus(report: Report, hostname: Optional[str] = None, now: Optional[float] = None) -> str:
    """`hostname` names the node when the report has no environment (a check that could not start);
    `now` is the last-run time when the report carries no collection time."""
    env = report.environment
    host = (env.host.node_name if env is not None else None) or hostname or "unknown"
    base = [("hostname", host)]
    out: dict[str, list[str]] = {name: [] for name in METRICS}

    out["tfcompat_info"].append(
        _series(
            "tfcompat_info",
            base
            + [
                ("version", report.tool_version),
                ("matrix_updated", report.matrix.updated if report.matrix else ""),
                ("fail_on", report.fail_on.value),
            ],
            1,
        )
    )
    for status in ("pass", "fail", "error"):
        out["tfcompat_check_status"].append(
            _series("tfcompat_check_status", base + [("status", status)], 1 if report.status == status else 0)
        )
    out["tfcompat_exit_code"].append(_series("tfcompat_exit_code", base, report.exit_code))
    out["tfcompat_compatible"].append(_series("tfcompat_compatible", base, 1 if report.status == "pass" else 0))

    counts: dict[tuple[str, str, str], int] = {}
    by_sev = {s.value: 0 for s in Severity}
    waived = {s.value: 0 for s in Severity}
    for f in report.findings:
        if f.waived is not None:
            waived[f.severity.value] += 1
            continue
        key = (f.rule, f.name, f.severity.value)
        counts[key] = counts.get(key, 0) + 1
        by_sev[f.severity.value] += 1
    for (rule, name, sev), n in sorted(counts.items()):
        out["tfcompat_findings"].append(
            _series("tfcompat_findings", base + [("rule", rule), ("name", name), ("severity", sev)], n)
        )
    for sev in ("error", "warning", "info"):
        out["tfcompat_findings_by_severity"].append(
            _series("tfcompat_findings_by_severity", base + [("severity", sev)], by_sev[sev])
        )
        out["tfcompat_findings_waived"].append(
            _series("tfcompat_findings_waived", base + [("severity", sev)], waived[sev])
        )
    out["tfcompat_rules_skipped"].append(_series("tfcompat_rules_skipped", base, len(report.skipped)))

    created = parse_time(env.created) if env is not None else None
    if created is not None:
        last = created.timestamp()
    else:
        last = now if now is not None else datetime.datetime.now(datetime.timezone.utc).timestamp()
    out["tfcompat_last_run_timestamp_seconds"].append(
        _series("tfcompat_last_run_timestamp_seconds", base, float(int(last)))
    )

    if env is not None:
        tf = env.tensorflow
        if tf is not None:
            out["tfcompat_tensorflow_info"].append(
                _series(
                    "tfcompat_tensorflow_info",
                    base
                    + [
                        ("distribution", tf.distribution),
                        ("version", tf.version),
                        ("cuda_version", tf.cuda_version or ""),
                        ("cudnn_version", tf.cudnn_version or ""),
                        ("python_version", env.target.python.version or ""),
                    ],
                    1,
                )
            )
        d = env.host.driver
        if d is not None and d.version:
            out["tfcompat_driver_info"].append(
                _series(
                    "tfcompat_driver_info",
                    base + [("driver_version", d.version), ("cuda_driver_version", d.cuda_driver_version or "")],
                    1,
                )
            )
        counted = [f for f in report.findings if f.waived is None and f.severity.rank >= report.fail_on.rank]
        for g in env.host.gpus:
            # dcgm-exporter's labels, spelled as it spells them, then tfcompat's snake_case ones
            join = [
                ("gpu", g.index),
                ("UUID", g.uuid or ""),
                ("pci_bus_id", g.pci_bus_id or ""),
                ("device", f"nvidia{g.index}"),
                ("modelName", g.name or ""),
                ("Hostname", host),
                ("hostname", host),
                ("model_name", g.name or ""),
            ]
            mig = "" if g.mig_mode is None else ("enabled" if g.mig_mode else "disabled")
            out["tfcompat_gpu_info"].append(
                _series(
                    "tfcompat_gpu_info",
                    join + [("compute_capability", g.compute_capability or ""), ("mig_mode", mig)],
                    1,
                )
            )
            prefix = f"gpu[{g.index}]"
            bad = any(e.fact.startswith(prefix) or (g.uuid and g.uuid in e.source) for f in counted for e in f.evidence)
            out["tfcompat_gpu_compatible"].append(_series("tfcompat_gpu_compatible", join, 0 if bad else 1))
        libs = library_items(env.target)
        for library, version in sorted(libs or ()):
            out["tfcompat_library_info"].append(
                _series("tfcompat_library_info", base + [("library", library), ("version", version)], 1)
            )

    lines: list[str] = []
    for name, (help_text, kind) in METRICS.items():
        if not out[name]:
            continue
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(out[name])
    return "\n".join(lines) + "\n"
