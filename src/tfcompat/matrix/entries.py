"""The matrix's entries as frozen dataclasses: one class per table of data/compat_matrix.toml.

Entries state facts and answer questions about themselves only; questions across tables live in
`lookup.Matrix`. `spec_text` prints a specifier the way the file (and every output) writes it.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Optional

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from tfcompat.matrix.arch import cc_text, cc_tuple


@dataclasses.dataclass(frozen=True)
class TFRelease:
    """[[tensorflow]]: a range of TensorFlow releases, what they were built with and what they require."""

    versions: SpecifierSet
    python: SpecifierSet
    cuda: Optional[Version]
    cudnn: Optional[Version]
    compute_capabilities: tuple[str, ...]
    numpy_abi: Optional[int]
    numpy: Optional[SpecifierSet]
    protobuf: Optional[SpecifierSet]
    keras: Optional[SpecifierSet]
    ml_dtypes: Optional[SpecifierSet]
    glibc: Optional[Version]
    source: tuple[str, ...]
    checked: datetime.date
    label: str  # how errors and evidence name this entry
    releases: tuple[str, ...] = ()
    tensorrt: Optional[bool] = None
    tensorrt_lib: Optional[str] = None
    h5py: Optional[SpecifierSet] = None
    glibcxx: Optional[Version] = None
    cxxabi: Optional[Version] = None
    manylinux: Optional[str] = None
    cxx11_abi: Optional[int] = None
    compiler: Optional[str] = None
    and_cuda: tuple[tuple[str, SpecifierSet], ...] = ()
    and_cuda_cuda: Optional[Version] = None  # the CUDA release the [and-cuda] pins' components come from
    note: Optional[str] = None
    confirmed: bool = True
    protoc: Optional[Version] = None  # the protobuf release whose protoc generated the wheel's *_pb2.py modules
    numpy_built_with: Optional[Version] = None  # the NumPy whose headers its extension modules were compiled with
    cudnn_minor: Optional[str] = None  # "exact": a cuDNN of another minor is refused (TF 1.5/1.6)

    def matches(self, version: str) -> bool:
        return self.versions.contains(Version(version), prereleases=True)

    @property
    def sass(self) -> tuple[str, ...]:
        """Compute capabilities with SASS ("8.0"): every entry, sm_XY and compute_XY alike."""
        return tuple(cc_text(c) for c in self.compute_capabilities)

    @property
    def ptx(self) -> tuple[str, ...]:
        """Compute capabilities with PTX: the compute_XY entries."""
        return tuple(cc_text(c) for c in self.compute_capabilities if c.startswith("compute_"))


@dataclasses.dataclass(frozen=True)
class CudaToolkit:
    """[[cuda]]: a CUDA toolkit release and the driver packaged with it (every feature from there on)."""

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
    """[[cuda_major]]: a CUDA major and its driver floor under minor-version compatibility."""

    major: int
    min_driver: Optional[Version]  # None: no minor-version compatibility (CUDA 10)
    min_driver_text: Optional[str]
    source: str
    checked: datetime.date
    minor_version_compatibility: bool = True
    min_driver_windows_text: Optional[str] = None
    note: Optional[str] = None
    sources: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ForwardCompatibility:
    """[forward_compatibility]: running a newer CUDA major than the driver supports, through cuda-compat."""

    since_cuda: Version
    package: str
    gpus: tuple[str, ...]
    consumer_gpus: bool
    statement: str
    source: tuple[str, ...]
    checked: datetime.date
    note: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ComputeCapability:
    """[[compute_capability]]: GPU compute capabilities and the CUDA toolkits that can compile for them."""

    capabilities: tuple[str, ...]  # "8.6"
    architecture: str
    first_cuda: Optional[Version]  # None: in every CUDA the source lists
    last_cuda: Optional[Version]  # None: still supported
    source: tuple[str, ...]
    checked: datetime.date
    label: str
    examples: Optional[str] = None
    note: Optional[str] = None

    def cuda_can_build(self, cuda: Version) -> bool:
        mm = Version(f"{cuda.major}.{cuda.minor}")
        return (self.first_cuda is None or mm >= self.first_cuda) and (self.last_cuda is None or mm <= self.last_cuda)


# How one cuDNN release stands to one compute capability (CudnnRelease.cc_status).
CC_NATIVE = "native"  # the support matrix lists it (a listed X.Y covers X.Z, Z >= Y)
CC_DROPPED = "dropped"  # older than every architecture it lists, or named in `dropped_compute_capabilities`
CC_NEWER = "newer"  # newer than every architecture it lists: forward compatibility at best
CC_UNLISTED = "unlisted"  # between listed architectures but not listed (e.g. 11.0 beside 10.0 and 12.0)


@dataclasses.dataclass(frozen=True)
class CudnnRelease:
    """One row of a cuDNN support matrix: the releases `versions` built for CUDA `cuda_major`.

    Architectures come and go: `compute_capabilities` (or `min_`/`max_compute_capability`) is what this
    release supports natively, so an entry can add an architecture (Blackwell in 9.7) as well as
    drop one (Maxwell, Pascal and Volta gone from 9.11.0); `dropped_compute_capabilities` names architectures a source
    says this release dropped where the full list is not known. `forward_compatible`: NVIDIA's
    hardware forward compatibility (cuDNN >= 9.0 built with CUDA >= 12) runs a subset of graphs on
    GPUs newer than the list through PTX JIT."""

    versions: SpecifierSet
    cuda_major: int
    cuda: SpecifierSet
    source: tuple[str, ...]
    checked: datetime.date
    label: str
    min_driver: Optional[Version] = None
    min_driver_text: Optional[str] = None
    min_driver_windows_text: Optional[str] = None
    driver_branch: Optional[str] = None
    compute_capabilities: tuple[str, ...] = ()
    min_compute_capability: Optional[str] = None
    max_compute_capability: Optional[str] = None
    note: Optional[str] = None
    dropped_compute_capabilities: tuple[str, ...] = ()
    forward_compatible: bool = False
    confirmed: bool = True

    def cc_status(self, cc: str) -> str:
        """CC_NATIVE, CC_DROPPED, CC_NEWER or CC_UNLISTED for compute capability `cc`."""
        want = cc_tuple(cc)
        if any(d[0] == want[0] and d[1] <= want[1] for d in map(cc_tuple, self.dropped_compute_capabilities)):
            return CC_DROPPED
        if self.compute_capabilities:
            listed = [cc_tuple(c) for c in self.compute_capabilities]
            if any(c[0] == want[0] and c[1] <= want[1] for c in listed):
                return CC_NATIVE
            if want < min(listed):
                return CC_DROPPED
            return CC_NEWER if want > max(listed) else CC_UNLISTED
        if self.min_compute_capability is None:  # only `dropped_compute_capabilities` is known
            return CC_UNLISTED
        low = cc_tuple(self.min_compute_capability)
        high = cc_tuple(self.max_compute_capability) if self.max_compute_capability else None
        if want < low:
            return CC_DROPPED
        if high is not None and want[0] > high[0]:  # "5.0 ... 9.0" covers every 9.x
            return CC_NEWER
        return CC_NATIVE

    def supports_cc(self, cc: str) -> bool:
        """Whether the support matrix lists compute capability `cc` (natively; see cc_status)."""
        return self.cc_status(cc) == CC_NATIVE


@dataclasses.dataclass(frozen=True)
class CudnnRuntime:
    """[cudnn_runtime]: the rule TensorFlow enforces when it loads cuDNN (same major, minor at least as high)."""

    same_major: bool
    minor_at_least_compiled: bool
    patch_ignored: bool
    error: str
    source: tuple[str, ...]
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
    """[[tensorflow_rocm]]: tensorflow-rocm releases (2.14.0.600), the ROCm they are built for and their wheels."""

    releases: tuple[str, ...]
    rocm: Version
    source: tuple[str, ...]
    checked: datetime.date
    label: str
    gfx: tuple[str, ...] = ()
    note: Optional[str] = None
    python: Optional[SpecifierSet] = None  # Requires-Python of the wheel
    manylinux: Optional[str] = None  # platform tag of the Linux x86-64 wheel's file name
    glibc: Optional[Version] = None  # highest GLIBC_ symbol version over its shared objects
    numpy_abi: Optional[int] = None  # NumPy C-ABI major its extension modules were built against

    def tf_version(self, release: str) -> str:
        """The TensorFlow version a release names: `<TF>.<ROCm without dots>` ("2.14.0.600" -> "2.14.0")."""
        return ".".join(str(p) for p in Version(release).release[:3])


@dataclasses.dataclass(frozen=True)
class TFPlatformBuild:
    """[[tensorflow_platform]]: what PyPI ships of a TensorFlow distribution for a platform other than
    Linux x86-64 (today: Linux aarch64), as the wheels' file names, WHEEL and build_info.py state it."""

    package: str  # the distribution: tensorflow, tensorflow-cpu-aws
    platform: str  # the machine: aarch64
    versions: SpecifierSet
    releases: tuple[str, ...]
    source: tuple[str, ...]
    checked: datetime.date
    label: str
    manylinux: Optional[str] = None  # platform tag of the wheels' file names
    glibc: Optional[Version] = None  # the glibc floor the manylinux tag states
    cuda_build: Optional[bool] = None  # build_info is_cuda_build of the wheels read
    wrapper: bool = False  # a ~2 KB wheel with no TensorFlow in it (it only depends on another distribution)
    confirmed: bool = True
    note: Optional[str] = None

    def matches(self, version: str) -> bool:
        return version in self.releases or self.versions.contains(version, prereleases=True)


@dataclasses.dataclass(frozen=True)
class DriverBranch:
    """[[driver_branch]]: an NVIDIA data-center driver branch (R580) and its end of life."""

    branch: int  # 580
    designation: str  # "lts" (Long Term Support Branch), "production", "new-feature"
    source: tuple[str, ...]
    checked: datetime.date
    label: str
    end_of_life: Optional[str] = None  # "YYYY-MM" as NVIDIA states it (month only)
    confirmed: bool = True
    note: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class RocmRelease:
    """[[rocm]]: a ROCm release line and the TensorFlow versions (and GPU targets) AMD supports on it."""

    rocm: SpecifierSet
    tensorflow: tuple[str, ...]
    source: tuple[str, ...]
    checked: datetime.date
    label: str
    gfx: tuple[str, ...] = ()
    confirmed: bool = True
    note: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class RocmSoname:
    """[[rocm_soname]]: a ROCm library's DT_NEEDED name and the ROCm releases that ship it (issue 14): an object
    that needs libamdhip64.so.5 was built against ROCm 5.x and finds no such file under ROCm 6."""

    soname: str  # "libamdhip64.so.5"
    rocm: SpecifierSet  # "==5.*"
    source: tuple[str, ...]
    checked: datetime.date
    label: str
    confirmed: bool = True
    note: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Companion:
    """[[companion]]: a range of a companion package's releases (tensorflow-text) and the TensorFlow it needs."""

    package: str
    versions: SpecifierSet
    tensorflow: Optional[SpecifierSet]
    native: bool
    source: tuple[str, ...]
    checked: datetime.date
    label: str
    abi_tensorflow: Optional[SpecifierSet] = None
    python: Optional[SpecifierSet] = None
    requires: tuple[str, ...] = ()
    requires_same_version: tuple[str, ...] = ()
    confirmed: bool = True
    note: Optional[str] = None


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
    def sources(self) -> tuple[str, ...]:
        out: list[str] = []
        if self.toolkit is not None:
            out.append(self.toolkit.source)
        if self.major is not None:
            out.extend(self.major.sources or (self.major.source,))
        return tuple(dict.fromkeys(out))


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
