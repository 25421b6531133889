"""Prometheus text format for node_exporter's textfile collector (``check --format prometheus``).

Conventions: every name starts with ``tfcompat_``; versions are labels of ``_info`` series whose value is 1;
every label name passes ``promtool check metrics`` (which exits 3 on a camelCase label name such as
dcgm-exporter's ``modelName``). One series per GPU carries the dcgm-exporter labels that promtool accepts, spelled
as dcgm-exporter spells them (``gpu``, ``UUID``, ``pci_bus_id``, ``device``, ``Hostname``), so that PromQL joins
on any of them (``UUID`` is the safest); plus ``hostname`` and ``model_name``, tfcompat's own snake_case (what the
dashboard and the node-level series use). dcgm-exporter's ``modelName`` is not written: to join on the model,
copy it with ``label_replace(DCGM_FI_DEV_GPU_UTIL, "model_name", "$1", "modelName", "(.*)")``.

``tfcompat_gpu_compatible`` is 0 for a GPU that a finding at or above fail-on names (its evidence is about
``gpu[i]`` or that GPU's UUID), and 0 for every GPU when a counted finding names no GPU (a node-wide failure:
the driver too old, a driver/library mismatch) or the check could not decide; else 1. No sample timestamps
(the textfile collector rejects them); the time of the last run is a gauge of its own. The CLI writes the file
atomically.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from typing import Optional

from tfcompat.fleet.facts import library_items, parse_time
from tfcompat.model import Finding, Gpu, Report, Severity

# name -> (help, type); also the list tests and deploy/ alert rules check against.
METRICS: dict[str, tuple[str, str]] = {
    "tfcompat_info": (
        "tfcompat and compatibility-matrix versions, fail-on and scope (node or job) of the last check (value 1).",
        "gauge",
    ),
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
    "tfcompat_gpu_compatible": (
        "Per GPU: 0 when a finding at or above fail-on names this GPU or no GPU (node-wide), or the check could"
        " not decide; else 1.",
        "gauge",
    ),
    "tfcompat_library_info": ("CUDA libraries the loader picks for TensorFlow: versions as labels (value 1).", "gauge"),
}


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series(name: str, labels: Sequence[tuple[str, object]], value: float) -> str:  # an int is a float to mypy
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels if v is not None)
    number = repr(float(value)) if isinstance(value, float) else str(int(value))
    return f"{name}{{{inner}}} {number}"


def _names(text: str, uuid: str) -> bool:
    """`text` names `uuid` as a whole word (GPU-1 is not named by GPU-10)."""
    return re.search(rf"(?<![\w-]){re.escape(uuid)}(?![\w-])", text) is not None


def gpus_named(finding: Finding, gpus: Sequence[Gpu]) -> set[int]:
    """The indexes of the GPUs a finding's evidence is about: a fact ``gpu[i]`` or ``gpu[i].x``, or a source that
    names the GPU's UUID. Empty for a node-wide finding (driver, kernel module, libraries, environment)."""
    named: set[int] = set()
    for g in gpus:
        prefix = f"gpu[{g.index}]"
        for e in finding.evidence:
            if e.fact == prefix or e.fact.startswith(prefix + ".") or (g.uuid and _names(e.source, g.uuid)):
                named.add(g.index)
                break
    return named


def incompatible_gpus(report: Report) -> set[int]:
    """The GPUs whose ``tfcompat_gpu_compatible`` is 0: those a counted finding names, or all of them when one
    names no GPU (a node-wide failure) or the check could not decide."""
    env = report.environment
    gpus = env.host.gpus if env is not None else ()
    every = {g.index for g in gpus}
    if report.status == "error":
        return every
    bad: set[int] = set()
    for f in report.findings:
        if f.waived is not None or f.severity.rank < report.fail_on.rank:
            continue
        named = gpus_named(f, gpus)
        if not named:
            return every
        bad |= named
    return bad


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
                # node: a node agent's run, whose job-limit findings (TFC801-803, 807) are information only
                ("scope", report.judged_as.value),
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
        bad = incompatible_gpus(report)
        for g in env.host.gpus:
            # dcgm-exporter's labels that promtool accepts, spelled as it spells them (not its camelCase
            # modelName), then tfcompat's snake_case ones
            join = [
                ("gpu", g.index),
                ("UUID", g.uuid or ""),
                ("pci_bus_id", g.pci_bus_id or ""),
                ("device", f"nvidia{g.index}"),
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
            out["tfcompat_gpu_compatible"].append(_series("tfcompat_gpu_compatible", join, 0 if g.index in bad else 1))
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
