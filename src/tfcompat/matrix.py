"""Load and validate the compatibility matrix (data/compat_matrix.toml) into frozen dataclasses.

Facts live in the TOML file; this module only checks their shape and answers lookups. Every
error names the file, the entry and the field, and is a :class:`MatrixError` (a ValueError).
"""

from __future__ import annotations

import dataclasses
import datetime
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib

SCHEMA = 1


class MatrixError(ValueError):
    """The matrix file is unreadable or states something malformed."""


@dataclasses.dataclass(frozen=True)
class TFRelease:
    versions: SpecifierSet
    python: SpecifierSet
    cuda: Optional[Version]
    cudnn: Optional[Version]
    compute_capabilities: Tuple[str, ...]
    numpy_abi: Optional[int]
    numpy: Optional[SpecifierSet]
    protobuf: Optional[SpecifierSet]
    keras: Optional[SpecifierSet]
    ml_dtypes: Optional[SpecifierSet]
    glibc: Optional[Version]
    source: Tuple[str, ...]
    checked: datetime.date
    label: str  # how errors and evidence name this entry

    def matches(self, version: str) -> bool:
        return self.versions.contains(Version(version), prereleases=True)


@dataclasses.dataclass(frozen=True)
class CudaToolkit:
    version: Version
    min_driver: Version  # compare with this
    min_driver_text: str  # show this: PEP 440 normalises "525.60.13" to "525.60.13" but "520.61.05" to "520.61.5"
    source: str
    checked: datetime.date


@dataclasses.dataclass(frozen=True)
class CudaMajor:
    major: int
    min_driver: Version
    min_driver_text: str
    source: str
    checked: datetime.date


@dataclasses.dataclass(frozen=True)
class Matrix:
    path: str
    updated: datetime.date
    tensorflow: Tuple[TFRelease, ...]
    cuda: Tuple[CudaToolkit, ...]
    cuda_majors: Tuple[CudaMajor, ...]

    def tf_release(self, version: str) -> Optional[TFRelease]:
        try:
            Version(version)
        except InvalidVersion:
            return None
        for rel in self.tensorflow:
            if rel.matches(version):
                return rel
        return None

    def newest_known_tf(self) -> Optional[Version]:
        """The newest release line the matrix describes (upper bound of the last entry)."""
        best: Optional[Version] = None
        for rel in self.tensorflow:
            for spec in rel.versions:
                if spec.operator in (">=", "=="):
                    v = Version(spec.version)
                    best = v if best is None or v > best else best
        return best

    def cuda_toolkit(self, version: str) -> Optional[CudaToolkit]:
        """The toolkit release `version` names: exact, else the newest update of that major.minor
        that is not newer than it ("12.5" -> 12.5 GA; "12.5.1" -> 12.5 Update 1)."""
        want = Version(version)
        same_minor = [t for t in self.cuda if t.version.release[:2] == want.release[:2] and t.version <= _pad(want)]
        return max(same_minor, key=lambda t: t.version) if same_minor else None

    def cuda_major(self, major: int) -> Optional[CudaMajor]:
        for m in self.cuda_majors:
            if m.major == major:
                return m
        return None


def _pad(v: Version) -> Version:
    parts = list(v.release) + [0] * (3 - len(v.release))
    return Version(".".join(str(p) for p in parts))


def default_matrix_path() -> Path:
    """The matrix shipped in the wheel; in a source checkout, the repository's data/ file."""
    here = Path(__file__).resolve().parent
    packaged = here / "data" / "compat_matrix.toml"
    if packaged.is_file():
        return packaged
    return here.parent.parent / "data" / "compat_matrix.toml"


_TF_KEYS = {
    "versions": True,
    "python": True,
    "cuda": False,
    "cudnn": False,
    "compute_capabilities": False,
    "numpy_abi": False,
    "numpy": False,
    "protobuf": False,
    "keras": False,
    "ml_dtypes": False,
    "glibc": False,
    "source": True,
    "checked": True,
    "note": False,
}
_CUDA_KEYS = {"version": True, "min_driver": True, "source": True, "checked": True, "note": False}
_MAJOR_KEYS = {"major": True, "min_driver": True, "source": True, "checked": True, "note": False}


class _Ctx:
    """Where we are in the file, for error messages."""

    def __init__(self, path: str, table: str, index: int, entry: Dict[str, Any], label_key: str):
        self.path, self.table, self.index, self.entry = path, table, index, entry
        label = entry.get(label_key)
        self.label = f"[[{table}]] #{index}" + (f" {label!r}" if label is not None else "")

    def fail(self, field: str, what: str) -> MatrixError:
        return MatrixError(f"{self.path}: {self.label}: {field} {what}")

    def check_keys(self, spec: Dict[str, bool]) -> None:
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
        return value

    def version(self, field: str) -> Optional[Version]:
        value = self.string(field)
        if value is None:
            return None
        try:
            return Version(value)
        except InvalidVersion:
            raise self.fail(field, f"{value!r} is not a version") from None

    def specifier(self, field: str) -> Optional[SpecifierSet]:
        value = self.string(field)
        if value is None:
            return None
        try:
            spec = SpecifierSet(value)
        except InvalidSpecifier:
            raise self.fail(field, f"{value!r} is not a PEP 440 specifier") from None
        if not str(spec):
            raise self.fail(field, "is empty")
        return spec

    def sources(self, field: str = "source") -> Tuple[str, ...]:
        value = self.entry.get(field)
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(s, str) and s.strip() for s in items):
            raise self.fail(field, "must be a non-empty string or list of strings (URL or repository path)")
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


_CC_PREFIXES = ("sm_", "compute_")


def _tf_release(ctx: _Ctx) -> TFRelease:
    ctx.check_keys(_TF_KEYS)
    ccs = ctx.entry.get("compute_capabilities", [])
    if not isinstance(ccs, list) or not all(
        isinstance(c, str) and c.startswith(_CC_PREFIXES) and c.split("_", 1)[1].isdigit() for c in ccs
    ):
        raise ctx.fail("compute_capabilities", f"{ccs!r} must be a list like ['sm_80', 'compute_90']")
    numpy_abi = ctx.entry.get("numpy_abi")
    if numpy_abi is not None and numpy_abi not in (1, 2):
        raise ctx.fail("numpy_abi", f"{numpy_abi!r} must be 1 or 2")
    versions = ctx.specifier("versions")
    python = ctx.specifier("python")
    assert versions is not None and python is not None  # required keys
    return TFRelease(
        versions=versions,
        python=python,
        cuda=ctx.version("cuda"),
        cudnn=ctx.version("cudnn"),
        compute_capabilities=tuple(ccs),
        numpy_abi=numpy_abi,
        numpy=ctx.specifier("numpy"),
        protobuf=ctx.specifier("protobuf"),
        keras=ctx.specifier("keras"),
        ml_dtypes=ctx.specifier("ml_dtypes"),
        glibc=ctx.version("glibc"),
        source=ctx.sources(),
        checked=ctx.date(),
        label=ctx.label,
    )


def _cuda(ctx: _Ctx) -> CudaToolkit:
    ctx.check_keys(_CUDA_KEYS)
    version, driver = ctx.version("version"), ctx.version("min_driver")
    assert version is not None and driver is not None
    return CudaToolkit(version, driver, ctx.entry["min_driver"], ctx.sources()[0], ctx.date())


def _cuda_major(ctx: _Ctx) -> CudaMajor:
    ctx.check_keys(_MAJOR_KEYS)
    major = ctx.entry["major"]
    if not isinstance(major, int) or isinstance(major, bool) or major <= 0:
        raise ctx.fail("major", f"{major!r} is not a positive integer")
    driver = ctx.version("min_driver")
    assert driver is not None
    return CudaMajor(major, driver, ctx.entry["min_driver"], ctx.sources()[0], ctx.date())


def _entries(path: str, doc: Dict[str, Any], table: str) -> Iterable[Tuple[int, Dict[str, Any]]]:
    items = doc.get(table, [])
    if not isinstance(items, list):
        raise MatrixError(f"{path}: {table} must be an array of tables ([[{table}]])")
    for i, entry in enumerate(items, start=1):
        if not isinstance(entry, dict):
            raise MatrixError(f"{path}: [[{table}]] #{i}: must be a table")
        yield i, entry


def parse_matrix(text: str, path: str = "<matrix>") -> Matrix:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(doc) - {"meta", "tensorflow", "cuda", "cuda_major"}
    if unknown:
        raise MatrixError(f"{path}: unknown table {sorted(unknown)[0]!r}")
    meta = doc.get("meta")
    if not isinstance(meta, dict):
        raise MatrixError(f"{path}: missing [meta] table")
    if meta.get("schema") != SCHEMA:
        raise MatrixError(f"{path}: [meta] schema {meta.get('schema')!r} is not supported (expected {SCHEMA})")
    meta_ctx = _Ctx(path, "meta", 0, meta, "")
    meta_ctx.label = "[meta]"
    meta_ctx.check_keys({"schema": True, "updated": True})
    tf = tuple(_tf_release(_Ctx(path, "tensorflow", i, e, "versions")) for i, e in _entries(path, doc, "tensorflow"))
    cuda = tuple(_cuda(_Ctx(path, "cuda", i, e, "version")) for i, e in _entries(path, doc, "cuda"))
    majors = tuple(_cuda_major(_Ctx(path, "cuda_major", i, e, "major")) for i, e in _entries(path, doc, "cuda_major"))
    return Matrix(path=path, updated=meta_ctx.date("updated"), tensorflow=tf, cuda=cuda, cuda_majors=majors)


def load_matrix(path: Optional[Path] = None) -> Matrix:
    path = Path(path) if path is not None else default_matrix_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read matrix: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise MatrixError(f"{path}: not UTF-8 text") from None
    return parse_matrix(text, str(path))
