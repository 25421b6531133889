"""The fleet gate: many node reports in, one verdict out.

``tfcompat gate`` reads the JSON reports that ``tfcompat check -f json`` wrote on each node (or snapshots
from ``tfcompat scan``), and answers three questions:

1. Is the set complete? Against ``--expect``: missing, duplicate, unreadable and stale (``--max-age``) reports.
2. Does every node pass? Each verdict is re-judged at the gate's ``--fail-on`` from the report's own findings and
   severities (never from its exit code alone).
3. Do the nodes of a group agree? Drift of TensorFlow, Python, CUDA/cuDNN, libraries, driver, GPUs, MIG, custom
   ops, tfcompat and matrix versions: the majority value and the outliers, as folded node lists.

It can also join one environment report (an image checked with ``--root``: host facts unknown) with many host
reports into a verdict per node, by re-running the rules on the merged facts.

Exit: 0 pass; 1 fail (a node fails, or drift at or above ``--fail-on``: more reports cannot turn that into a
pass); 2 incomplete (nothing fails, but a node is missing, stale, duplicated, unreadable or undecided).
Reports are read as plain dicts, defensively (``.get``), so that reports from older or newer tfcompat releases
and fields added by other probes (``libraries``, ``custom_ops``) are judged without being decoded.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import glob
import json
import os
import posixpath
import re
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, TextIO, Tuple

from tfcompat import __version__
from tfcompat.errors import TfcompatError
from tfcompat.fleet.facts import dig, library_items, parse_time  # shared with render/; also importable from here
from tfcompat.fleet.facts import text_of as _text
from tfcompat.fleet.nodeset import NodeSetError, abbreviate, expand, fold
from tfcompat.model import Severity

GATE_SCHEMA_VERSION = 1
SEVERITIES = tuple(s.value for s in Severity)  # the order of Severity.rank
STATUSES = ("pass", "fail", "error")


class GateError(TfcompatError):
    """Bad gate input the user can fix (a path that does not exist, a malformed --expect or --max-age)."""


# ---------------------------------------------------------------------------
# The FleetReport


@dataclasses.dataclass(frozen=True)
class NodeFinding:
    rule: str
    name: str
    severity: Severity
    message: str
    waived: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class NodeVerdict:
    node: str
    status: str  # pass | fail | error (could not decide) | stale (verdict below is too old to count)
    verdict: str  # pass | fail | error: the judgement of the report itself, at the gate's fail_on
    source: str
    created: Optional[str]
    age_seconds: Optional[float]
    group: str
    expected: bool  # False: not in --expect (judged and shown, but outside the gate's scope)
    findings: Tuple[NodeFinding, ...]
    errors: Tuple[str, ...]
    notes: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Unreadable:
    source: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Duplicate:
    node: str
    used: str  # the source whose report counts (the newest)
    ignored: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Outlier:
    value: str
    count: int
    nodeset: str
    nodes: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Drift:
    rule: str
    fact: str
    severity: Severity
    group: str
    majority: str
    majority_count: int
    majority_nodeset: str
    outliers: Tuple[Outlier, ...]
    message: str


@dataclasses.dataclass(frozen=True)
class Group:
    name: str
    count: int
    nodeset: str
    drift: Tuple[Drift, ...]


@dataclasses.dataclass(frozen=True)
class Completeness:
    expected: Optional[int]
    expected_nodeset: Optional[str]
    reported: int  # distinct nodes with a readable report
    missing: Tuple[str, ...]
    missing_nodeset: str
    stale: Tuple[str, ...]
    stale_nodeset: str
    undecided: Tuple[str, ...]
    undecided_nodeset: str
    duplicates: Tuple[Duplicate, ...]
    unreadable: Tuple[Unreadable, ...]
    unexpected: Tuple[str, ...]
    unexpected_nodeset: str


@dataclasses.dataclass(frozen=True)
class Counts:
    nodes: int  # nodes in scope with a readable report
    passed: int
    failed: int
    undecided: int
    stale: int
    missing: int
    duplicate: int
    unreadable: int
    unexpected: int
    drift: int


@dataclasses.dataclass(frozen=True)
class FleetReport:
    """The gate's verdict. `status` and `exit_code` mean the same in every output format."""

    schema_version: int
    tool_version: str
    status: str  # pass | fail | incomplete
    exit_code: int  # 0 | 1 | 2
    fail_on: Severity
    created: str
    max_age_seconds: Optional[float]
    group_by: Optional[str]
    environment_source: Optional[str]  # the image report joined with the host reports, if any
    reasons: Tuple[str, ...]  # one line per reason for the status
    counts: Counts
    completeness: Completeness
    nodes: Tuple[NodeVerdict, ...]
    groups: Tuple[Group, ...]


# ---------------------------------------------------------------------------
# Reading inputs


@dataclasses.dataclass(frozen=True)
class Loaded:
    """One report as read: its parsed JSON, or why it could not be read."""

    source: str
    data: Optional[Dict[str, Any]]
    error: Optional[str] = None
    name_hint: Optional[str] = None  # a node name from the file name (<node>.json), for reports that name none


_GLOB_CHARS = re.compile(r"[*?\[]")


_NEXT_VALUE = re.compile(r"\n[\[{]")  # a line that starts a JSON object or array: where a value may start


def _iter_json_values(text: str, source: str) -> Iterator[Loaded]:
    """JSON Lines, or JSON values one after another (``cat *.json``); a bad line is skipped, not fatal.

    Linear in the input: line numbers (for the sources) are counted incrementally, and each value is decoded
    within its own stretch of text (up to the next line that starts with ``{`` or ``[``), so that neither
    counting lines nor json's error position (which counts lines from the start of what it decodes) rescans
    the input per record. A value cut at such a line (JSON not written by json.dumps) is decoded again from
    its start to the end of the input.
    """
    decoder = json.JSONDecoder()
    pos, n = 0, len(text)
    line, counted = 1, 0  # `line` is the line number of text[counted]
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            return
        line += text.count("\n", counted, pos)
        counted = pos
        nxt = _NEXT_VALUE.search(text, pos)
        stop = nxt.start() if nxt is not None else n
        window = text[pos:stop]
        try:
            value, end = decoder.raw_decode(window)
            end += pos
        except json.JSONDecodeError as exc:
            error: Optional[str] = exc.msg
            if stop < n and exc.pos >= len(window.rstrip()):  # cut short, not malformed: try the whole value
                try:
                    value, end = decoder.raw_decode(text, pos)
                    error = None
                except json.JSONDecodeError as exc2:
                    error = exc2.msg
            if error is not None:
                yield Loaded(f"{source}:{line}", None, f"not valid JSON: {error}")
                # Resume at the next value that starts a line: the next JSON Lines record, or the next
                # top-level object of concatenated pretty-printed files.
                if nxt is None:
                    return
                pos = stop + 1
                continue
        pos = end
        if isinstance(value, dict):
            yield Loaded(f"{source}:{line}", value)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield _as_loaded(item, f"{source}:{line}[{i}]")
        else:
            yield Loaded(f"{source}:{line}", None, f"not a JSON object but {type(value).__name__}")


def _as_loaded(value: Any, source: str, name_hint: Optional[str] = None) -> Loaded:
    if isinstance(value, dict):
        return Loaded(source, value, None, name_hint)
    return Loaded(source, None, f"not a JSON object but {type(value).__name__}")


def _read_file(path: str) -> List[Loaded]:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        return [Loaded(path, None, f"cannot read: {exc.strerror or exc}")]
    except UnicodeDecodeError:
        return [Loaded(path, None, "not UTF-8 text")]
    hint = _name_from_path(path)
    if path.endswith((".jsonl", ".ndjson")):
        return list(_iter_json_values(text, path))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if not text.strip():
            return [Loaded(path, None, "empty file", hint)]
        return [Loaded(path, None, f"line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}", hint)]
    if isinstance(value, list):
        return [_as_loaded(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return [_as_loaded(value, path, hint)]


def _name_from_path(path: str) -> Optional[str]:
    base = os.path.basename(path)
    for ext in (".json",):
        if base.endswith(ext) and len(base) > len(ext):
            return base[: -len(ext)]
    return None


def _dir_files(directory: str) -> List[str]:
    names = sorted(n for n in os.listdir(directory)
                   if not n.startswith(".") and n.endswith((".json", ".jsonl", ".ndjson")))
    return [os.path.join(directory, n) for n in names]


def read_inputs(inputs: Sequence[str], stdin: Optional[TextIO] = None) -> List[Loaded]:
    """Files, directories (their ``*.json``/``*.jsonl``, hidden temp files skipped), globs, ``-`` for stdin.

    A path that does not exist or a glob that matches nothing is the user's mistake (GateError); a file that
    exists but cannot be read or parsed is an unreadable report (the gate is then incomplete).
    """
    if not inputs:
        raise GateError("no reports given: name files, directories or globs, or '-' for JSON Lines on stdin")
    out: List[Loaded] = []
    seen: set = set()
    for item in inputs:
        if item == "-":
            if stdin is None:
                raise GateError("'-' names stdin, but there is no stdin to read")
            out.extend(_iter_json_values(stdin.read(), "<stdin>"))
            continue
        if os.path.isdir(item):
            paths = _dir_files(item)
        elif os.path.exists(item):
            paths = [item]
        elif _GLOB_CHARS.search(item):
            paths = sorted(p for p in glob.glob(item) if os.path.isfile(p))
            if not paths:
                raise GateError(f"{item}: no file matches")
        else:
            raise GateError(f"{item}: no such file or directory")
        for p in paths:
            key = os.path.realpath(p)
            if key in seen:
                continue
            seen.add(key)
            out.extend(_read_file(p))
    return out


# ---------------------------------------------------------------------------
# --expect and --max-age


@dataclasses.dataclass(frozen=True)
class Expectation:
    nodes: Tuple[str, ...]
    labels: Mapping[str, Mapping[str, str]]  # node -> label -> value


def parse_expect(values: Sequence[str]) -> Optional[Expectation]:
    """Each value is a file (one node set per line, optionally followed by ``key=value`` labels; ``#`` comments)
    or a folded node set such as ``gpu-[001-128]``."""
    if not values:
        return None
    nodes: Dict[str, None] = {}
    labels: Dict[str, Dict[str, str]] = {}
    for value in values:
        if os.path.isfile(value):
            try:
                with open(value, encoding="utf-8") as fh:
                    lines = fh.read().splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise GateError(f"--expect {value}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
            for number, raw in enumerate(lines, 1):
                line = raw.split("#", 1)[0].strip()
                if not line:
                    continue
                words = line.split()
                try:
                    names = expand(words[0])
                except NodeSetError as exc:
                    raise GateError(f"--expect {value}:{number}: {exc}") from None
                node_labels = {}
                for word in words[1:]:
                    key, eq, val = word.partition("=")
                    if not eq or not key:
                        raise GateError(f"--expect {value}:{number}: {word!r} is not a label key=value")
                    node_labels[key] = val
                for name in names:
                    nodes.setdefault(name, None)
                    if node_labels:
                        labels.setdefault(name, {}).update(node_labels)
        elif "/" in value or value.endswith((".txt", ".list")):
            raise GateError(f"--expect {value}: no such file")
        else:
            try:
                for name in expand(value):
                    nodes.setdefault(name, None)
            except NodeSetError as exc:
                raise GateError(f"--expect: {exc}") from None
    if not nodes:
        raise GateError("--expect names no node")
    return Expectation(tuple(nodes), labels)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``24h``, ``7d``, ``1w`` or plain seconds."""
    m = _DURATION.match(text or "")
    if not m:
        raise GateError(f"--max-age {text!r}: expected a duration like 30m, 24h, 7d (or seconds)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def format_age(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


# ---------------------------------------------------------------------------
# Reading one report dict, defensively


def _unknown_facts(env: Dict[str, Any]) -> set:
    out = set()
    unknowns = env.get("unknowns")
    for u in unknowns if isinstance(unknowns, list) else ():
        if isinstance(u, dict) and isinstance(u.get("fact"), str):
            out.add(u["fact"])
    return out


def _tf(env: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    tfs = dig(env, ("target", "tensorflow"))
    return tfs[0] if isinstance(tfs, list) and tfs and isinstance(tfs[0], dict) else None


def _gpus(env: Dict[str, Any]) -> Optional[List[Dict[str, Any]]]:
    gpus = dig(env, ("host", "gpus"))
    if isinstance(gpus, list) and gpus:
        return [g for g in gpus if isinstance(g, dict)]
    if {"gpus", "driver"} & _unknown_facts(env):
        return None  # unknown, not "no GPUs"
    return [] if isinstance(gpus, list) else None


def custom_op_items(target: Dict[str, Any]) -> Optional[List[Tuple[str, str]]]:
    """(plugin, GNU build-id or "present") from `target.custom_ops` where a report has it; None where it has not."""
    ops = target.get("custom_ops") if isinstance(target, dict) else None
    if ops is None:
        return None
    items = []
    for entry in ops if isinstance(ops, list) else ():
        if not isinstance(entry, dict):
            continue
        path = entry.get("path")
        # key by owner and file name: venv paths differ between nodes, the plugin does not
        name = entry.get("name") or (f"{entry.get('owner') or '?'}:{posixpath.basename(path)}"
                                     if isinstance(path, str) else None)
        digest = entry.get("build_id") or entry.get("sha256") or entry.get("hash") or entry.get("digest")
        if isinstance(name, str) and name:
            items.append((name, (_text(digest) or "present")[:16]))
    return items


@dataclasses.dataclass(frozen=True)
class DriftRule:
    rule: str
    label: str
    severity: Severity


DRIFT_RULES: Dict[str, DriftRule] = {r.rule: r for r in (
    DriftRule("TFC601", "TensorFlow", Severity.ERROR),
    DriftRule("TFC602", "Python", Severity.WARNING),
    DriftRule("TFC603", "TensorFlow build CUDA/cuDNN", Severity.WARNING),
    DriftRule("TFC604", "CUDA library", Severity.WARNING),
    DriftRule("TFC605", "NVIDIA driver", Severity.WARNING),
    DriftRule("TFC606", "GPU model", Severity.WARNING),
    DriftRule("TFC607", "GPU count", Severity.WARNING),
    DriftRule("TFC608", "GPU compute capability", Severity.WARNING),
    DriftRule("TFC609", "MIG mode", Severity.WARNING),
    DriftRule("TFC610", "custom op", Severity.WARNING),
    DriftRule("TFC611", "tfcompat version", Severity.INFO),
    DriftRule("TFC612", "matrix", Severity.INFO),
)}


def drift_facts(report: Dict[str, Any]) -> Dict[Tuple[str, str], Optional[str]]:
    """(rule, fact) -> value for one report; None where the fact is unknown (unknowns never count as drift)."""
    env = report.get("environment") if isinstance(report.get("environment"), dict) else {}
    out: Dict[Tuple[str, str], Optional[str]] = {}
    tf = _tf(env)
    out[("TFC601", "TensorFlow")] = f"{tf.get('distribution')} {tf.get('version')}" if tf else None
    out[("TFC602", "Python")] = _text(dig(env, ("target", "python", "version")))
    if tf and tf.get("is_cuda_build"):
        out[("TFC603", "TensorFlow build CUDA/cuDNN")] = \
            f"CUDA {tf.get('cuda_version') or '?'}, cuDNN {tf.get('cudnn_version') or '?'}"
    elif tf and tf.get("is_cuda_build") is False:
        out[("TFC603", "TensorFlow build CUDA/cuDNN")] = "not a CUDA build"
    else:
        out[("TFC603", "TensorFlow build CUDA/cuDNN")] = None
    target = env.get("target") if isinstance(env.get("target"), dict) else {}
    libs = library_items(target)
    if libs is not None:
        for name, value in libs:
            out[("TFC604", name)] = value
    driver = dig(env, ("host", "driver"))
    dv = None
    if isinstance(driver, dict):
        dv = driver.get("nvml_driver_version") or driver.get("kernel_module_version")
    out[("TFC605", "NVIDIA driver")] = _text(dv)
    gpus = _gpus(env)
    if gpus is None:
        for fact in ("GPU model", "GPU count", "GPU compute capability", "MIG mode"):
            out[(_FACT_RULE[fact], fact)] = None
    else:
        out[("TFC606", "GPU model")] = ", ".join(sorted({str(g.get("name") or "?") for g in gpus})) or "no GPU"
        out[("TFC607", "GPU count")] = str(len(gpus))
        ccs = sorted({str(g.get("compute_capability")) for g in gpus if g.get("compute_capability")})
        out[("TFC608", "GPU compute capability")] = ", ".join(ccs) or None
        migs = {"enabled" if m is True else "disabled" if m is False else _text(m)
                for m in (g.get("mig_mode") for g in gpus) if m is not None}
        out[("TFC609", "MIG mode")] = ("mixed" if len(migs) > 1 else migs.pop()) if migs else None
    ops = custom_op_items(target)
    if ops is not None:
        for name, value in ops:
            out[("TFC610", name)] = value
    out[("TFC611", "tfcompat version")] = _text(report.get("tool_version"))
    matrix = report.get("matrix")
    if isinstance(matrix, dict):
        version = matrix.get("version")
        out[("TFC612", "matrix")] = _text(matrix.get("updated")) + (f" ({version})" if version else "") \
            if matrix.get("updated") else _text(version)
    else:
        out[("TFC612", "matrix")] = None
    return out


_FACT_RULE = {"GPU model": "TFC606", "GPU count": "TFC607", "GPU compute capability": "TFC608", "MIG mode": "TFC609"}
_ABSENT_RULES = ("TFC604", "TFC610")  # facts listed per item: an item one node lacks is "(absent)" there


# ---------------------------------------------------------------------------
# Judging one report


@dataclasses.dataclass(frozen=True)
class _Judged:
    node: str
    source: str
    report: Dict[str, Any]  # the (possibly re-evaluated) report dict
    verdict: str
    findings: Tuple[NodeFinding, ...]
    errors: Tuple[str, ...]
    created: Optional[datetime.datetime]
    created_text: Optional[str]
    notes: Tuple[str, ...]


class _BadReport(Exception):
    pass


def _shown(value: Any) -> str:
    """A JSON value for a one-line reason, cut short."""
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _one_of(report: Dict[str, Any], key: str, allowed: Sequence[str]) -> Optional[str]:
    """report[key] when it is one of `allowed` (strings), None when the key is absent; anything else: _BadReport."""
    if key not in report:
        return None
    value = report[key]
    if isinstance(value, str) and value in allowed:
        return value
    raise _BadReport(f"$.{key}: expected one of {', '.join(allowed)}, not {_shown(value)}")


def _optional_str(f: Dict[str, Any], key: str, where: str) -> Optional[str]:
    value = f.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _BadReport(f"{where}.{key}: expected a string, not {_shown(value)}")


def _finding(f: Any, i: int) -> NodeFinding:
    where = f"$.findings[{i}]"
    if not isinstance(f, dict) or not isinstance(f.get("rule"), str) or not f["rule"]:
        raise _BadReport(f"{where}: expected a finding object with a rule id")
    severity = f.get("severity")
    if not (isinstance(severity, str) and severity in SEVERITIES):
        raise _BadReport(f"{where}.severity: expected one of {', '.join(SEVERITIES)}, not {_shown(severity)}")
    return NodeFinding(f["rule"], _optional_str(f, "name", where) or "", Severity(severity),
                       _optional_str(f, "message", where) or "", _optional_str(f, "waived", where))


def judge_report(report: Dict[str, Any], fail_on: Severity) -> Tuple[str, Tuple[NodeFinding, ...], Tuple[str, ...],
                                                                      Tuple[str, ...]]:
    """(verdict, findings, errors, notes) of one report dict at `fail_on`, from its findings, not its exit code.

    The fields it reads must have their type (``status`` and ``fail_on`` one of their words, ``errors`` a list of
    strings, each finding's rule, severity, name, message, waived): anything else raises _BadReport with a one-line
    reason, and that one report is unreadable. Absent fields are allowed (older and partial reports).
    """
    raw = report.get("findings")
    if not isinstance(raw, list):
        raise _BadReport(f"$.findings: expected a list, not {_shown(raw)}")
    findings = [_finding(f, i) for i, f in enumerate(raw)]
    raw_errors = report.get("errors", [])
    if not isinstance(raw_errors, list) or not all(isinstance(e, str) for e in raw_errors):
        raise _BadReport(f"$.errors: expected a list of strings, not {_shown(raw_errors)}")
    errors = tuple(e for e in raw_errors if e.strip())
    status = _one_of(report, "status", STATUSES)
    own = _one_of(report, "fail_on", SEVERITIES)
    notes: List[str] = []

    def verdict_at(level: Severity) -> str:
        return "fail" if any(f.waived is None and f.severity.rank >= level.rank for f in findings) else "pass"

    if errors or status == "error":
        verdict = "error"
        if not errors:
            errors = ("the report says status 'error' without a reason",)
    else:
        verdict = verdict_at(fail_on)
        if own is not None and status in ("pass", "fail") and verdict_at(Severity(own)) != status:
            notes.append(f"the report says {status!r} at fail-on {own}, but its findings say "
                         f"{verdict_at(Severity(own))!r}: judged from the findings")
    return verdict, tuple(findings), errors, tuple(notes)


# ---------------------------------------------------------------------------
# Joining an image's environment with a node's host facts

HOST_FACTS = ("driver", "gpus", "rocm", "resources", "platform.kernel", "platform.cpu", "host")
IMAGE_PLATFORM_FIELDS = ("os_release", "os_release_path", "glibc", "glibc_source")


def _is_host_fact(fact: str) -> bool:
    return any(fact == p or fact.startswith(p + ".") or fact.startswith(p + "_") for p in HOST_FACTS)


def join_environment(image, node):
    """The job's view: the image's Python environment (target, user-space OS and glibc) on the node's host
    (driver, GPUs, kernel, CPU, resources). Unknowns are taken from whichever side owns the fact."""
    host = node.host
    image_platform = image.host.platform
    merged_platform = dataclasses.replace(
        host.platform, **{f: getattr(image_platform, f) for f in IMAGE_PLATFORM_FIELDS
                          if getattr(image_platform, f, None) is not None})
    unknowns = tuple(u for u in image.unknowns if not _is_host_fact(u.fact)) + \
        tuple(u for u in node.unknowns if _is_host_fact(u.fact))
    if any(getattr(image_platform, f, None) is not None for f in ("os_release", "glibc")):
        unknowns = tuple(u for u in unknowns if u.fact not in ("platform.os_release", "platform.glibc")
                         or getattr(image_platform, u.fact.split(".")[1], None) is None)
    return dataclasses.replace(image, host=dataclasses.replace(host, platform=merged_platform),
                               unknowns=unknowns, created=node.created or image.created)


# ---------------------------------------------------------------------------
# The gate


@dataclasses.dataclass(frozen=True)
class GateOptions:
    fail_on: Severity = Severity.ERROR
    expect: Optional[Expectation] = None
    max_age_seconds: Optional[float] = None
    group_by: Optional[str] = None  # a dotted report field (environment.host.gpus.0.name) or label:KEY
    now: Optional[datetime.datetime] = None


def _group_of(report: Dict[str, Any], node: str, options: GateOptions) -> str:
    g = options.group_by
    if not g:
        return "all"
    if g.startswith("label:"):
        labels = options.expect.labels.get(node, {}) if options.expect else {}
        return labels.get(g[len("label:"):]) or "(no label)"
    return _text(dig(report, g.split("."))) or "(unknown)"


def _judge_loaded(item: Loaded, options: GateOptions, matrix_loader: Callable[[], Any],
                  image=None) -> _Judged:
    """Raises _BadReport with the reason when the report cannot be used."""
    data = item.data
    assert data is not None
    is_report = "schema_version" in data and "environment" in data
    is_snapshot = not is_report and "snapshot_version" in data and "host" in data
    version = data.get("schema_version")
    if is_report and not (type(version) is int and version == 1):
        raise _BadReport(f"report schema_version {_shown(version)} is not supported (this tfcompat reads 1)")
    if not (is_report or is_snapshot):
        raise _BadReport("neither a tfcompat report (check -f json) nor a snapshot (scan)")
    env = data.get("environment") if is_report else data
    if not (env is None or isinstance(env, dict)):
        raise _BadReport(f"$.environment: expected an object or null, not {_shown(env)}")
    node = dig(env, ("host", "node_name")) if isinstance(env, dict) else None
    if not isinstance(node, str) or not node:
        node = item.name_hint
        if not node:
            raise _BadReport("the report names no node (environment.host.node_name) and its file name gives none")
    notes: List[str] = []
    if image is not None or is_snapshot:
        # Re-run the rules: on the image's environment joined with this node's host, or on a bare snapshot.
        from tfcompat.engine import evaluate
        from tfcompat.model import SnapshotError, environment_from_json, to_json_dict

        if not isinstance(env, dict):
            raise _BadReport("the report carries no environment to judge")
        try:
            node_env = environment_from_json(env)
        except SnapshotError as exc:
            raise _BadReport(str(exc)) from None
        if image is not None:
            node_env = join_environment(image, node_env)
            notes.append("judged on the joined environment: image target + node host")
        data = to_json_dict(evaluate(node_env, matrix_loader(), fail_on=options.fail_on))
        env = data["environment"]
    verdict, findings, errors, more = judge_report(data, options.fail_on)
    created_text = env.get("created") if isinstance(env, dict) else None
    return _Judged(node, item.source, data, verdict, findings, errors, parse_time(created_text),
                   created_text if isinstance(created_text, str) and created_text else None, tuple(notes) + more)


def _majority(values: Dict[str, List[str]]) -> List[Tuple[str, List[str]]]:
    """Values by node count (most first; ties: the value seen on the alphabetically first node)."""
    return sorted(values.items(), key=lambda kv: (-len(kv[1]), min(kv[1]), kv[0]))


def _drift(group: str, members: List[_Judged]) -> List[Drift]:
    per_fact: Dict[Tuple[str, str], Dict[str, List[str]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    item_nodes: Dict[str, set] = collections.defaultdict(set)  # rule -> nodes whose report lists items for it
    facts_by_node = []
    for j in members:
        facts = drift_facts(j.report)
        facts_by_node.append((j.node, facts))
        for (rule, fact), value in facts.items():
            if value is not None:
                per_fact[(rule, fact)][value].append(j.node)
        env = j.report.get("environment") if isinstance(j.report.get("environment"), dict) else {}
        target = env.get("target") if isinstance(env.get("target"), dict) else {}
        if library_items(target) is not None:
            item_nodes["TFC604"].add(j.node)
        if custom_op_items(target) is not None:
            item_nodes["TFC610"].add(j.node)
    # An item (a library, a custom op) that some reports list and others, which do list such items, lack.
    for (rule, fact), values in per_fact.items():
        if rule in _ABSENT_RULES:
            have = {n for ns in values.values() for n in ns}
            lacking = sorted(item_nodes[rule] - have)
            if lacking:
                values["(absent)"].extend(lacking)
    out: List[Drift] = []
    for (rule, fact), values in sorted(per_fact.items()):
        if len(values) < 2:
            continue
        ranked = _majority(values)
        (major, major_nodes), rest = ranked[0], ranked[1:]
        meta = DRIFT_RULES[rule]
        outliers = tuple(Outlier(v, len(ns), fold(sorted(ns)), tuple(sorted(ns))) for v, ns in rest)
        label = meta.label if fact == meta.label else f"{meta.label} {fact}"
        out_text = "; ".join(f"{o.value} on {abbreviate(o.nodeset, 80)}" for o in outliers[:5]) + \
            (f"; {len(outliers) - 5} more values" if len(outliers) > 5 else "")
        message = f"{label} differs in group {group}: {major} on {len(major_nodes)} node" \
                  f"{'s' if len(major_nodes) != 1 else ''}, but {out_text}"
        out.append(Drift(rule, label, meta.severity, group, major, len(major_nodes), fold(sorted(major_nodes)),
                         outliers, message))
    return out


def run_gate(loaded: Sequence[Loaded], options: GateOptions = GateOptions(),
             matrix_loader: Optional[Callable[[], Any]] = None, image=None,
             image_source: Optional[str] = None) -> FleetReport:
    """Merge node reports into one FleetReport. `image` (an Environment) joins every node with one image."""
    now = options.now or datetime.datetime.now(datetime.timezone.utc)
    if matrix_loader is None:
        from tfcompat.matrix import load_matrix

        cache: List[Any] = []

        def matrix_loader():
            if not cache:
                cache.append(load_matrix())
            return cache[0]

    unreadable: List[Unreadable] = []
    by_node: Dict[str, List[_Judged]] = collections.defaultdict(list)
    for item in loaded:
        if item.data is None:
            unreadable.append(Unreadable(item.source, item.error or "unreadable"))
            continue
        try:
            j = _judge_loaded(item, options, matrix_loader, image)
        except _BadReport as exc:
            unreadable.append(Unreadable(item.source, str(exc)))
            continue
        by_node[j.node].append(j)

    epoch = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    duplicates: List[Duplicate] = []
    chosen: Dict[str, _Judged] = {}
    for node, js in by_node.items():
        if len(js) > 1:
            ordered = sorted(enumerate(js), key=lambda ij: (ij[1].created or epoch, -ij[0]), reverse=True)
            keep = ordered[0][1]
            duplicates.append(Duplicate(node, keep.source, tuple(j.source for _, j in ordered[1:])))
            chosen[node] = keep
        else:
            chosen[node] = js[0]

    expected_set = set(options.expect.nodes) if options.expect else None
    verdicts: List[NodeVerdict] = []
    in_scope: List[_Judged] = []
    stale: List[str] = []
    for node in sorted(chosen):
        j = chosen[node]
        age = (now - j.created).total_seconds() if j.created else None
        notes = list(j.notes)
        is_expected = expected_set is None or node in expected_set
        status = j.verdict
        if j.verdict == "error":
            # The check could not decide (e.g. an error report: no environment, no date): undecided, with the
            # report's own reason, whatever --max-age says; an old one says how old.
            if options.max_age_seconds is not None and age is not None and age > options.max_age_seconds:
                notes.append(f"the report is {format_age(age)} old, older than --max-age "
                             f"{format_age(options.max_age_seconds)}")
        elif options.max_age_seconds is not None:
            if j.created is None:
                status = "stale"
                notes.append("the report has no creation time (environment.created): its age is unknown")
            elif age is not None and age > options.max_age_seconds:
                status = "stale"
                notes.append(f"the report is {format_age(age)} old, older than --max-age "
                             f"{format_age(options.max_age_seconds)}")
        if status == "stale" and is_expected:
            stale.append(node)
        if not is_expected:
            notes.append("not in --expect: judged, but outside the gate's scope")
        group = _group_of(j.report, node, options)
        verdicts.append(NodeVerdict(node, status, j.verdict, j.source, j.created_text, age, group, is_expected,
                                    j.findings, j.errors, tuple(notes)))
        if is_expected and status != "stale":
            in_scope.append(j)

    missing = [n for n in options.expect.nodes if n not in chosen] if options.expect else []
    unexpected = [v.node for v in verdicts if not v.expected]
    scoped = [v for v in verdicts if v.expected]
    failed = [v.node for v in scoped if v.status == "fail"]
    undecided = [v.node for v in scoped if v.status == "error"]
    passed = [v.node for v in scoped if v.status == "pass"]

    groups: List[Group] = []
    members_by_group: Dict[str, List[_Judged]] = collections.defaultdict(list)
    group_of = {v.node: v.group for v in verdicts}
    for j in in_scope:
        members_by_group[group_of[j.node]].append(j)
    all_drift: List[Drift] = []
    for name in sorted(members_by_group):
        members = members_by_group[name]
        drift = _drift(name, members)
        all_drift += drift
        groups.append(Group(name, len(members), fold(sorted(j.node for j in members)), tuple(drift)))
    failing_drift = [d for d in all_drift if d.severity.rank >= options.fail_on.rank]

    reasons: List[str] = []
    if failed:
        reasons.append(f"{_n(len(failed), 'node')} fail{'s' if len(failed) == 1 else ''} at fail-on "
                       f"{options.fail_on.value}: {abbreviate(fold(failed))}")
    for d in failing_drift:
        reasons.append(f"{d.rule} {d.message}")
    if missing:
        reasons.append(f"{_n(len(missing), 'node')} missing: {abbreviate(fold(missing))}")
    if stale:
        reasons.append(f"{_n(len(stale), 'report')} stale (older than --max-age "
                       f"{format_age(options.max_age_seconds)} or undated): {abbreviate(fold(stale))}")
    if undecided:
        reasons.append(f"{_n(len(undecided), 'node')} undecided (the check could not decide): "
                       f"{abbreviate(fold(undecided))}{_undecided_why(v for v in scoped if v.status == 'error')}")
    if duplicates:
        reasons.append(f"{_n(len(duplicates), 'node')} reported more than once: "
                       f"{abbreviate(fold(d.node for d in duplicates))}")
    if unreadable:
        reasons.append(f"{_n(len(unreadable), 'report')} unreadable: "
                       + ", ".join(u.source for u in unreadable[:5]) + (" ..." if len(unreadable) > 5 else ""))
    if not scoped and not missing:
        reasons.append("no node report to judge")

    if failed or failing_drift:
        status, code = "fail", 1
    elif missing or stale or undecided or duplicates or unreadable or not scoped:
        status, code = "incomplete", 2
    else:
        status, code = "pass", 0

    completeness = Completeness(
        expected=len(options.expect.nodes) if options.expect else None,
        expected_nodeset=fold(options.expect.nodes) if options.expect else None,
        reported=len(chosen),
        missing=tuple(missing), missing_nodeset=fold(missing),
        stale=tuple(stale), stale_nodeset=fold(stale),
        undecided=tuple(undecided), undecided_nodeset=fold(undecided),
        duplicates=tuple(duplicates), unreadable=tuple(unreadable),
        unexpected=tuple(unexpected), unexpected_nodeset=fold(unexpected),
    )
    counts = Counts(nodes=len(scoped), passed=len(passed), failed=len(failed), undecided=len(undecided),
                    stale=len(stale), missing=len(missing), duplicate=len(duplicates), unreadable=len(unreadable),
                    unexpected=len(unexpected), drift=len(all_drift))
    return FleetReport(
        schema_version=GATE_SCHEMA_VERSION, tool_version=__version__, status=status, exit_code=code,
        fail_on=options.fail_on, created=now.replace(microsecond=0).isoformat(),
        max_age_seconds=options.max_age_seconds, group_by=options.group_by, environment_source=image_source,
        reasons=tuple(reasons), counts=counts, completeness=completeness, nodes=tuple(verdicts),
        groups=tuple(groups),
    )


def _undecided_why(verdicts: Iterable[NodeVerdict], most: int = 3) -> str:
    """' (n7: reason)', or ' (n[1-2]: reason A; n3: reason B; 2 more reasons)': the first error of each node."""
    by_reason: Dict[str, List[str]] = collections.defaultdict(list)
    for v in verdicts:
        reason = " ".join(v.errors[0].split()) if v.errors else "no reason given"
        by_reason[reason if len(reason) <= 120 else reason[:117] + "..."].append(v.node)
    ranked = sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))
    parts = [f"{abbreviate(fold(nodes), 60)}: {reason}" for reason, nodes in ranked[:most]]
    if len(ranked) > most:
        parts.append(f"{len(ranked) - most} more reasons")
    return f" ({'; '.join(parts)})" if parts else ""


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"
