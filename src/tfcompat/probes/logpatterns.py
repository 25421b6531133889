"""TensorFlow's log lines, recognised by a table kept as data (data/tf_log_patterns.toml).

One place for everything the table says, used by every layer:

- the import probe feeds each line the child prints through :class:`LineClassifier`, which records
  the lines a pattern recognises (pattern id, first text, count); the class and explanation it also
  records are the table's at scan time, kept because the snapshot schema has them;
- :func:`line_class` and :func:`line_why` say what a recorded line means on a node, by the table this
  tfcompat ships (a snapshot may come from an older one). The 7xx rules judge with them and the
  text report shows the same classes; nothing else classifies a line.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
from pathlib import Path
from typing import Any, Optional

from tfcompat.datafiles import data_file
from tfcompat.errors import TfcompatError
from tfcompat.model import Environment, LogLine

CLASSES = ("benign", "informative", "fatal")
UNCLASSIFIED = "unclassified"
CLASS_ORDER = {"fatal": 0, UNCLASSIFIED: 1, "informative": 2, "benign": 3}  # how reports list the lines
_KEYS = {"id", "class", "match", "why", "example", "gpu_node"}
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

# TF's two log formats: "2024-01-01 10:00:00.000000: E path/file.cc:12] msg" (<= 2.16) and
# absl's "E0000 00:00:1700000000.000000    1234 file.cc:12] msg" (2.17+).
_GLOG = re.compile(
    r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) \S+:\d+\]|([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\])"
)

MAX_LINE = 4096  # longer lines are cut before matching and storing
MAX_TEXT = 500  # characters of a line kept in the report
MAX_UNCLASSIFIED = 20  # distinct unclassified error lines kept


class LogPatternError(TfcompatError):
    """The pattern table is malformed (a tfcompat bug, or a broken --log-patterns file)."""


@dataclasses.dataclass(frozen=True)
class Pattern:
    id: str
    cls: str  # benign | informative | fatal
    regex: re.Pattern[str]
    why: str
    example: str
    gpu_node: Optional[str] = None  # class on a node with NVIDIA GPUs, where it differs

    def class_on(self, gpu_node: bool) -> str:
        return self.gpu_node if gpu_node and self.gpu_node else self.cls


def default_path() -> Path:
    return data_file("tf_log_patterns.toml")


def load_patterns(path: Optional[Path] = None) -> tuple[Pattern, ...]:
    """Load and validate the table; errors name the file, the entry and the field."""
    if sys.version_info >= (3, 11):  # imported here: a check without --probe never reads the table
        import tomllib
    else:  # pragma: no cover - exercised on Python < 3.11 only
        import tomli as tomllib
    path = path or default_path()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LogPatternError(f"{path}: {exc}") from None
    if data.get("schema") != 1:
        raise LogPatternError(f"{path}: schema {data.get('schema')!r} is not supported (expected 1)")
    entries = data.get("patterns")
    if not isinstance(entries, list) or not entries:
        raise LogPatternError(f"{path}: no 'patterns' list")
    out: list[Pattern] = []
    seen: dict[str, int] = {}
    for i, e in enumerate(entries, 1):
        where = f"{path}: pattern #{i}"
        if not isinstance(e, dict):
            raise LogPatternError(f"{where}: expected an inline table")
        where = f"{path}: pattern #{i} {e.get('id', '?')!r}"
        extra = set(e) - _KEYS
        if extra:
            raise LogPatternError(f"{where}: unknown key {sorted(extra)[0]!r}")
        for key in ("id", "class", "match", "why", "example"):
            if not isinstance(e.get(key), str) or not e[key].strip():
                raise LogPatternError(f"{where}: '{key}' must be a non-empty string")
        if not _ID.match(e["id"]):
            raise LogPatternError(f"{where}: id must be kebab-case")
        if e["id"] in seen:
            raise LogPatternError(f"{where}: id already used by pattern #{seen[e['id']]}")
        seen[e["id"]] = i
        for key in ("class", "gpu_node"):
            if key in e and e[key] not in CLASSES:
                raise LogPatternError(f"{where}: {key} {e[key]!r} is not one of {', '.join(CLASSES)}")
        try:
            regex = re.compile(e["match"])
        except re.error as exc:
            raise LogPatternError(f"{where}: match is not a regular expression: {exc}") from None
        out.append(Pattern(e["id"], e["class"], regex, e["why"].strip(), e["example"], e.get("gpu_node")))
    return tuple(out)


@functools.cache
def patterns() -> tuple[Pattern, ...]:
    return load_patterns()


def pattern(pattern_id: str) -> Optional[Pattern]:
    return next((p for p in patterns() if p.id == pattern_id), None)


def classify(line: str, table: Optional[tuple[Pattern, ...]] = None) -> Optional[Pattern]:
    """The first pattern that matches `line`, or None."""
    line = line[:MAX_LINE]
    for p in table if table is not None else patterns():
        if p.regex.search(line):
            return p
    return None


def strip_prefix(line: str) -> str:
    """The message of a TensorFlow log line, without its time stamp, level and source location."""
    return _GLOG.sub("", line).strip()


def glog_level(line: str) -> Optional[str]:
    """I, W, E or F for a TensorFlow log line, None for anything else."""
    m = _GLOG.match(line)
    return (m.group(1) or m.group(2)) if m else None


def gpu_node(env: Environment) -> bool:
    """A node with NVIDIA GPUs, for the table's `gpu_node` column: NVML lists GPUs, or the NVIDIA kernel
    module is loaded (GPUs that NVML cannot reach are still GPUs the job meant to use)."""
    d = env.host.driver
    return bool(env.host.gpus) or bool(d is not None and d.kernel_module_version)


def line_class(line: LogLine, on_gpu_node: bool) -> str:
    """A recorded line's class on this node: some lines are harmless on a CPU node and fatal on a GPU
    node. A pattern the shipped table no longer knows keeps the class recorded with it."""
    p = pattern(line.pattern)
    return p.class_on(on_gpu_node) if p is not None else line.classification


def line_why(line: LogLine) -> str:
    """The explanation of the table this tfcompat ships (a snapshot may have been taken with an older one)."""
    p = pattern(line.pattern)
    return p.why if p is not None else line.explanation


class LineClassifier:
    """Accumulates classified lines: one LogLine per pattern (first text, count), plus TF error
    lines (E/F) that no pattern knows, as 'unclassified', so a new message shows up to be added."""

    def __init__(self, table: Optional[tuple[Pattern, ...]] = None):
        self.table = table if table is not None else patterns()
        self._found: dict[str, list[Any]] = {}  # key -> [pattern id, class, text, count, why]

    def feed(self, line: str) -> None:
        line = line.rstrip("\r\n")[:MAX_LINE]
        if not line.strip():
            return
        p = classify(line, self.table)
        if p is not None:
            entry = self._found.setdefault(p.id, [p.id, p.cls, line.strip()[:MAX_TEXT], 0, p.why])
            entry[3] += 1
            return
        if glog_level(line) in ("E", "F"):
            text = line.strip()[:MAX_TEXT]
            key = "unclassified:" + strip_prefix(text)
            if key not in self._found and sum(k.startswith("unclassified:") for k in self._found) >= MAX_UNCLASSIFIED:
                return
            entry = self._found.setdefault(
                key,
                [
                    "unclassified",
                    UNCLASSIFIED,
                    text,
                    0,
                    "a TensorFlow error line no pattern knows (add it to data/tf_log_patterns.toml)",
                ],
            )
            entry[3] += 1

    def lines(self) -> tuple[LogLine, ...]:
        found = sorted(self._found.values(), key=lambda e: CLASS_ORDER[e[1]])  # stable: first seen first
        return tuple(LogLine(pattern=e[0], classification=e[1], text=e[2], count=e[3], explanation=e[4]) for e in found)
