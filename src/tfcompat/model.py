"""The facts tfcompat collects and the verdicts it gives, as frozen dataclasses.

Probes build an :class:`Environment`; rules read it; the engine returns a :class:`Report`.
Everything here round-trips through JSON (``to_json_dict`` / ``from_json_dict``) so that a
snapshot taken on a GPU node can be judged anywhere with ``tfcompat check --from``.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import typing
from typing import Any, Callable, Dict, List, Optional, Tuple, get_type_hints

from tfcompat.errors import TfcompatError

SNAPSHOT_VERSION = 1


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclasses.dataclass(frozen=True)
class Unknown:
    """A fact a probe could not establish, and why (in words a user understands)."""

    fact: str
    reason: str


@dataclasses.dataclass(frozen=True)
class PythonInfo:
    executable: Optional[str]
    version: Optional[str]  # "3.11.7"
    implementation: str = "cpython"
    sys_path: Tuple[str, ...] = ()
    source: str = ""  # how we learnt it: "running interpreter", "subprocess: /venv/bin/python", ...


@dataclasses.dataclass(frozen=True)
class Package:
    name: str  # canonical (PEP 503) name
    version: str
    location: str  # the sys.path entry (site-packages dir) it was found in
    metadata_path: str
    requires: Tuple[str, ...] = ()  # raw Requires-Dist lines
    requires_python: Optional[str] = None
    display_name: str = ""


@dataclasses.dataclass(frozen=True)
class TensorFlowBuild:
    """One installed TensorFlow distribution and what its build says about itself."""

    distribution: str  # canonical distribution name: tensorflow, tensorflow-cpu, tf-nightly, ...
    version: str
    location: str
    package_dir: Optional[str]  # .../site-packages/tensorflow, if present
    build_info_path: Optional[str]
    cuda_version: Optional[str] = None
    cudnn_version: Optional[str] = None
    compute_capabilities: Tuple[str, ...] = ()
    is_cuda_build: Optional[bool] = None
    is_rocm_build: Optional[bool] = None
    is_tensorrt_build: Optional[bool] = None
    cpu_compiler: Optional[str] = None
    wheel_tags: Tuple[str, ...] = ()
    wheel_path: Optional[str] = None
    metadata_path: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Platform:
    os_release: Optional[str] = None  # PRETTY_NAME from /etc/os-release
    os_release_path: Optional[str] = None
    arch: Optional[str] = None  # x86_64, aarch64
    glibc: Optional[str] = None  # "2.36"
    glibc_source: Optional[str] = None
    kernel: Optional[str] = None
    cpu_model: Optional[str] = None
    cpu_flags: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: Optional[str]  # from /proc/<pid>/comm where readable
    used_mib: Optional[int]


@dataclasses.dataclass(frozen=True)
class Gpu:
    index: int
    name: Optional[str] = None
    uuid: Optional[str] = None
    pci_bus_id: Optional[str] = None
    compute_capability: Optional[str] = None  # "9.0"
    memory_total_mib: Optional[int] = None
    mig_mode: Optional[bool] = None
    persistence_mode: Optional[bool] = None
    memory_used_mib: Optional[int] = None
    processes: Tuple[GpuProcess, ...] = ()  # compute processes holding memory on it
    ecc_enabled: Optional[bool] = None
    ecc_uncorrected_volatile: Optional[int] = None  # since the last driver load
    ecc_uncorrected_aggregate: Optional[int] = None  # lifetime
    retired_pages_pending: Optional[bool] = None  # a page retirement waits for a reboot (pre-Ampere)
    retired_pages: Optional[int] = None
    remap_pending: Optional[bool] = None  # row remapping waits for a GPU reset (Ampere and newer)
    remap_failure: Optional[bool] = None


@dataclasses.dataclass(frozen=True)
class Resources:
    """Limits the job will run under. Limits: None means unlimited; sizes in bytes."""

    shm_bytes: Optional[int] = None  # size of /dev/shm
    shm_free_bytes: Optional[int] = None
    shm_source: Optional[str] = None
    memlock_soft: Optional[int] = None
    memlock_hard: Optional[int] = None
    stack_soft: Optional[int] = None
    nofile_soft: Optional[int] = None
    nofile_hard: Optional[int] = None
    rlimit_source: Optional[str] = None
    cgroup_version: Optional[int] = None
    cgroup_memory_limit: Optional[int] = None  # None: no limit
    cgroup_memory_current: Optional[int] = None
    cgroup_source: Optional[str] = None
    mem_total: Optional[int] = None  # /proc/meminfo
    mem_available: Optional[int] = None
    cuda_visible_devices: Optional[str] = None  # None: not set
    nvidia_visible_devices: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class DriverLibrary:
    """A user-space driver library (libcuda.so.1, libnvidia-ml.so.1) as the loader would find it."""

    soname: str
    path: str  # the file the soname resolves to (symlinks followed)
    version: Optional[str]  # from the file name: libcuda.so.550.54.15 -> 550.54.15
    forward_compat: bool = False  # from a cuda-compat package (…/compat/ directory)
    shadowed: Tuple[str, ...] = ()  # other copies further down the search path


@dataclasses.dataclass(frozen=True)
class Driver:
    kernel_module_version: Optional[str] = None  # from /proc/driver/nvidia/version
    kernel_module_source: Optional[str] = None
    nvml_driver_version: Optional[str] = None  # nvmlSystemGetDriverVersion
    cuda_driver_version: Optional[str] = None  # newest CUDA the driver supports, "12.4"
    nvml_error: Optional[str] = None  # NVML's error name when it failed, e.g. "NVML_ERROR_LIB_RM_VERSION_MISMATCH"
    libraries: Tuple[DriverLibrary, ...] = ()
    gpu_errors: Tuple[str, ...] = ()  # GPUs NVML could not query: "GPU 2: NVML_ERROR_GPU_IS_LOST (GPU is lost)"

    @property
    def version(self) -> Optional[str]:
        return self.nvml_driver_version or self.kernel_module_version

    @property
    def version_source(self) -> str:
        if self.nvml_driver_version:
            return "NVML nvmlSystemGetDriverVersion"
        return self.kernel_module_source or "/proc/driver/nvidia/version"


@dataclasses.dataclass(frozen=True)
class AmdGpu:
    node: int  # KFD topology node id
    gfx_target: str  # gfx90a, gfx1100
    source: str


@dataclasses.dataclass(frozen=True)
class Rocm:
    version: Optional[str]  # user-space ROCm, /opt/rocm/.info/version
    version_source: Optional[str]
    gpus: Tuple[AmdGpu, ...] = ()


@dataclasses.dataclass(frozen=True)
class Host:
    """Facts that belong to the node, not to the Python environment."""

    node_name: Optional[str] = None
    node_name_source: Optional[str] = None
    platform: Platform = dataclasses.field(default_factory=Platform)
    driver: Optional[Driver] = None
    gpus: Tuple[Gpu, ...] = ()
    rocm: Optional[Rocm] = None
    resources: Optional[Resources] = None


@dataclasses.dataclass(frozen=True)
class LibraryCopy:
    """One file of a native library, as the dynamic loader would see it."""

    path: str  # as the loader opens it (inside --root; '..' and symlinks not resolved)
    real_path: str  # after symlinks, inside --root
    found_via: str  # loader step: "DT_RUNPATH", "LD_LIBRARY_PATH", "ld.so.cache", "default path", "already loaded", ...
    search_entry: str  # the search-path element as written ("$ORIGIN/../nvidia/cudnn/lib"), or the cache file
    owner: Optional[str] = None  # the object whose DT_RPATH/DT_RUNPATH named that element
    version: Optional[str] = None
    version_source: Optional[str] = None  # wheel METADATA, "file name ...", cudnn_version.h, version.json
    distribution: Optional[str] = None  # the nvidia-* wheel that installed it
    problem: Optional[str] = None  # why the loader cannot use it (not ELF, another ELF class, ...)


@dataclasses.dataclass(frozen=True)
class LibraryResolution:
    """A library TensorFlow dlopen()s: which file wins, how, and every other copy."""

    name: str  # "cudnn", "cublasLt", "cudnn_ops"
    soname: str  # "libcudnn.so.9"
    role: str  # "gpu" (no GPU without it), "feature", "driver", "cudnn-sublibrary"
    purpose: str
    requested_by: Optional[str]  # the calling object whose search path applies
    found: Optional[LibraryCopy]  # the winner; None: not found
    others: Tuple[LibraryCopy, ...] = ()  # other copies: later on the search path, or installed off it
    missing_deps: Tuple[str, ...] = ()  # "libnvJitLink.so.12 (needed by /.../libcusolver.so.11)"
    other_sonames: Tuple[str, ...] = ()  # "libcudnn.so.8 in /usr/lib/x86_64-linux-gnu (ld.so.cache)"


@dataclasses.dataclass(frozen=True)
class VersionNeedCheck:
    """Symbol versions an object needs from one DT_NEEDED library, against the file the loader picks."""

    object: str  # TF's own object (or a library it loads)
    library: str  # the DT_NEEDED name: "libstdc++.so.6"
    needed: Tuple[str, ...]  # from .gnu.version_r
    provider: Optional[str]  # the file the loader picks for it; None: not found
    provider_found_via: Optional[str]
    missing: Tuple[str, ...] = ()  # needed versions the provider's .gnu.version_d does not define
    provider_highest: Tuple[str, ...] = ()  # the provider's highest version of each needed family


@dataclasses.dataclass(frozen=True)
class NativeLibraries:
    """The native libraries TensorFlow will load, resolved with a model of glibc's loader."""

    caller: Optional[str]  # the object whose dlopen() TF uses (its DT_RUNPATH is the search path)
    caller_source: str
    executable: Optional[str] = None  # the interpreter, whose DT_NEEDED closure is loaded first
    ld_library_path: Optional[str] = None  # host only; never read under --root
    ld_preload: Tuple[str, ...] = ()  # LD_PRELOAD and /etc/ld.so.preload entries
    ld_so_cache: Optional[str] = None  # "/etc/ld.so.cache (new format, 536 entries)"
    ld_so_cache_problem: Optional[str] = None
    default_dirs: Tuple[str, ...] = ()
    hwcaps: Tuple[str, ...] = ()  # glibc-hwcaps subdirectories searched
    libraries: Tuple[LibraryResolution, ...] = ()
    abi: Tuple[VersionNeedCheck, ...] = ()
    cpu_instructions: Tuple[str, ...] = ()  # /proc/cpuinfo flag names the build needs ("avx")
    cpu_instructions_source: str = ""


@dataclasses.dataclass(frozen=True)
class CustomOp:
    """One plugin (custom-op library, pybind module linking TF) checked against the installed TF."""

    owner: str  # the distribution that installed it, or "--op"
    path: str
    ok: bool
    problem: Optional[str] = None  # why it could not be checked
    missing_libraries: Tuple[str, ...] = ()  # DT_NEEDED entries that resolve nowhere
    missing_versions: Tuple[str, ...] = ()  # "GLIBCXX_3.4.30 (libstdc++.so.6: /usr/lib/...)"
    undefined_count: int = 0  # non-weak undefined symbols nothing in scope defines
    undefined: Tuple[str, ...] = ()  # the first few, mangled (TF, abseil and C API names first)
    demangled: Tuple[str, ...] = ()  # the same, demangled where c++filt was available
    reasons: Tuple[str, ...] = ()  # why, in words, where the names tell
    abseil: Tuple[str, ...] = ()  # abseil LTS namespaces the missing names come from
    build_id: Optional[str] = None  # GNU build-id: identifies the build across nodes


@dataclasses.dataclass(frozen=True)
class Target:
    """The Python environment the job will use (a venv, a conda env, an image)."""

    root: Optional[str] = None  # --root sysroot, if any
    python: PythonInfo = dataclasses.field(default_factory=lambda: PythonInfo(None, None))
    site_packages: Tuple[str, ...] = ()
    packages: Tuple[Package, ...] = ()
    shadowed_packages: Tuple[Package, ...] = ()  # same name found again later on sys.path
    tensorflow: Tuple[TensorFlowBuild, ...] = ()  # every TF distribution found, effective one first
    native: Optional[NativeLibraries] = None  # CUDA/cuDNN/... libraries TF will load (issue 4)
    custom_ops: Tuple[CustomOp, ...] = ()  # plugins that link TensorFlow, checked symbol by symbol


@dataclasses.dataclass(frozen=True)
class ProbeStep:
    """One step of the import probe (--probe), in the order the child ran them."""

    name: str  # "import tensorflow", "import tensorflow_text", "list physical devices", "op on /GPU:0"
    status: str  # "ok" | "error" (Python exception) | "died" (the process ended inside it) | "hung" | "skipped"
    detail: Optional[str] = None  # what it found ("2.21.0 from /venv/.../tensorflow/__init__.py")
    error: Optional[str] = None  # "ImportError: numpy.core.umath failed to import"
    duration_ms: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class LoadedLibrary:
    """A shared object mapped in the probe's child process (from /proc/<pid>/maps)."""

    path: str
    name: str  # file name: "libcudart.so.12.5.82"


@dataclasses.dataclass(frozen=True)
class LogLine:
    """A line the probe's child printed, classified by data/tf_log_patterns.toml (first match wins)."""

    pattern: str  # pattern id, or "unclassified" for a TF error line no pattern knows
    classification: str  # "benign" | "informative" | "fatal" | "unclassified"
    text: str  # the first line that matched (capped)
    count: int  # how many lines matched
    explanation: str


@dataclasses.dataclass(frozen=True)
class ProbeDevice:
    name: str  # "/physical_device:GPU:0"
    device_type: str  # "CPU", "GPU"


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """What happened when the target interpreter imported TensorFlow in a sandboxed child (--probe)."""

    python: str  # the interpreter that ran
    outcome: str  # "ok" | "error" | "crash" (signal) | "exit" (non-zero exit) | "timeout" | "not-started"
    exit_code: Optional[int]  # None when killed by a signal or not started
    signal: Optional[str]  # "SIGSEGV", "SIGABRT", ...
    failing_step: Optional[str]  # the step that raised, crashed or hung: "import tensorflow_text"
    error: Optional[str]  # the Python-level error ("ImportError: ...") or why the child could not start
    traceback: Optional[str]  # its traceback, or faulthandler's stack for a crash or a hang (capped)
    steps: Tuple[ProbeStep, ...]
    tensorflow_version: Optional[str]  # tf.__version__ as imported
    tensorflow_path: Optional[str]  # tf.__file__ as imported
    devices: Tuple[ProbeDevice, ...]
    libraries: Tuple[LoadedLibrary, ...]  # every mapped .so, in load order
    libraries_source: str  # "/proc/self/maps at the end of the child", or the parent's last read while it ran
    log_lines: Tuple[LogLine, ...]
    output_tail: str  # the end of the child's stdout+stderr (capped)
    output_bytes: int  # how much it printed in all
    timeout_s: int
    duration_ms: int


@dataclasses.dataclass(frozen=True)
class Environment:
    host: Host
    target: Target
    unknowns: Tuple[Unknown, ...] = ()
    tool_version: str = ""
    created: str = ""  # ISO 8601 UTC
    snapshot_version: int = SNAPSHOT_VERSION
    probe: Optional[ProbeResult] = None  # `--probe`: TensorFlow imported in a child process

    def unknown(self, fact: str) -> Optional[str]:
        """The reason `fact` (or a fact it is part of) is unknown, or None if it is known."""
        for u in self.unknowns:
            if fact == u.fact or fact.startswith(u.fact + "."):
                return u.reason
        return None

    def package(self, name: str) -> Optional[Package]:
        from packaging.utils import canonicalize_name

        want = canonicalize_name(name)
        for p in self.target.packages:
            if p.name == want:
                return p
        return None

    @property
    def tensorflow(self) -> Optional[TensorFlowBuild]:
        return self.target.tensorflow[0] if self.target.tensorflow else None


@dataclasses.dataclass(frozen=True)
class Evidence:
    fact: str
    value: str
    source: str  # which file or API said so


@dataclasses.dataclass(frozen=True)
class Finding:
    rule: str
    name: str
    severity: Severity
    message: str
    evidence: Tuple[Evidence, ...]
    remediation: str
    waived: Optional[str] = None  # reason, when an --ignore waived it


@dataclasses.dataclass(frozen=True)
class Skip:
    rule: str
    name: str
    reason: str


# ---------------------------------------------------------------------------
# JSON codec: generic over the dataclasses above, driven by their type hints.


class SnapshotError(TfcompatError):
    """A snapshot file that cannot be read back into an Environment."""


def to_json_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (tuple, list)):
        return [to_json_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_json_dict(v) for k, v in obj.items()}
    return obj


def from_json_dict(cls: Any, data: Any, where: str = "$", lenient: bool = False) -> Any:
    """Build `cls` from JSON data, with an error that names the offending field. `lenient`: skip fields this
    tfcompat does not know (a report of a newer release: additive changes within a schema_version)."""
    try:
        return _decoder(cls)(data, lenient)
    except _Bad as exc:
        raise SnapshotError(f"{where}{''.join(reversed(exc.path))}: {exc.args[0]}") from None


class _Bad(Exception):
    """A decoding error on its way up: each level adds its step to `path` (no path is built unless it fails)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.path: List[str] = []


Decoder = Callable[[Any, bool], Any]  # (data, lenient) -> value
_DECODERS: Dict[Any, Decoder] = {}


def _decoder(cls: Any) -> Decoder:
    """The decoder of a type, built once per type from its type hints. Typing introspection on every value
    took 2/3 of the time when the gate decodes 10,000 reports of ~400 values each; closures take ~1/5."""
    dec = _DECODERS.get(cls)
    if dec is None:
        dec = _DECODERS[cls] = _build_decoder(cls)
    return dec


def _build_decoder(cls: Any) -> Decoder:
    origin = typing.get_origin(cls)
    args = typing.get_args(cls)
    if origin is typing.Union:  # Optional[X]
        inner = _decoder([a for a in args if a is not type(None)][0])
        return lambda data, lenient: None if data is None else inner(data, lenient)
    if origin in (tuple, Tuple):
        item = _decoder(args[0])

        def tuple_of(data: Any, lenient: bool) -> Any:
            if not isinstance(data, list):
                raise _Bad(f"expected a list, got {type(data).__name__}")
            out = []
            for i, v in enumerate(data):
                try:
                    out.append(item(v, lenient))
                except _Bad as exc:
                    exc.path.append(f"[{i}]")
                    raise
            return tuple(out)

        return tuple_of
    if dataclasses.is_dataclass(cls):
        fields: List[Tuple[str, Decoder, bool]] = []  # filled on first use: a field's type may be this class
        make: Any = cls

        def dataclass_of(data: Any, lenient: bool) -> Any:
            if not fields:
                hints = _hints(make)
                fields.extend((f.name, _decoder(hints[f.name]), f.default is dataclasses.MISSING
                               and f.default_factory is dataclasses.MISSING) for f in dataclasses.fields(cls))
            if not isinstance(data, dict):
                raise _Bad(f"expected an object, got {type(data).__name__}")
            if not lenient:
                extra = set(data) - {name for name, _, _ in fields}
                if extra:
                    raise _Bad(f"unknown field {sorted(extra)[0]!r}")
            kwargs = {}
            for name, decode, required in fields:
                if name in data:
                    try:
                        kwargs[name] = decode(data[name], lenient)
                    except _Bad as exc:
                        exc.path.append(f".{name}")
                        raise
                elif required:
                    raise _Bad(f"missing field {name!r}")
            return make(**kwargs)

        return dataclass_of
    if isinstance(cls, type) and issubclass(cls, enum.Enum):

        def enum_of(data: Any, lenient: bool) -> Any:
            try:
                return cls(data)
            except ValueError:
                raise _Bad(f"{data!r} is not one of {[m.value for m in cls]}") from None

        return enum_of
    if cls is Any:
        return lambda data, lenient: data
    if cls in _SCALARS:
        ok, expected = _SCALARS[cls]

        def scalar(data: Any, lenient: bool) -> Any:
            if not ok(data):
                raise _Bad(f"expected {expected}, got {data!r}")
            return data

        return scalar
    raise TypeError(f"no JSON decoding for {cls!r}")  # programmer error


_SCALARS: Dict[Any, Tuple[Callable[[Any], bool], str]] = {
    bool: (lambda v: isinstance(v, bool), "true/false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    str: (lambda v: isinstance(v, str), "a string"),
}
_HINTS: dict = {}


def _hints(cls: type) -> dict:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls, vars(sys.modules[cls.__module__]))
    return _HINTS[cls]


def environment_from_json(data: Any) -> Environment:
    if not isinstance(data, dict):
        raise SnapshotError("$: expected a JSON object")
    # A full report embeds the environment; accept either.
    if "environment" in data and "schema_version" in data:
        if data["environment"] is None:
            raise SnapshotError(f"$: a report with status {data.get('status')!r} and no environment (tfcompat could "
                                "not scan there): nothing to judge")
        data = data["environment"]
    version = data.get("snapshot_version") if isinstance(data, dict) else None
    if version != SNAPSHOT_VERSION:
        raise SnapshotError(
            f"$.snapshot_version: {version!r} is not supported (this tfcompat reads {SNAPSHOT_VERSION})"
        )
    return from_json_dict(Environment, data)


REPORT_SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class MatrixInfo:
    path: str
    updated: str


@dataclasses.dataclass(frozen=True)
class Report:
    """The verdict. `status` and `exit_code` mean the same in every output format."""

    schema_version: int
    tool_version: str
    status: str  # "pass" | "fail" | "error" (could not decide)
    exit_code: int  # 0 | 1 | 2
    fail_on: Severity
    matrix: Optional[MatrixInfo]
    findings: Tuple[Finding, ...]
    skipped: Tuple[Skip, ...]
    errors: Tuple[str, ...]  # why tfcompat could not decide (status "error")
    environment: Optional[Environment]
