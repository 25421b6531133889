"""Node Feature Discovery local feature file (``check --format nfd``), for ``.../features.d/tfcompat``.

One ``name=value`` per line. Names are ``feature.node.kubernetes.io/tfcompat.*`` (NFD's default namespace, no
``-extra-label-ns`` needed); names and values obey Kubernetes' label rules: at most 63 characters,
``[A-Za-z0-9]`` at both ends, ``[-_.A-Za-z0-9]`` inside (values may be empty). ``tfcompat.rules`` lists the
failing rule ids that fit whole in 63 characters; ``tfcompat.rules-count`` says how many failing rules there are.

The file starts with NFD's ``# +expiry-time=<RFC 3339 UTC time>`` directive (it applies to the lines after it):
once that time passes, NFD drops the labels, so a node whose checker died stops saying ``compatible=true``. The
time is the facts' collection time (``environment.created``; the render time when the report has none) plus
``TFCOMPAT_NFD_EXPIRY`` seconds, by default 1800: twice the DaemonSet's 15-minute interval, so one late round
does not flap the labels. Set it to twice your refresh interval; 0 writes no expiry (labels never expire).
"""

from __future__ import annotations

import datetime
import os
import re
from typing import Optional

from tfcompat.fleet.facts import parse_time
from tfcompat.model import Report

PREFIX = "feature.node.kubernetes.io/"
EXPIRY_ENV = "TFCOMPAT_NFD_EXPIRY"
DEFAULT_EXPIRY_SECONDS = 1800  # twice deploy/kubernetes/daemonset.yaml's TFCOMPAT_INTERVAL (900 s)
_BAD = re.compile(r"[^-_.A-Za-z0-9]+")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-_.A-Za-z0-9]*)?[A-Za-z0-9])?$")


def label_value(text: Optional[str]) -> str:
    """Any text as a valid label value: invalid runs become '-', trimmed to 63 characters, alphanumeric ends."""
    value = _BAD.sub("-", text or "")[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def rules_value(rules: list[str]) -> str:
    """Rule ids joined with '_', as many whole ids as fit in 63 characters: a label never ends in a cut id
    (``TFC30`` is not a rule). ``tfcompat.rules-count`` tells how many there are in all."""
    value = ""
    for rule in rules:
        rule = label_value(rule)
        if not rule:
            continue
        candidate = f"{value}_{rule}" if value else rule
        if len(candidate) > 63:
            break
        value = candidate
    return value


def labels(report: Report) -> list[tuple[str, str]]:
    env = report.environment
    out: list[tuple[str, str]] = [
        ("tfcompat.status", report.status),
        ("tfcompat.compatible", "true" if report.status == "pass" else "false"),
        ("tfcompat.version", report.tool_version),
    ]
    counted = [f for f in report.findings if f.waived is None and f.severity.rank >= report.fail_on.rank]
    rules = sorted({f.rule for f in counted})
    if rules:
        out.append(("tfcompat.rules", rules_value(rules)))
        out.append(("tfcompat.rules-count", str(len(rules))))
    if env is not None:
        tf = env.tensorflow
        if tf is not None:
            out.append(("tfcompat.tensorflow", tf.version))
            if tf.cuda_version:
                out.append(("tfcompat.tensorflow-cuda", tf.cuda_version))
            if tf.cudnn_version:
                out.append(("tfcompat.tensorflow-cudnn", tf.cudnn_version))
        if env.target.python.version:
            out.append(("tfcompat.python", env.target.python.version))
        d = env.host.driver
        if d is not None and d.version:
            out.append(("tfcompat.driver", d.version))
            if d.cuda_driver_version:
                out.append(("tfcompat.cuda-driver", d.cuda_driver_version))
        if env.host.gpus:
            models = sorted({g.name or "unknown" for g in env.host.gpus})
            out.append(("tfcompat.gpu-model", models[0] if len(models) == 1 else "mixed"))
            out.append(("tfcompat.gpu-count", str(len(env.host.gpus))))
    return [(name, label_value(value)) for name, value in out]


def expiry_seconds(environ: Optional[dict[str, str]] = None) -> int:
    """``TFCOMPAT_NFD_EXPIRY`` (whole seconds, 0: never expire), or the default when unset or not a number."""
    raw = (os.environ if environ is None else environ).get(EXPIRY_ENV, "").strip()
    if raw.isdigit():
        return int(raw)
    return DEFAULT_EXPIRY_SECONDS


def expiry_time(report: Report, seconds: int, now: Optional[datetime.datetime] = None) -> str:
    """The facts' collection time (or `now`) plus `seconds`, as RFC 3339 UTC: what NFD's time.RFC3339 parses."""
    env = report.environment
    base = parse_time(env.created) if env is not None else None
    if base is None:
        base = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        at = base.astimezone(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    except OverflowError:  # a created time near year 9999, or an absurd expiry: as late as RFC 3339 goes
        return "9999-12-31T23:59:59Z"
    return at.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_nfd(report: Report, expiry: Optional[int] = None, now: Optional[datetime.datetime] = None) -> str:
    """The features file; `expiry` seconds (default: ``TFCOMPAT_NFD_EXPIRY`` or 1800; 0: none) after the facts
    were collected, NFD drops the labels."""
    seconds = expiry_seconds() if expiry is None else expiry
    head = f"# +expiry-time={expiry_time(report, seconds, now)}\n" if seconds > 0 else ""
    return head + "".join(f"{PREFIX}{name}={value}\n" for name, value in labels(report))
