"""Field readers for the matrix and overlay files: every error names the file, the entry and the field.

`Ctx` knows where it is in the file ("data/compat_matrix.toml: [[tensorflow]] #3 '==2.15.0': cudnn
'8.x' is not a version"); the table parsers in `load`, `facts_load` and `overlay` read fields only
through it, so unknown keys, missing keys and malformed values fail the same way everywhere.
"""

from __future__ import annotations

import datetime
import functools
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import (
    Any,
    Callable,
    Optional,
)

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from tfcompat.datafiles import data_file
from tfcompat.errors import TfcompatError

SCHEMA = 1


# The matrix writes the same versions and ranges many times (763 ranges, 380 distinct; 1,482 versions, 346
# distinct): each parsed once per process, the same immutable object shared (a failure is not remembered).
@functools.lru_cache(maxsize=4096)
def _version(text: str) -> Version:
    return Version(text)


@functools.lru_cache(maxsize=4096)
def _specifier(text: str) -> SpecifierSet:
    return SpecifierSet(text)


class MatrixError(TfcompatError):
    """The matrix file is unreadable or states something malformed."""


class Ctx:
    """Where we are in the file, for error messages."""

    def __init__(self, path: str, table: str, index: int, entry: dict[str, Any], label_key: Optional[str]):
        self.path, self.table, self.index, self.entry = path, table, index, entry
        if index == 0:  # a single table: [meta], [forward_compatibility]
            self.label = f"[{table}]"
        else:
            label = entry.get(label_key) if label_key else None
            if isinstance(label, list):
                label = ", ".join(str(x) for x in label)
            self.label = f"[[{table}]] #{index}" + (f" {label!r}" if label is not None else "")

    def children(self, field: str) -> list[Ctx]:
        """The inline tables of list `field` (`libraries = [{...}, ...]`), each named in errors by its index."""
        value = self.entry.get(field)
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            raise self.fail(field, "must be a non-empty list of inline tables")
        out = []
        for i, sub in enumerate(value, start=1):
            child = Ctx(self.path, self.table, self.index, sub, None)
            child.label = f"{self.label}: {field} #{i}"
            out.append(child)
        return out

    def fail(self, field: str, what: str) -> MatrixError:
        return MatrixError(f"{self.path}: {self.label}: {field} {what}")

    def check_keys(self, spec: Mapping[str, bool]) -> None:
        for key in self.entry:
            if key not in spec:
                raise MatrixError(f"{self.path}: {self.label}: unknown key {key!r}")
        for key, required in spec.items():
            if required and key not in self.entry:
                raise MatrixError(f"{self.path}: {self.label}: missing required key {key!r}")

    def string(self, field: str) -> Optional[str]:
        value = self.entry.get(field)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(field, f"{value!r} is not a string")
        if not value.strip():
            raise self.fail(field, "is empty")
        return value

    def version(self, field: str) -> Optional[Version]:
        value = self.string(field)
        if value is None:
            return None
        try:
            return _version(value)
        except InvalidVersion:
            raise self.fail(field, f"{value!r} is not a version") from None

    def specifier(self, field: str, value: Any = None) -> Optional[SpecifierSet]:
        value = self.string(field) if value is None else value
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(field, f"{value!r} is not a string")
        try:
            spec = _specifier(value)
        except InvalidSpecifier:
            raise self.fail(field, f"{value!r} is not a PEP 440 specifier") from None
        if not len(spec):  # len(), not str(): str() canonicalises and sorts, ~10 % of a load
            raise self.fail(field, "is empty")
        return spec

    def boolean(self, field: str, default: Optional[bool] = None) -> Optional[bool]:
        value = self.entry.get(field, default)
        if value is not None and not isinstance(value, bool):
            raise self.fail(field, f"{value!r} is not true or false")
        return value

    def integer(
        self, field: str, allowed: Optional[Sequence[int]] = None, minimum: Optional[int] = None
    ) -> Optional[int]:
        value = self.entry.get(field)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(field, f"{value!r} is not an integer")
        if allowed is not None and value not in allowed:
            raise self.fail(field, f"{value!r} must be one of {', '.join(map(str, allowed))}")
        if minimum is not None and value < minimum:
            raise self.fail(field, f"{value!r} must be >= {minimum}")
        return value

    def strings(self, field: str, check: Optional[Callable[[str], bool]] = None, what: str = "") -> tuple[str, ...]:
        value = self.entry.get(field)
        if value is None:
            return ()
        if not isinstance(value, list) or not value or not all(isinstance(s, str) and s.strip() for s in value):
            raise self.fail(field, f"{value!r} must be a non-empty list of strings")
        for s in value:
            if check is not None and not check(s):
                raise self.fail(field, f"{s!r} is not {what}")
        return tuple(value)

    def sources(self, field: str = "source") -> tuple[str, ...]:
        value = self.entry.get(field)
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(s, str) and s.strip() for s in items):
            raise self.fail(field, "must be a non-empty string or list of strings (URL or repository path)")
        for s in items:
            if not (s.startswith(("https://", "http://")) or "/" in s):
                raise self.fail(field, f"{s!r} is neither a URL nor a repository path (owner/repo:path)")
        return tuple(items)

    def date(self, field: str = "checked") -> datetime.date:
        value = self.entry.get(field)
        if isinstance(value, datetime.datetime):
            value = value.date()
        if isinstance(value, str):
            try:
                value = datetime.date.fromisoformat(value)
            except ValueError:
                raise self.fail(field, f"{value!r} is not a date (YYYY-MM-DD)") from None
        if not isinstance(value, datetime.date):
            raise self.fail(field, f"{value!r} is not a date (YYYY-MM-DD)")
        return value

    def driver(self, field: str) -> tuple[Optional[Version], Optional[str]]:
        """A driver version: (comparable Version, the text as written)."""
        v = self.version(field)
        return v, (self.entry[field] if v is not None else None)


GFX_RE = re.compile(r"^gfx[0-9a-f]{3,4}$")
RULE_RE = re.compile(r"^(TFC\d{0,3}|[a-z][a-z0-9-]*)$")
PKG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_version(s: str) -> bool:
    try:
        Version(s)
        return True
    except InvalidVersion:
        return False


def common_tail(ctx: Ctx) -> tuple[tuple[str, ...], datetime.date, Optional[str], bool]:
    return ctx.sources(), ctx.date(), ctx.string("note"), bool(ctx.boolean("confirmed", True))


def entries_of(path: str, doc: dict[str, Any], table: str) -> Iterable[tuple[int, dict[str, Any]]]:
    items = doc.get(table, [])
    if not isinstance(items, list):
        raise MatrixError(f"{path}: {table} must be an array of tables ([[{table}]])")
    for i, entry in enumerate(items, start=1):
        if not isinstance(entry, dict):
            raise MatrixError(f"{path}: [[{table}]] #{i}: must be a table")
        yield i, entry


def single(path: str, doc: dict[str, Any], table: str) -> Optional[Ctx]:
    value = doc.get(table)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MatrixError(f"{path}: [{table}] must be a table")
    return Ctx(path, table, 0, value, None)


def load_toml(text: str, path: str) -> dict[str, Any]:
    # imported here: a run whose matrix comes from the cache (matrix/cache.py) never parses TOML
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python < 3.11 only
        import tomli as tomllib
    try:
        doc: dict[str, Any] = tomllib.loads(text)  # tomli (Python < 3.11) is untyped where it is not installed
        return doc
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path}: not valid TOML: {exc}") from None


def read_meta(path: str, doc: dict[str, Any]) -> tuple[datetime.date, str]:
    meta = doc.get("meta")
    if not isinstance(meta, dict):
        raise MatrixError(f"{path}: missing [meta] table")
    if meta.get("schema") != SCHEMA:
        raise MatrixError(f"{path}: [meta] schema {meta.get('schema')!r} is not supported (expected {SCHEMA})")
    ctx = Ctx(path, "meta", 0, meta, None)
    ctx.check_keys({"schema": True, "updated": True, "kind": False})
    kind = ctx.string("kind") or "matrix"
    if kind not in ("matrix", "overlay"):
        raise ctx.fail("kind", f"{kind!r} must be 'matrix' or 'overlay'")
    return ctx.date("updated"), kind


def table_list(path: str, doc: dict[str, Any], table: str, label_key: Optional[str], parse: Callable[[Ctx], Any]):
    return tuple(parse(Ctx(path, table, i, e, label_key)) for i, e in entries_of(path, doc, table))


def unique(path: str, table: str, keyed: Sequence[tuple[str, Any]]) -> None:
    seen: dict[str, Any] = {}
    for key, entry in keyed:
        if key in seen:
            label = getattr(entry, "label", "") or f"[[{table}]]"
            raise MatrixError(f"{path}: [[{table}]] {key!r} is stated twice ({label})")
        seen[key] = entry


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise MatrixError(f"{path}: not UTF-8 text") from None


def default_matrix_path() -> Path:
    """The matrix shipped in the wheel; in a source checkout, the repository's data/ file."""
    return data_file("compat_matrix.toml")
