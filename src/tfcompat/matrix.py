"""Load and validate the compatibility matrix (data/compat_matrix.toml) into frozen dataclasses.

Facts live in the TOML file; this module only checks their shape and answers lookups. Every
error names the file, the entry and the field, and is a :class:`MatrixError` (a ValueError).

A site overlay (``--matrix-overlay FILE``, ``[meta] kind = "overlay"``) adds site facts to the
matrix without forking it: known-bad driver ranges, waivers of rules, thresholds. It is validated
the same way.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from tfcompat.errors import TfcompatError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib

SCHEMA = 1


class MatrixError(TfcompatError):
    """The matrix file is unreadable or states something malformed."""


# ---------------------------------------------------------------------------------------------- entries


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
    releases: Tuple[str, ...] = ()
    tensorrt: Optional[bool] = None
    tensorrt_lib: Optional[str] = None
    h5py: Optional[SpecifierSet] = None
    glibcxx: Optional[Version] = None
    cxxabi: Optional[Version] = None
    manylinux: Optional[str] = None
    cxx11_abi: Optional[int] = None
    compiler: Optional[str] = None
    and_cuda: Tuple[Tuple[str, SpecifierSet], ...] = ()
    note: Optional[str] = None
    confirmed: bool = True

    def matches(self, version: str) -> bool:
        return self.versions.contains(Version(version), prereleases=True)

    @property
    def sass(self) -> Tuple[str, ...]:
        """Compute capabilities with SASS ("8.0"): every entry, sm_XY and compute_XY alike."""
        return tuple(cc_text(c) for c in self.compute_capabilities)

    @property
    def ptx(self) -> Tuple[str, ...]:
        """Compute capabilities with PTX: the compute_XY entries."""
        return tuple(cc_text(c) for c in self.compute_capabilities if c.startswith("compute_"))


@dataclasses.dataclass(frozen=True)
class CudaToolkit:
    version: Version
    min_driver: Version  # compare with this
    min_driver_text: str  # show this: PEP 440 normalises "525.60.13" to "525.60.13" but "520.61.05" to "520.61.5"
    source: str
    checked: datetime.date
    update: str = "GA"  # "GA", "Update N", "RC"
    label: str = ""  # the release-notes row as written ("CUDA 12.5 Update 1")
    min_driver_windows: Optional[Version] = None
    min_driver_windows_text: Optional[str] = None
    note: Optional[str] = None

    @property
    def name(self) -> str:
        return self.label or f"CUDA {self.version} {self.update}"


@dataclasses.dataclass(frozen=True)
class CudaMajor:
    major: int
    min_driver: Optional[Version]  # None: no minor-version compatibility (CUDA 10)
    min_driver_text: Optional[str]
    source: str
    checked: datetime.date
    minor_version_compatibility: bool = True
    min_driver_windows_text: Optional[str] = None
    note: Optional[str] = None
    sources: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ForwardCompatibility:
    since_cuda: Version
    package: str
    gpus: Tuple[str, ...]
    consumer_gpus: bool
    statement: str
    source: Tuple[str, ...]
    checked: datetime.date
    note: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ComputeCapability:
    capabilities: Tuple[str, ...]  # "8.6"
    architecture: str
    first_cuda: Optional[Version]  # None: in every CUDA the source lists
    last_cuda: Optional[Version]  # None: still supported
    source: Tuple[str, ...]
    checked: datetime.date
    label: str
    examples: Optional[str] = None
    note: Optional[str] = None

    def cuda_can_build(self, cuda: Version) -> bool:
        mm = Version(f"{cuda.major}.{cuda.minor}")
        return (self.first_cuda is None or mm >= self.first_cuda) and (self.last_cuda is None or mm <= self.last_cuda)


@dataclasses.dataclass(frozen=True)
class CudnnRelease:
    versions: SpecifierSet
    cuda_major: int
    cuda: SpecifierSet
    source: Tuple[str, ...]
    checked: datetime.date
    label: str
    min_driver: Optional[Version] = None
    min_driver_text: Optional[str] = None
    min_driver_windows_text: Optional[str] = None
    driver_branch: Optional[str] = None
    compute_capabilities: Tuple[str, ...] = ()
    min_compute_capability: Optional[str] = None
    max_compute_capability: Optional[str] = None
    note: Optional[str] = None

    def supports_cc(self, cc: str) -> bool:
        """Whether the support matrix covers compute capability `cc` (a listed X.Y covers X.Z, Z >= Y)."""
        want = cc_tuple(cc)
        if self.compute_capabilities:
            return any(c[0] == want[0] and c[1] <= want[1] for c in map(cc_tuple, self.compute_capabilities))
        low = cc_tuple(self.min_compute_capability) if self.min_compute_capability else (0, 0)
        high = cc_tuple(self.max_compute_capability) if self.max_compute_capability else None
        if want < low:
            return False
        return high is None or want[0] <= high[0]  # "5.0 ... 9.0" covers every 9.x


@dataclasses.dataclass(frozen=True)
class CudnnRuntime:
    same_major: bool
    minor_at_least_compiled: bool
    patch_ignored: bool
    error: str
    source: Tuple[str, ...]
    checked: datetime.date
    note: Optional[str] = None

    def compatible(self, loaded: Version, compiled: Version) -> bool:
        """The rule TF enforces when it loads cuDNN: same major, minor >= the compiled-with minor."""
        lmaj, lmin = (loaded.release + (0, 0))[:2]
        cmaj, cmin = (compiled.release + (0, 0))[:2]
        if self.same_major and lmaj != cmaj:
            return False
        return not (self.minor_at_least_compiled and lmaj == cmaj and lmin < cmin)


@dataclasses.dataclass(frozen=True)
class TFRocmRelease:
    releases: Tuple[str, ...]
    rocm: Version
    source: Tuple[str, ...]
    checked: datetime.date
    label: str
    gfx: Tuple[str, ...] = ()
    note: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class RocmRelease:
    rocm: SpecifierSet
    tensorflow: Tuple[str, ...]
    source: Tuple[str, ...]
    checked: datetime.date
    label: str
    gfx: Tuple[str, ...] = ()
    confirmed: bool = True
    note: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Companion:
    package: str
    versions: SpecifierSet
    tensorflow: Optional[SpecifierSet]
    native: bool
    source: Tuple[str, ...]
    checked: datetime.date
    label: str
    abi_tensorflow: Optional[SpecifierSet] = None
    python: Optional[SpecifierSet] = None
    requires: Tuple[str, ...] = ()
    requires_same_version: Tuple[str, ...] = ()
    confirmed: bool = True
    note: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class KnownBadDriver:
    """A site fact: drivers in `versions` misbehave here, with the reason and where that is recorded."""

    versions: SpecifierSet
    reason: str
    severity: str  # "error" or "warning"
    source: Tuple[str, ...]
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
    source: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Overlay:
    path: str
    updated: datetime.date
    known_bad_drivers: Tuple[KnownBadDriver, ...] = ()
    waivers: Tuple[Waiver, ...] = ()
    thresholds: Mapping[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class DriverNeed:
    """What a build with CUDA `cuda` needs from the Linux driver."""

    cuda: str
    toolkit: Optional[CudaToolkit]  # the release the version names (12.5 -> 12.5 GA)
    major: Optional[CudaMajor]  # the major's entry, with or without a floor
    full_text: Optional[str]  # the toolkit's own driver: every feature
    full: Optional[Version]
    floor_text: Optional[str]  # the lowest driver it starts on (minor-version compatibility where it exists)
    floor: Optional[Version]

    @property
    def sources(self) -> Tuple[str, ...]:
        out: List[str] = []
        if self.toolkit is not None:
            out.append(self.toolkit.source)
        if self.major is not None:
            out.extend(self.major.sources or (self.major.source,))
        return tuple(dict.fromkeys(out))


@dataclasses.dataclass(frozen=True)
class Matrix:
    path: str
    updated: datetime.date
    tensorflow: Tuple[TFRelease, ...]
    cuda: Tuple[CudaToolkit, ...]
    cuda_majors: Tuple[CudaMajor, ...]
    forward_compatibility: Optional[ForwardCompatibility] = None
    compute_capabilities: Tuple[ComputeCapability, ...] = ()
    cudnn: Tuple[CudnnRelease, ...] = ()
    cudnn_runtime: Optional[CudnnRuntime] = None
    tensorflow_rocm: Tuple[TFRocmRelease, ...] = ()
    rocm: Tuple[RocmRelease, ...] = ()
    companions: Tuple[Companion, ...] = ()
    known_bad_drivers: Tuple[KnownBadDriver, ...] = ()
    waivers: Tuple[Waiver, ...] = ()
    thresholds: Mapping[str, int] = dataclasses.field(default_factory=dict)
    overlays: Tuple[str, ...] = ()

    # -- TensorFlow
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

    def tf_releases(self) -> List[str]:
        """Every published release the matrix lists, oldest first."""
        return sorted({r for rel in self.tensorflow for r in rel.releases}, key=Version)

    def resolve_tf(self, query: str) -> Optional[str]:
        """`2.15` -> the newest known 2.15 release ("2.15.1"); `2.15.0` -> itself when known."""
        try:
            want = Version(query)
        except InvalidVersion:
            return None
        known = self.tf_releases()
        if query in known or str(want) in known:
            return query if query in known else str(want)
        if len(want.release) == 2 and not (want.pre or want.post or want.dev):
            same = [r for r in known if Version(r).release[:2] == want.release]
            return same[-1] if same else None
        return None

    # -- CUDA and the driver
    def cuda_toolkit(self, version: str) -> Optional[CudaToolkit]:
        """The toolkit release `version` names: exact, else the newest update of that major.minor that is
        not newer than it ("12.5.1" -> 12.5 Update 1; "12.5.2" -> 12.5 Update 1). A major.minor alone
        names that minor's GA release ("12.5" -> 12.5 GA, "11.0" -> 11.0.2 GA, not the 11.0.1 RC)."""
        try:
            want = Version(version)
        except InvalidVersion:
            return None
        same_minor = [t for t in self.cuda if t.version.release[:2] == want.release[:2]]
        if not same_minor:
            return None
        if len(want.release) <= 2:
            ga = [t for t in same_minor if t.update == "GA"]
            return min(ga, key=lambda t: t.version) if ga else None
        not_newer = [t for t in same_minor if t.version <= _pad(want) and t.update != "RC"]
        exact = [t for t in same_minor if t.version == _pad(want)]
        if exact:
            return exact[0]
        return max(not_newer, key=lambda t: t.version) if not_newer else None

    def cuda_major(self, major: int) -> Optional[CudaMajor]:
        """The driver floor of CUDA `major` under minor-version compatibility; None where the major has
        none (CUDA 10: every minor needs its own driver) or the matrix does not know it."""
        m = self.cuda_major_info(major)
        return m if m is not None and m.min_driver is not None else None

    def cuda_major_info(self, major: int) -> Optional[CudaMajor]:
        for m in self.cuda_majors:
            if m.major == major:
                return m
        return None

    def driver_need(self, cuda: str) -> DriverNeed:
        """The driver a build with CUDA `cuda` needs: its toolkit's own driver (every feature) and the
        lowest it starts on: the lower of that and the major's minor-version-compatibility floor (CUDA
        11.0 shipped with 450.51.05, below the 11.x floor 450.80.02; before CUDA 11 there is no floor)."""
        toolkit = self.cuda_toolkit(cuda)
        try:
            major_n = Version(cuda).major
        except InvalidVersion:
            return DriverNeed(cuda, None, None, None, None, None, None)
        major = self.cuda_major_info(major_n)
        full, full_text = (toolkit.min_driver, toolkit.min_driver_text) if toolkit else (None, None)
        floor, floor_text = full, full_text
        if major is not None and major.min_driver is not None:
            if floor is None or major.min_driver < floor:
                floor, floor_text = major.min_driver, major.min_driver_text
        return DriverNeed(cuda, toolkit, major, full_text, full, floor_text, floor)

    # -- GPUs, cuDNN, companions, site facts
    def compute_capability(self, cc: str) -> Optional[ComputeCapability]:
        want = cc_text(cc) if cc.startswith(("sm_", "compute_")) else cc
        for entry in self.compute_capabilities:
            if want in entry.capabilities:
                return entry
        return None

    def cudnn_compatible(self, loaded: str, compiled: str) -> Optional[bool]:
        """The cuDNN runtime rule TF enforces; None when the matrix states no rule or a version is bad."""
        if self.cudnn_runtime is None:
            return None
        try:
            return self.cudnn_runtime.compatible(Version(loaded), Version(compiled))
        except InvalidVersion:
            return None

    def companions_for(self, tf_version: str) -> List[Companion]:
        """Companion entries whose TensorFlow requirement admits `tf_version`."""
        v = Version(tf_version)
        return [c for c in self.companions if c.tensorflow is not None and c.tensorflow.contains(v, prereleases=True)]

    def known_bad(self, driver: str) -> List[KnownBadDriver]:
        return [k for k in self.known_bad_drivers if k.matches(driver)]

    def with_overlay(self, overlay: Overlay) -> "Matrix":
        """This matrix plus a site overlay's facts (the overlay's thresholds win)."""
        return dataclasses.replace(
            self,
            known_bad_drivers=self.known_bad_drivers + overlay.known_bad_drivers,
            waivers=self.waivers + overlay.waivers,
            thresholds={**dict(self.thresholds), **dict(overlay.thresholds)},
            overlays=self.overlays + (overlay.path,),
        )

    def waiver_reasons(self) -> Dict[str, str]:
        """Overlay waivers as `--ignore` prefixes -> reason (the engine shows them as waived)."""
        return {w.rule: f"{w.reason} (site overlay {w.origin})" for w in self.waivers}


_OPERATOR_ORDER = {"~=": 0, "==": 1, "===": 1, ">=": 2, ">": 3, "!=": 4, "<=": 5, "<": 6}


def spec_text(spec: Optional[SpecifierSet]) -> Optional[str]:
    """A specifier in reading order (`>=3.9,<3.12`); packaging's str() sorts it alphabetically."""
    if spec is None:
        return None

    def key(s):
        bare = s.version.rstrip(".*")
        try:
            v = Version(bare)
        except InvalidVersion:
            v = Version("0")
        return _OPERATOR_ORDER.get(s.operator, 9), v

    return ",".join(str(s) for s in sorted(spec, key=key))


def cc_tuple(cc: str) -> Tuple[int, int]:
    """"8.6" -> (8, 6); "sm_86" / "compute_86" -> (8, 6); "sm_120" -> (12, 0)."""
    if cc.startswith(("sm_", "compute_")):
        digits = cc.split("_", 1)[1]
        return int(digits[:-1]), int(digits[-1])
    major, _, minor = cc.partition(".")
    return int(major), int(minor or 0)


def cc_text(cc: str) -> str:
    major, minor = cc_tuple(cc)
    return f"{major}.{minor}"


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


# ---------------------------------------------------------------------------------------------- validation


class _Ctx:
    """Where we are in the file, for error messages."""

    def __init__(self, path: str, table: str, index: int, entry: Dict[str, Any], label_key: Optional[str]):
        self.path, self.table, self.index, self.entry = path, table, index, entry
        if index == 0:  # a single table: [meta], [forward_compatibility]
            self.label = f"[{table}]"
        else:
            label = entry.get(label_key) if label_key else None
            if isinstance(label, list):
                label = ", ".join(str(x) for x in label)
            self.label = f"[[{table}]] #{index}" + (f" {label!r}" if label is not None else "")

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
            return Version(value)
        except InvalidVersion:
            raise self.fail(field, f"{value!r} is not a version") from None

    def specifier(self, field: str, value: Any = None) -> Optional[SpecifierSet]:
        value = self.string(field) if value is None else value
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(field, f"{value!r} is not a string")
        try:
            spec = SpecifierSet(value)
        except InvalidSpecifier:
            raise self.fail(field, f"{value!r} is not a PEP 440 specifier") from None
        if not str(spec):
            raise self.fail(field, "is empty")
        return spec

    def boolean(self, field: str, default: Optional[bool] = None) -> Optional[bool]:
        value = self.entry.get(field, default)
        if value is not None and not isinstance(value, bool):
            raise self.fail(field, f"{value!r} is not true or false")
        return value

    def integer(self, field: str, allowed: Optional[Sequence[int]] = None, minimum: Optional[int] = None) -> Optional[int]:
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

    def strings(self, field: str, check: Optional[Callable[[str], bool]] = None, what: str = "") -> Tuple[str, ...]:
        value = self.entry.get(field)
        if value is None:
            return ()
        if not isinstance(value, list) or not value or not all(isinstance(s, str) and s.strip() for s in value):
            raise self.fail(field, f"{value!r} must be a non-empty list of strings")
        for s in value:
            if check is not None and not check(s):
                raise self.fail(field, f"{s!r} is not {what}")
        return tuple(value)

    def sources(self, field: str = "source") -> Tuple[str, ...]:
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

    def driver(self, field: str) -> Tuple[Optional[Version], Optional[str]]:
        """A driver version: (comparable Version, the text as written)."""
        v = self.version(field)
        return v, (self.entry[field] if v is not None else None)


def _is_build_cc(c: str) -> bool:
    return c.startswith(("sm_", "compute_")) and c.split("_", 1)[1].isdigit() and len(c.split("_", 1)[1]) >= 2


_CC_RE = re.compile(r"^\d{1,2}\.\d$")
_GFX_RE = re.compile(r"^gfx[0-9a-f]{3,4}$")
_RULE_RE = re.compile(r"^(TFC\d{0,3}|[a-z][a-z0-9-]*)$")
_PKG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _is_cc(c: str) -> bool:
    return bool(_CC_RE.match(c))


def _is_version(s: str) -> bool:
    try:
        Version(s)
        return True
    except InvalidVersion:
        return False


def _common_tail(ctx: _Ctx) -> Tuple[Tuple[str, ...], datetime.date, Optional[str], bool]:
    return ctx.sources(), ctx.date(), ctx.string("note"), bool(ctx.boolean("confirmed", True))


_TF_KEYS = {
    "versions": True, "releases": False, "python": True, "cuda": False, "cudnn": False, "compute_capabilities": False,
    "numpy_abi": False, "tensorrt": False, "tensorrt_lib": False, "numpy": False, "protobuf": False, "keras": False,
    "ml_dtypes": False, "h5py": False, "glibc": False, "glibcxx": False, "cxxabi": False, "manylinux": False,
    "cxx11_abi": False, "compiler": False, "and_cuda": False, "source": True, "checked": True, "note": False,
    "confirmed": False,
}


def _tf_release(ctx: _Ctx) -> TFRelease:
    ctx.check_keys(_TF_KEYS)
    ccs = ctx.entry.get("compute_capabilities", [])
    if not isinstance(ccs, list) or not all(isinstance(c, str) and _is_build_cc(c) for c in ccs):
        raise ctx.fail("compute_capabilities", f"{ccs!r} must be a list like ['sm_80', 'compute_90']")
    numpy_abi = ctx.integer("numpy_abi", allowed=(1, 2))
    versions = ctx.specifier("versions")
    python = ctx.specifier("python")
    assert versions is not None and python is not None  # required keys
    releases = ctx.strings("releases", _is_version, "a version")
    for r in releases:
        if not versions.contains(Version(r), prereleases=True):
            raise ctx.fail("releases", f"{r!r} is not matched by versions {str(versions)!r}")
    and_cuda = ctx.entry.get("and_cuda", {})
    if not isinstance(and_cuda, dict):
        raise ctx.fail("and_cuda", "must be a table of package = specifier")
    pins = []
    for name, spec in and_cuda.items():
        if not _PKG_RE.match(name):
            raise ctx.fail(f"and_cuda.{name}", "is not a package name")
        pins.append((name, ctx.specifier(f"and_cuda.{name}", spec)))
    manylinux = ctx.string("manylinux")
    if manylinux is not None and not all(p.startswith("manylinux") for p in manylinux.split(".")):
        raise ctx.fail("manylinux", f"{manylinux!r} is not a manylinux platform tag")
    source, checked, note, confirmed = _common_tail(ctx)
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
        source=source,
        checked=checked,
        label=ctx.label,
        releases=releases,
        tensorrt=ctx.boolean("tensorrt"),
        tensorrt_lib=ctx.string("tensorrt_lib"),
        h5py=ctx.specifier("h5py"),
        glibcxx=ctx.version("glibcxx"),
        cxxabi=ctx.version("cxxabi"),
        manylinux=manylinux,
        cxx11_abi=ctx.integer("cxx11_abi", allowed=(0, 1)),
        compiler=ctx.string("compiler"),
        and_cuda=tuple(pins),
        note=note,
        confirmed=confirmed,
    )


_CUDA_KEYS = {"version": True, "update": False, "label": False, "min_driver": True, "min_driver_windows": False,
              "source": True, "checked": True, "note": False}
_UPDATE_RE = re.compile(r"^(GA|RC|Update \d+)$")


def _cuda(ctx: _Ctx) -> CudaToolkit:
    ctx.check_keys(_CUDA_KEYS)
    version = ctx.version("version")
    driver, driver_text = ctx.driver("min_driver")
    win, win_text = ctx.driver("min_driver_windows")
    update = ctx.string("update") or "GA"
    if not _UPDATE_RE.match(update):
        raise ctx.fail("update", f"{update!r} must be 'GA', 'RC' or 'Update N'")
    assert version is not None and driver is not None and driver_text is not None
    return CudaToolkit(version, driver, driver_text, ctx.sources()[0], ctx.date(), update=update,
                       label=ctx.string("label") or "", min_driver_windows=win, min_driver_windows_text=win_text,
                       note=ctx.string("note"))


_MAJOR_KEYS = {"major": True, "min_driver": False, "min_driver_windows": False, "minor_version_compatibility": False,
               "source": True, "checked": True, "note": False}


def _cuda_major(ctx: _Ctx) -> CudaMajor:
    ctx.check_keys(_MAJOR_KEYS)
    major = ctx.entry["major"]
    if not isinstance(major, int) or isinstance(major, bool) or major <= 0:
        raise ctx.fail("major", f"{major!r} is not a positive integer")
    mvc = ctx.boolean("minor_version_compatibility", True)
    driver, text = ctx.driver("min_driver")
    if mvc and driver is None:
        raise ctx.fail("min_driver", "is required unless minor_version_compatibility = false")
    if not mvc and driver is not None:
        raise ctx.fail("min_driver", "makes no sense with minor_version_compatibility = false")
    sources = ctx.sources()
    _, win_text = ctx.driver("min_driver_windows")
    return CudaMajor(major, driver, text, sources[0], ctx.date(), minor_version_compatibility=bool(mvc),
                     min_driver_windows_text=win_text, note=ctx.string("note"), sources=sources)


_FC_KEYS = {"since_cuda": True, "package": True, "gpus": True, "consumer_gpus": True, "statement": True,
            "source": True, "checked": True, "note": False}


def _forward_compat(ctx: _Ctx) -> ForwardCompatibility:
    ctx.check_keys(_FC_KEYS)
    since = ctx.version("since_cuda")
    assert since is not None
    return ForwardCompatibility(since, ctx.string("package") or "", ctx.strings("gpus"),
                                bool(ctx.boolean("consumer_gpus")), ctx.string("statement") or "", ctx.sources(),
                                ctx.date(), ctx.string("note"))


_CC_KEYS = {"capabilities": True, "architecture": True, "examples": False, "first_cuda": False, "last_cuda": False,
            "source": True, "checked": True, "note": False}


def _compute_capability(ctx: _Ctx) -> ComputeCapability:
    ctx.check_keys(_CC_KEYS)
    caps = ctx.strings("capabilities", _is_cc, "a compute capability like '8.6'")
    first, last = ctx.version("first_cuda"), ctx.version("last_cuda")
    if first is not None and last is not None and last < first:
        raise ctx.fail("last_cuda", f"{last} is older than first_cuda {first}")
    return ComputeCapability(caps, ctx.string("architecture") or "", first, last, ctx.sources(), ctx.date(),
                             ctx.label, ctx.string("examples"), ctx.string("note"))


_CUDNN_KEYS = {"versions": True, "cuda_major": True, "cuda": True, "min_driver": False, "min_driver_windows": False,
               "driver_branch": False, "compute_capabilities": False, "min_compute_capability": False,
               "max_compute_capability": False, "source": True, "checked": True, "note": False}


def _cudnn(ctx: _Ctx) -> CudnnRelease:
    ctx.check_keys(_CUDNN_KEYS)
    versions, cuda = ctx.specifier("versions"), ctx.specifier("cuda")
    major = ctx.integer("cuda_major", minimum=1)
    assert versions is not None and cuda is not None and major is not None
    driver, text = ctx.driver("min_driver")
    _, win_text = ctx.driver("min_driver_windows")
    ccs = ctx.strings("compute_capabilities", _is_cc, "a compute capability like '8.6'")
    low, high = ctx.string("min_compute_capability"), ctx.string("max_compute_capability")
    for field, value in (("min_compute_capability", low), ("max_compute_capability", high)):
        if value is not None and not _is_cc(value):
            raise ctx.fail(field, f"{value!r} is not a compute capability like '8.6'")
    if not ccs and low is None:
        raise ctx.fail("compute_capabilities", "or min_compute_capability is required")
    if driver is None and ctx.string("driver_branch") is None:
        raise ctx.fail("min_driver", "or driver_branch is required")
    return CudnnRelease(versions, major, cuda, ctx.sources(), ctx.date(), ctx.label, driver, text, win_text,
                        ctx.string("driver_branch"), ccs, low, high, ctx.string("note"))


_CUDNN_RT_KEYS = {"same_major": True, "minor_at_least_compiled": True, "patch_ignored": True, "error": True,
                  "source": True, "checked": True, "note": False}


def _cudnn_runtime(ctx: _Ctx) -> CudnnRuntime:
    ctx.check_keys(_CUDNN_RT_KEYS)
    return CudnnRuntime(bool(ctx.boolean("same_major")), bool(ctx.boolean("minor_at_least_compiled")),
                        bool(ctx.boolean("patch_ignored")), ctx.string("error") or "", ctx.sources(), ctx.date(),
                        ctx.string("note"))


_TF_ROCM_KEYS = {"releases": True, "rocm": True, "gfx": False, "source": True, "checked": True, "note": False}


def _tf_rocm(ctx: _Ctx) -> TFRocmRelease:
    ctx.check_keys(_TF_ROCM_KEYS)
    rocm = ctx.version("rocm")
    assert rocm is not None
    return TFRocmRelease(ctx.strings("releases", _is_version, "a version"), rocm, ctx.sources(), ctx.date(), ctx.label,
                         ctx.strings("gfx", lambda s: bool(_GFX_RE.match(s)), "a gfx target like 'gfx90a'"),
                         ctx.string("note"))


_ROCM_KEYS = {"rocm": True, "tensorflow": True, "gfx": False, "source": True, "checked": True, "confirmed": False,
              "note": False}


def _rocm(ctx: _Ctx) -> RocmRelease:
    ctx.check_keys(_ROCM_KEYS)
    rocm = ctx.specifier("rocm")
    assert rocm is not None
    source, checked, note, confirmed = _common_tail(ctx)
    return RocmRelease(rocm, ctx.strings("tensorflow", _is_version, "a version"), source, checked, ctx.label,
                       ctx.strings("gfx", lambda s: bool(_GFX_RE.match(s)), "a gfx target like 'gfx90a'"),
                       confirmed, note)


_COMPANION_KEYS = {"package": True, "versions": True, "tensorflow": False, "abi_tensorflow": False, "native": True,
                   "python": False, "requires": False, "requires_same_version": False, "source": True,
                   "checked": True, "confirmed": False, "note": False}


def _companion(ctx: _Ctx) -> Companion:
    ctx.check_keys(_COMPANION_KEYS)
    package = ctx.string("package")
    if package is None or not _PKG_RE.match(package):
        raise ctx.fail("package", f"{package!r} is not a package name")
    versions = ctx.specifier("versions")
    assert versions is not None
    requires = ctx.strings("requires")
    for r in requires:
        try:
            Requirement(r)
        except InvalidRequirement:
            raise ctx.fail("requires", f"{r!r} is not a PEP 508 requirement") from None
    source, checked, note, confirmed = _common_tail(ctx)
    return Companion(package, versions, ctx.specifier("tensorflow"), bool(ctx.boolean("native")), source, checked,
                     f"{ctx.label} {package}", ctx.specifier("abi_tensorflow"), ctx.specifier("python"), requires,
                     ctx.strings("requires_same_version", lambda s: bool(_PKG_RE.match(s)), "a package name"),
                     confirmed, note)


_BAD_DRIVER_KEYS = {"versions": True, "reason": True, "severity": False, "source": True, "checked": True}


def _known_bad_driver(ctx: _Ctx) -> KnownBadDriver:
    ctx.check_keys(_BAD_DRIVER_KEYS)
    versions = ctx.specifier("versions")
    assert versions is not None
    for s in versions:
        if not _is_version(s.version.rstrip(".*")):
            raise ctx.fail("versions", f"{s.version!r} is not a driver version")
    severity = ctx.string("severity") or "error"
    if severity not in ("error", "warning", "info"):
        raise ctx.fail("severity", f"{severity!r} must be 'error', 'warning' or 'info'")
    return KnownBadDriver(versions, ctx.string("reason") or "", severity, ctx.sources(), ctx.date(), ctx.label,
                          ctx.path)


_WAIVER_KEYS = {"rule": True, "reason": True, "source": False, "checked": True}


def _waiver(ctx: _Ctx) -> Waiver:
    ctx.check_keys(_WAIVER_KEYS)
    rule = ctx.string("rule") or ""
    if not _RULE_RE.match(rule):
        raise ctx.fail("rule", f"{rule!r} is not a rule id prefix (TFC201, TFC2) or rule name")
    source = ctx.sources() if "source" in ctx.entry else ()
    return Waiver(rule, ctx.string("reason") or "", ctx.date(), ctx.label, ctx.path, source)


def _entries(path: str, doc: Dict[str, Any], table: str) -> Iterable[Tuple[int, Dict[str, Any]]]:
    items = doc.get(table, [])
    if not isinstance(items, list):
        raise MatrixError(f"{path}: {table} must be an array of tables ([[{table}]])")
    for i, entry in enumerate(items, start=1):
        if not isinstance(entry, dict):
            raise MatrixError(f"{path}: [[{table}]] #{i}: must be a table")
        yield i, entry


def _single(path: str, doc: Dict[str, Any], table: str) -> Optional[_Ctx]:
    value = doc.get(table)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MatrixError(f"{path}: [{table}] must be a table")
    return _Ctx(path, table, 0, value, None)


def _load_toml(text: str, path: str) -> Dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path}: not valid TOML: {exc}") from None


def _meta(path: str, doc: Dict[str, Any]) -> Tuple[datetime.date, str]:
    meta = doc.get("meta")
    if not isinstance(meta, dict):
        raise MatrixError(f"{path}: missing [meta] table")
    if meta.get("schema") != SCHEMA:
        raise MatrixError(f"{path}: [meta] schema {meta.get('schema')!r} is not supported (expected {SCHEMA})")
    ctx = _Ctx(path, "meta", 0, meta, None)
    ctx.check_keys({"schema": True, "updated": True, "kind": False})
    kind = ctx.string("kind") or "matrix"
    if kind not in ("matrix", "overlay"):
        raise ctx.fail("kind", f"{kind!r} must be 'matrix' or 'overlay'")
    return ctx.date("updated"), kind


def _table_list(path: str, doc: Dict[str, Any], table: str, label_key: Optional[str], parse: Callable[[_Ctx], Any]):
    return tuple(parse(_Ctx(path, table, i, e, label_key)) for i, e in _entries(path, doc, table))


MATRIX_TABLES = ("meta", "tensorflow", "cuda", "cuda_major", "forward_compatibility", "compute_capability", "cudnn",
                 "cudnn_runtime", "tensorflow_rocm", "rocm", "companion", "known_bad_driver")
OVERLAY_TABLES = ("meta", "known_bad_driver", "waiver", "thresholds")


def parse_matrix(text: str, path: str = "<matrix>") -> Matrix:
    doc = _load_toml(text, path)
    meta = doc.get("meta")
    if isinstance(meta, dict) and meta.get("kind") == "overlay":
        raise MatrixError(f"{path}: is a site overlay ([meta] kind = 'overlay'), not a matrix: use --matrix-overlay")
    unknown = [t for t in doc if t not in MATRIX_TABLES]
    if unknown:
        raise MatrixError(f"{path}: unknown table {sorted(unknown)[0]!r}")
    updated, _ = _meta(path, doc)
    tf = _table_list(path, doc, "tensorflow", "versions", _tf_release)
    _no_release_twice(path, tf)
    cuda = _table_list(path, doc, "cuda", "version", _cuda)
    _unique(path, "cuda", [(str(t.version), t) for t in cuda])
    majors = _table_list(path, doc, "cuda_major", "major", _cuda_major)
    _unique(path, "cuda_major", [(str(m.major), m) for m in majors])
    fc_ctx = _single(path, doc, "forward_compatibility")
    rt_ctx = _single(path, doc, "cudnn_runtime")
    ccs = _table_list(path, doc, "compute_capability", "capabilities", _compute_capability)
    _unique(path, "compute_capability", [(c, e) for e in ccs for c in e.capabilities])
    return Matrix(
        path=path,
        updated=updated,
        tensorflow=tf,
        cuda=cuda,
        cuda_majors=majors,
        forward_compatibility=_forward_compat(fc_ctx) if fc_ctx else None,
        compute_capabilities=ccs,
        cudnn=_table_list(path, doc, "cudnn", "versions", _cudnn),
        cudnn_runtime=_cudnn_runtime(rt_ctx) if rt_ctx else None,
        tensorflow_rocm=_table_list(path, doc, "tensorflow_rocm", "releases", _tf_rocm),
        rocm=_table_list(path, doc, "rocm", "rocm", _rocm),
        companions=_table_list(path, doc, "companion", "package", _companion),
        known_bad_drivers=_table_list(path, doc, "known_bad_driver", "versions", _known_bad_driver),
    )


def _no_release_twice(path: str, tf: Sequence[TFRelease]) -> None:
    for rel in tf:
        for r in rel.releases:
            others = [o.label for o in tf if o is not rel and o.matches(r)]
            if others:
                raise MatrixError(f"{path}: {rel.label}: releases {r!r} is also matched by {others[0]}")


def _unique(path: str, table: str, keyed: Sequence[Tuple[str, Any]]) -> None:
    seen: Dict[str, Any] = {}
    for key, entry in keyed:
        if key in seen:
            label = getattr(entry, "label", "") or f"[[{table}]]"
            raise MatrixError(f"{path}: [[{table}]] {key!r} is stated twice ({label})")
        seen[key] = entry


def _known_thresholds() -> Optional[Mapping[str, int]]:
    try:  # the keys the resource rules read; unknown keys are errors when they are importable
        from tfcompat.rules.resources import DEFAULT_THRESHOLDS
    except ImportError:  # pragma: no cover - depends on which rule families exist
        return None
    return DEFAULT_THRESHOLDS


def parse_overlay(text: str, path: str = "<overlay>") -> Overlay:
    """A site overlay: `[meta] kind = "overlay"`, then [[known_bad_driver]], [[waiver]], [thresholds]."""
    doc = _load_toml(text, path)
    updated, kind = _meta(path, doc)
    if kind != "overlay":
        raise MatrixError(f"{path}: [meta] kind must be 'overlay' in a site overlay")
    unknown = [t for t in doc if t not in OVERLAY_TABLES]
    if unknown:
        raise MatrixError(f"{path}: unknown table {sorted(unknown)[0]!r} (an overlay holds [[known_bad_driver]], "
                          "[[waiver]] and [thresholds])")
    thresholds: Dict[str, int] = {}
    ctx = _single(path, doc, "thresholds")
    if ctx is not None:
        known = _known_thresholds()
        for key, value in ctx.entry.items():
            if known is not None and key not in known:
                raise MatrixError(f"{path}: [thresholds]: unknown key {key!r} (known: {', '.join(sorted(known))})")
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ctx.fail(key, f"{value!r} is not a non-negative integer")
            thresholds[key] = value
    return Overlay(
        path=path,
        updated=updated,
        known_bad_drivers=_table_list(path, doc, "known_bad_driver", "versions", _known_bad_driver),
        waivers=_table_list(path, doc, "waiver", "rule", _waiver),
        thresholds=thresholds,
    )


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise MatrixError(f"{path}: not UTF-8 text") from None


def load_matrix(path: Optional[Path] = None, overlays: Sequence[Path] = ()) -> Matrix:
    path = Path(path) if path is not None else default_matrix_path()
    matrix = parse_matrix(_read(path, "matrix"), str(path))
    for overlay in overlays:
        matrix = matrix.with_overlay(load_overlay(overlay))
    return matrix


def load_overlay(path: Path) -> Overlay:
    path = Path(path)
    return parse_overlay(_read(path, "overlay"), str(path))


def file_kind(path: Path) -> str:
    """'matrix' or 'overlay', from [meta] kind (for `tfcompat matrix validate`)."""
    path = Path(path)
    doc = _load_toml(_read(path, "file"), str(path))
    meta = doc.get("meta")
    return "overlay" if isinstance(meta, dict) and meta.get("kind") == "overlay" else "matrix"


# ---------------------------------------------------------------------------------------------- invariants


def _lower(spec: SpecifierSet) -> Optional[Version]:
    lows = [Version(s.version) for s in spec if s.operator in (">=", "==", "~=", ">") and "*" not in s.version]
    return min(lows) if lows else None


def invariant_problems(matrix: Matrix, today: Optional[datetime.date] = None) -> List[str]:
    """What keeps a matrix honest beyond its shape, one line each (empty: none): every CUDA a release
    names has driver facts, entries sorted, no dates in the future, companion ranges disjoint."""
    today = today or datetime.date.today()
    out: List[str] = []
    p = matrix.path
    lows = []
    for rel in matrix.tensorflow:
        low = _lower(rel.versions)
        if low is None:
            out.append(f"{p}: {rel.label}: versions has no lower bound")
            continue
        lows.append((low, rel.label))
        if rel.cuda is not None:
            if matrix.cuda_toolkit(str(rel.cuda)) is None:
                out.append(f"{p}: {rel.label}: cuda {rel.cuda} has no [[cuda]] entry (driver facts)")
            if matrix.cuda_major_info(rel.cuda.major) is None:
                out.append(f"{p}: {rel.label}: cuda {rel.cuda} has no [[cuda_major]] {rel.cuda.major} entry")
        for cc in rel.sass:
            if matrix.compute_capability(cc) is None:
                out.append(f"{p}: {rel.label}: compute capability {cc} has no [[compute_capability]] entry")
    for (a, la), (b, lb) in zip(lows, lows[1:]):
        if b <= a:
            out.append(f"{p}: {lb}: not sorted: its lowest version {b} is not above {la}'s {a}")
    for a, b in zip(matrix.cuda, matrix.cuda[1:]):
        if b.version <= a.version:
            out.append(f"{p}: [[cuda]] {b.version}: not sorted (comes after {a.version})")
        if b.min_driver < a.min_driver:
            out.append(f"{p}: [[cuda]] {b.version}: min_driver {b.min_driver_text} is below {a.version}'s "
                       f"{a.min_driver_text}")
    majors = [m.major for m in matrix.cuda_majors]
    if majors != sorted(majors):
        out.append(f"{p}: [[cuda_major]] entries are not sorted by major")
    by_package: Dict[str, List[Companion]] = {}
    for c in matrix.companions:
        by_package.setdefault(c.package, []).append(c)
    for package, entries in by_package.items():
        for i, a in enumerate(entries):
            for b in entries[i + 1:]:
                if _lower(a.versions) is not None and b.versions.contains(_lower(a.versions), prereleases=True) or \
                        _lower(b.versions) is not None and a.versions.contains(_lower(b.versions), prereleases=True):
                    out.append(f"{p}: {b.label}: versions {b.versions} overlaps {a.label}")
    dated: List[Tuple[str, datetime.date]] = [(e.label, e.checked) for e in matrix.tensorflow]
    dated += [(f"[[cuda]] {t.version}", t.checked) for t in matrix.cuda]
    dated += [(f"[[cuda_major]] {m.major}", m.checked) for m in matrix.cuda_majors]
    for group in (matrix.compute_capabilities, matrix.cudnn, matrix.tensorflow_rocm, matrix.rocm, matrix.companions,
                  matrix.known_bad_drivers, matrix.waivers):
        dated += [(e.label, e.checked) for e in group]
    for single, name in ((matrix.forward_compatibility, "[forward_compatibility]"),
                         (matrix.cudnn_runtime, "[cudnn_runtime]")):
        if single is not None:
            dated.append((name, single.checked))
    dated.append(("[meta] updated", matrix.updated))
    for label, date in dated:
        if date > today:
            out.append(f"{p}: {label}: checked {date} is in the future")
    return out
