"""Site facts: known-bad driver ranges, waivers of rules, thresholds ([meta] kind = "overlay").

A site overlay (``--matrix-overlay FILE``) adds them to the matrix without forking it; the shipped
matrix may state known-bad drivers too. Validated like the matrix: one line naming file, entry, field.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Optional

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from tfcompat.matrix.fields import (
    RULE_RE,
    Ctx,
    MatrixError,
    default_matrix_path,
    is_version,
    load_toml,
    read_meta,
    read_text,
    single,
    table_list,
)


@dataclasses.dataclass(frozen=True)
class KnownBadDriver:
    """A site fact: drivers in `versions` misbehave here, with the reason and where that is recorded."""

    versions: SpecifierSet
    reason: str
    severity: str  # "error" or "warning"
    source: tuple[str, ...]
    checked: datetime.date
    label: str
    origin: str  # the file that states it

    def matches(self, driver: str) -> bool:
        try:
            return self.versions.contains(Version(driver), prereleases=True)
        except InvalidVersion:
            return False


@dataclasses.dataclass(frozen=True)
class Waiver:
    """A site fact: rule `rule` (an id prefix or a rule name) is waived here, and why."""

    rule: str
    reason: str
    checked: datetime.date
    label: str
    origin: str
    source: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Overlay:
    """A site overlay file: its known-bad drivers, waivers and thresholds."""

    path: str
    updated: datetime.date
    known_bad_drivers: tuple[KnownBadDriver, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    thresholds: Mapping[str, int] = dataclasses.field(default_factory=dict)


OVERLAY_TABLES = ("meta", "known_bad_driver", "waiver", "thresholds")
_BAD_DRIVER_KEYS = {"versions": True, "reason": True, "severity": False, "source": True, "checked": True}


def known_bad_driver(ctx: Ctx) -> KnownBadDriver:
    ctx.check_keys(_BAD_DRIVER_KEYS)
    versions = ctx.specifier("versions")
    assert versions is not None
    for s in versions:
        if not is_version(s.version.rstrip(".*")):
            raise ctx.fail("versions", f"{s.version!r} is not a driver version")
    severity = ctx.string("severity") or "error"
    if severity not in ("error", "warning", "info"):
        raise ctx.fail("severity", f"{severity!r} must be 'error', 'warning' or 'info'")
    return KnownBadDriver(
        versions, ctx.string("reason") or "", severity, ctx.sources(), ctx.date(), ctx.label, ctx.path
    )


_WAIVER_KEYS = {"rule": True, "reason": True, "source": False, "checked": True}


def _waiver(ctx: Ctx) -> Waiver:
    ctx.check_keys(_WAIVER_KEYS)
    rule = ctx.string("rule") or ""
    if not RULE_RE.match(rule):
        raise ctx.fail("rule", f"{rule!r} is not a rule id prefix (TFC201, TFC2) or rule name")
    source = ctx.sources() if "source" in ctx.entry else ()
    return Waiver(rule, ctx.string("reason") or "", ctx.date(), ctx.label, ctx.path, source)


@functools.lru_cache(maxsize=1)
def shipped_threshold_keys() -> tuple[str, ...]:
    """The threshold keys of the shipped matrix's [[threshold]] table (what the resource rules read)."""
    path = default_matrix_path()
    doc = load_toml(read_text(path, "matrix"), str(path))
    return tuple(t["key"] for t in doc.get("threshold", []) if isinstance(t, dict) and "key" in t)


def parse_overlay(text: str, path: str = "<overlay>", known_thresholds: Optional[Iterable[str]] = None) -> Overlay:
    """A site overlay: `[meta] kind = "overlay"`, then [[known_bad_driver]], [[waiver]], [thresholds].

    [thresholds] keys must be among `known_thresholds` (default: the shipped matrix's [[threshold]] keys)."""
    doc = load_toml(text, path)
    updated, kind = read_meta(path, doc)
    if kind != "overlay":
        raise MatrixError(f"{path}: [meta] kind must be 'overlay' in a site overlay")
    unknown = [t for t in doc if t not in OVERLAY_TABLES]
    if unknown:
        raise MatrixError(
            f"{path}: unknown table {sorted(unknown)[0]!r} (an overlay holds [[known_bad_driver]], "
            "[[waiver]] and [thresholds])"
        )
    thresholds: dict[str, int] = {}
    ctx = single(path, doc, "thresholds")
    if ctx is not None:
        known = tuple(known_thresholds or ()) or shipped_threshold_keys()
        for key, value in ctx.entry.items():
            if key not in known:
                raise MatrixError(f"{path}: [thresholds]: unknown key {key!r} (known: {', '.join(sorted(known))})")
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ctx.fail(key, f"{value!r} is not a non-negative integer")
            thresholds[key] = value
    return Overlay(
        path=path,
        updated=updated,
        known_bad_drivers=table_list(path, doc, "known_bad_driver", "versions", known_bad_driver),
        waivers=table_list(path, doc, "waiver", "rule", _waiver),
        thresholds=thresholds,
    )


def load_overlay(path: Path, known_thresholds: Optional[Iterable[str]] = None) -> Overlay:
    path = Path(path)
    return parse_overlay(read_text(path, "overlay"), str(path), known_thresholds)
