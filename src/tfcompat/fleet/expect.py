"""Completeness: which nodes must report (``--expect``, folded node sets via ``fleet.nodeset``), how old a report
may be (``--max-age``), and which report counts when a node reported more than once.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
from collections.abc import Mapping, Sequence
from typing import Optional

from tfcompat.fleet.judge import Judged
from tfcompat.fleet.nodeset import MAX_NODES, NodeSetError, expand
from tfcompat.fleet.read import GateError
from tfcompat.fleet.report import Duplicate


@dataclasses.dataclass(frozen=True)
class Expectation:
    """The nodes that must report (--expect), in order, with the labels given for them."""

    nodes: tuple[str, ...]
    labels: Mapping[str, Mapping[str, str]]  # node -> label -> value


def parse_expect(values: Sequence[str]) -> Optional[Expectation]:
    """Each value is a file (one node set per line, optionally followed by ``key=value`` labels; ``#`` comments)
    or a folded node set such as ``gpu-[001-128]``. At most ``MAX_NODES`` names in all, over every value and line
    (each set is expanded within what is left, so eight ranges of a million names each stop at the second)."""
    if not values:
        return None
    nodes: dict[str, None] = {}
    labels: dict[str, dict[str, str]] = {}
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
                    names = expand(words[0], MAX_NODES - len(nodes))
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
                for name in expand(value, MAX_NODES - len(nodes)):
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


_EPOCH = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)

CLOCK_SKEW_SECONDS = 300.0  # how far ahead of the gate's clock a node's clock may be before its report is suspect


def from_the_future(created: Optional[datetime.datetime], now: datetime.datetime) -> bool:
    """True when a report is dated later than `now` plus the clock-skew allowance: no age can be trusted for it."""
    return created is not None and (created - now).total_seconds() > CLOCK_SKEW_SECONDS


def pick_newest(
    by_node: Mapping[str, Sequence[Judged]], now: Optional[datetime.datetime] = None
) -> tuple[dict[str, Judged], list[Duplicate]]:
    """One report per node: the newest (by ``environment.created``; undated counts as oldest, and among equals
    the first read); the others are listed as duplicates. With `now`, a report dated beyond the clock-skew
    allowance ahead of it counts as undated: a forged date in 2099 does not outrank the node's real report."""
    chosen: dict[str, Judged] = {}
    duplicates: list[Duplicate] = []

    def when(j: Judged) -> datetime.datetime:
        if j.created is None or (now is not None and from_the_future(j.created, now)):
            return _EPOCH
        return j.created

    for node, js in by_node.items():
        if len(js) > 1:
            ordered = sorted(enumerate(js), key=lambda ij: (when(ij[1]), -ij[0]), reverse=True)
            keep = ordered[0][1]
            duplicates.append(Duplicate(node, keep.source, tuple(j.source for _, j in ordered[1:])))
            chosen[node] = keep
        else:
            chosen[node] = js[0]
    return chosen, duplicates


def age_status(
    j: Judged, now: datetime.datetime, max_age_seconds: Optional[float]
) -> tuple[str, Optional[float], tuple[str, ...]]:
    """(status, age in seconds, notes) of one node's report: its verdict, or "stale" when --max-age says so.

    A report whose check could not decide (an error report: no environment, no date) stays undecided with its
    own reason, whatever --max-age says; an old one says how old in a note. A report dated ahead of `now` by more
    than the clock-skew allowance counts as too old: otherwise a date in the future would pass --max-age forever.
    """
    age = (now - j.created).total_seconds() if j.created else None
    status = j.verdict
    future = from_the_future(j.created, now)
    too_old = max_age_seconds is not None and age is not None and (age > max_age_seconds or future)
    notes: tuple[str, ...] = ()
    if future and age is not None:
        notes = (
            f"the report is dated {format_age(-age)} in the future, beyond the clock-skew allowance of "
            f"{format_age(CLOCK_SKEW_SECONDS)}: its age is unknown",
        )
    elif too_old:
        notes = (f"the report is {format_age(age)} old, older than --max-age {format_age(max_age_seconds)}",)
    if j.verdict != "error" and max_age_seconds is not None:
        if j.created is None:
            status = "stale"
            notes = ("the report has no creation time (environment.created): its age is unknown",)
        elif too_old:
            status = "stale"
    return status, age, notes
