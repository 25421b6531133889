"""Facts that belong to the Python environment: interpreter, packages, TensorFlow builds, the native
libraries the loader will pick, custom ops."""

from __future__ import annotations

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class PythonInfo:
    """The target's Python interpreter: executable, version, implementation, sys.path, and how we learnt it."""

    executable: Optional[str]
    version: Optional[str]  # "3.11.7"
    implementation: str = "cpython"
    sys_path: tuple[str, ...] = ()
    source: str = ""  # how we learnt it: "running interpreter", "subprocess: /venv/bin/python", ...


@dataclasses.dataclass(frozen=True)
class Package:
    """An installed distribution, as its metadata states it, and who installed it from where."""

    name: str  # canonical (PEP 503) name
    version: str
    location: str  # the sys.path entry (site-packages dir) it was found in
    metadata_path: str
    requires: tuple[str, ...] = ()  # raw Requires-Dist lines
    requires_python: Optional[str] = None
    display_name: str = ""
    # provenance (issue 14): who installed it and from where
    installer: Optional[str] = None  # INSTALLER's first line: "pip", "uv", "conda", ...
    direct_url: Optional[str] = None  # direct_url.json's "url" (PEP 610): not installed from an index
    origin: Optional[str] = None  # direct_url.json's kind: "editable", "dir", "vcs", "archive"
    top_level: tuple[str, ...] = ()  # the import packages it installs (top_level.txt; RECORD for *tensorflow*)


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
    compute_capabilities: tuple[str, ...] = ()
    is_cuda_build: Optional[bool] = None
    is_rocm_build: Optional[bool] = None
    is_tensorrt_build: Optional[bool] = None
    cpu_compiler: Optional[str] = None
    wheel_tags: tuple[str, ...] = ()
    wheel_path: Optional[str] = None
    metadata_path: Optional[str] = None
    # What TF's own CUDA objects carry, from the SASS/PTX entries of their .nv_fatbin sections: read when
    # build_info lists no compute capabilities or the build is not a pip-installed wheel (probes/native/fatbin).
    binary_capabilities: tuple[str, ...] = ()  # "sm_60" ... SASS, "compute_90" ... PTX, in architecture order
    binary_capabilities_source: Optional[str] = None  # the objects read, comma-separated; None: not read
    # -- ROCm binary facts (issue 14): TF's own ROCm-linked objects, read from the files ----------------
    rocm_objects: tuple[RocmObject, ...] = ()
    # ABI floors read from the build's own files (probes.tensorflow.read_abi_facts): TFC110, TFC111
    pb2_path: Optional[str] = None  # the generated module read: tensorflow/core/framework/graph_pb2.py
    pb2_gencode: Optional[str] = None  # "descriptors" (built directly: protoc < 3.19) or "pool" (protoc >= 3.19)
    pb2_protobuf: Optional[str] = None  # its "Protobuf Python Version" header (protoc >= 25 writes one)
    numpy_headers_path: Optional[str] = None  # the _numpyconfig.h TF ships (the headers it was compiled with)
    numpy_built_with: Optional[str] = None  # the NumPy minor those headers name ("1.21")
    numpy_c_api: Optional[str] = None  # their NPY_API_VERSION ("0xe")


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
    distribution: Optional[str] = None  # the nvidia-* wheel that installed it, or a conda package: "conda-forge::cudnn"
    problem: Optional[str] = None  # why the loader cannot use it (not ELF, another ELF class, ...)
    # DT_NEEDED of the copy the loader picks (others: empty): a libcusolver.so.11 that needs libcublas.so.11
    # is a CUDA 11 build, whatever TensorFlow's CUDA 12 asked for by the same soname
    needed: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class LibraryResolution:
    """A library TensorFlow dlopen()s: which file wins, how, and every other copy."""

    name: str  # "cudnn", "cublasLt", "cudnn_ops"
    soname: str  # "libcudnn.so.9"
    role: str  # "gpu" (no GPU without it), "feature", "driver", "cudnn-sublibrary"
    purpose: str
    requested_by: Optional[str]  # the calling object whose search path applies
    found: Optional[LibraryCopy]  # the winner; None: not found
    others: tuple[LibraryCopy, ...] = ()  # other copies: later on the search path, or installed off it
    missing_deps: tuple[str, ...] = ()  # "libnvJitLink.so.12 (needed by /.../libcusolver.so.11)"
    other_sonames: tuple[str, ...] = ()  # "libcudnn.so.8 in /usr/lib/x86_64-linux-gnu (ld.so.cache)"


@dataclasses.dataclass(frozen=True)
class VersionNeedCheck:
    """Symbol versions an object needs from one DT_NEEDED library, against the file the loader picks."""

    object: str  # TF's own object (or a library it loads)
    library: str  # the DT_NEEDED name: "libstdc++.so.6"
    needed: tuple[str, ...]  # from .gnu.version_r
    provider: Optional[str]  # the file the loader picks for it; None: not found
    provider_found_via: Optional[str]
    missing: tuple[str, ...] = ()  # needed versions the provider's .gnu.version_d does not define
    provider_highest: tuple[str, ...] = ()  # the provider's highest version of each needed family


@dataclasses.dataclass(frozen=True)
class NativeLibraries:
    """The native libraries TensorFlow will load, resolved with a model of glibc's loader."""

    caller: Optional[str]  # the object whose dlopen() TF uses (its DT_RUNPATH is the search path)
    caller_source: str
    executable: Optional[str] = None  # the interpreter, whose DT_NEEDED closure is loaded first
    ld_library_path: Optional[str] = None  # host only; never read under --root
    ld_preload: tuple[str, ...] = ()  # LD_PRELOAD and /etc/ld.so.preload entries
    ld_so_cache: Optional[str] = None  # "/etc/ld.so.cache (new format, 536 entries)"
    ld_so_cache_problem: Optional[str] = None
    default_dirs: tuple[str, ...] = ()
    hwcaps: tuple[str, ...] = ()  # glibc-hwcaps subdirectories searched
    libraries: tuple[LibraryResolution, ...] = ()
    abi: tuple[VersionNeedCheck, ...] = ()
    cpu_instructions: tuple[str, ...] = ()  # /proc/cpuinfo flag names the build needs ("avx")
    cpu_instructions_source: str = ""


@dataclasses.dataclass(frozen=True)
class CustomOp:
    """One plugin (custom-op library, pybind module linking TF) checked against the installed TF."""

    owner: str  # the distribution that installed it, or "--op"
    path: str
    ok: bool
    problem: Optional[str] = None  # why it could not be checked
    missing_libraries: tuple[str, ...] = ()  # DT_NEEDED entries that resolve nowhere
    missing_versions: tuple[str, ...] = ()  # "GLIBCXX_3.4.30 (libstdc++.so.6: /usr/lib/...)"
    undefined_count: int = 0  # non-weak undefined symbols nothing in scope defines
    undefined: tuple[str, ...] = ()  # the first few, mangled (TF, abseil and C API names first)
    demangled: tuple[str, ...] = ()  # the same, demangled where c++filt was available
    reasons: tuple[str, ...] = ()  # prose written by tfcompat <= 0.1.0 scans; empty now: rules explain
    abseil: tuple[str, ...] = ()  # abseil LTS namespaces the missing names come from
    build_id: Optional[str] = None  # GNU build-id: identifies the build across nodes
    namespaces: tuple[str, ...] = ()  # C++ namespaces of the missing names: tensorflow, tsl, xla, absl
    c_api: tuple[str, ...] = ()  # missing TensorFlow C API names (TF_*), the first few in symbol-table order
    old_string_abi: bool = False  # references the pre-C++11 std::string ABI (_ZNSs*, _ZNKSs*)


@dataclasses.dataclass(frozen=True)
class CondaPackage:
    """A CUDA library (or TensorFlow) package a conda environment installed: its conda-meta/*.json record."""

    name: str  # "cudnn", "cudatoolkit", "cuda-cudart", "tensorflow-base"
    version: str  # as conda states it: "8.1.0.77"
    build: str  # build string: "h90431f1_0"; conda-forge TF builds name their CUDA in it ("cuda112py39h...")
    channel: str  # "conda-forge", "pkgs/main", or the channel URL when it names no known host
    prefix: str  # the environment (the directory that holds conda-meta/), inside --root
    record_path: str  # <prefix>/conda-meta/<name>-<version>-<build>.json, inside --root
    build_number: Optional[int] = None
    subdir: Optional[str] = None  # "linux-64"
    libraries: tuple[str, ...] = ()  # the shared objects its `files` list (lib/lib*.so*), inside --root


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Where the environment's TensorFlow may come from, beyond its own metadata (issue 14)."""

    ngc_version: Optional[str] = None  # NVIDIA_TENSORFLOW_VERSION of an NGC image ("23.03-tf1")
    ngc_build_id: Optional[str] = None  # NVIDIA_BUILD_ID
    ngc_source: Optional[str] = None  # where it was read: "$NVIDIA_TENSORFLOW_VERSION", an Apptainer env file
    conda_meta: Optional[str] = None  # the conda-meta/ directory of the environment holding TensorFlow


@dataclasses.dataclass(frozen=True)
class Target:
    """The Python environment the job will use (a venv, a conda env, an image)."""

    root: Optional[str] = None  # --root sysroot, if any
    python: PythonInfo = dataclasses.field(default_factory=lambda: PythonInfo(None, None))
    site_packages: tuple[str, ...] = ()
    packages: tuple[Package, ...] = ()
    shadowed_packages: tuple[Package, ...] = ()  # same name found again later on sys.path
    tensorflow: tuple[TensorFlowBuild, ...] = ()  # every TF distribution found, effective one first
    native: Optional[NativeLibraries] = None  # CUDA/cuDNN/... libraries TF will load (issue 4)
    custom_ops: tuple[CustomOp, ...] = ()  # plugins that link TensorFlow, checked symbol by symbol
    # conda environments (issue 14): the conda-meta records of CUDA libraries and TensorFlow, in prefix order
    conda_packages: tuple[CondaPackage, ...] = ()
    # provenance (issue 14)
    provenance: Optional[Provenance] = None
    libtensorflow: tuple[LibraryCopy, ...] = ()  # the TensorFlow C library (libtensorflow.so.N), the loader's first


@dataclasses.dataclass(frozen=True)
class RocmObject:
    """One of TensorFlow's own objects that links ROCm: what it needs and what GPU code it carries (issue 14)."""

    path: str  # inside --root
    rocm_needed: tuple[str, ...] = ()  # its DT_NEEDED ROCm libraries: "libamdhip64.so.5", "librccl.so.1"
    rocm_resolved: tuple[str, ...] = ()  # the file the loader picks for each found: "libamdhip64.so.5 -> /opt/..."
    build_rocm: tuple[str, ...] = ()  # RUNPATH/RPATH entries naming the build machine's ROCm: "/opt/rocm-3.5.0/lib"
    offload_section: Optional[int] = None  # bytes of its .hip_fatbin section; None: it has none
    offload_bundles: int = 0  # clang offload bundles read there
    offload_compressed: int = 0  # compressed bundles whose targets could not be read
    offload_ids: tuple[str, ...] = ()  # distinct bundle entry IDs: "hipv4-amdgcn-amd-amdhsa--gfx90a"
    gfx_targets: tuple[str, ...] = ()  # the GPU processors of those entries: "gfx90a"
    offload_problems: tuple[str, ...] = ()  # why (part of) the section could not be read
    checked: bool = False  # resolved against the loader model (libraries and symbols)
    missing_libraries: tuple[str, ...] = ()  # DT_NEEDED entries (of it or its closure) the loader finds nowhere
    missing_versions: tuple[str, ...] = ()  # "hip_6.0 (libamdhip64.so.6: /opt/rocm-6.0.0/lib/libamdhip64.so.6)"
    undefined_count: int = 0  # undefined symbols nothing in scope defines
    undefined: tuple[str, ...] = ()  # the first few
    problem: Optional[str] = None  # why it could not be read or checked
