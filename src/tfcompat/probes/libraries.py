"""Which CUDA, cuDNN, NCCL and TensorRT libraries the installed TensorFlow will dlopen(), found as glibc would.

TensorFlow links none of them: ``tsl::internal::DsoLoader`` dlopen()s each by soname at run time, from
inside ``libtensorflow_framework.so.2``, so the search path is that object's DT_RUNPATH (not the union of
TF's libraries), then ``LD_LIBRARY_PATH``'s place in glibc's order, ``ld.so.cache`` and the default dirs.
On a node without a GPU TF only ever tries ``libcudart`` and ``libcuda``; this probe resolves every library
statically so that a missing or wrong cuDNN shows before the first GPU op on the production node.

For each library: the file that wins and the search step that found it, its version (the ``nvidia-*``
wheel that installed it, its real file name, ``cudnn_version.h``, a CUDA toolkit's ``version.json``),
every other copy on the search path, copies installed but not on it, and other sonames of the same library
(``libcudnn.so.8`` when ``.9`` is wanted). Also: the GLIBC/GLIBCXX/CXXABI versions TF's own objects and
the winning libraries need against the libc/libstdc++ the loader picks for them, and the CPU instructions
the build needs. Nothing is loaded or imported.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import re
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from packaging.version import InvalidVersion, Version

from tfcompat.model import (
    LibraryCopy,
    LibraryResolution,
    NativeLibraries,
    Package,
    Platform,
    PythonInfo,
    TensorFlowBuild,
    Unknown,
    VersionNeedCheck,
)
from tfcompat.probes.native.elf import ElfError, ElfFile, read_elf
from tfcompat.probes.native.loader import (
    STEP_CONF_ONLY,
    STEP_OFF_PATH,
    STEP_PATH,
    Candidate,
    LoadedObject,
    Loader,
    LoaderConfig,
    Lookup,
)
from tfcompat.probes.rootfs import Root

# ---------------------------------------------------------------------------------------------------------
# The sonames TensorFlow dlopen()s, as data.
#
# CUDA 12: verified on tensorflow 2.21.0 and 2.15.1 Linux x86-64 wheels by calling TF's own
# tsl::internal::DsoLoader::Get<Lib>DsoHandle() in a child process under LD_DEBUG=libs (2026-11-25):
# libcudart.so.12, libcublas.so.12, libcublasLt.so.12, libcufft.so.11, libcusolver.so.11, libcusparse.so.12,
# libcudnn.so.<cuDNN major>, libnccl.so.2, libcupti.so.12, libcuda.so.1; 2.21 adds libnvshmem_host.so.3;
# 2.15.1 (is_tensorrt_build) asks for libnvinfer.so.8.6.1 / libnvinfer_plugin.so.8.6.1.
# tsl::internal::DsoLoader::TryDlopenCUDALibraries() (what TF runs before it registers GPUs: "Cannot dlopen
# some GPU libraries ... Skipping registering GPU devices") needs cudart, cublas, cublasLt, cufft, cusolver,
# cusparse, cudnn (2.21.0, same call).
# CUDA 11: TF's own "Successfully opened dynamic library" / "Could not load dynamic library" lines in public
# reports (tensorflow/tensorflow#44777, #45263, #45848): libcudart.so.11.0, libcublas.so.11,
# libcublasLt.so.11, libcufft.so.10, libcurand.so.10, libcusolver.so.11 (libcusolver.so.10 with CUDA 11.0),
# libcusparse.so.11, libcudnn.so.8.
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LibrarySpec:
    name: str
    soname: str
    role: str  # "gpu": TF registers no GPU without it; "feature"; "optional" (not installed by TF); "driver";
    # "cudnn-sublibrary"
    purpose: str
    fallbacks: Tuple[str, ...] = ()  # names TF tries when the soname is not found


_PURPOSE = {
    "cudart": "CUDA runtime",
    "cublas": "cuBLAS (matrix multiplication)",
    "cublasLt": "cuBLASLt (matrix multiplication)",
    "cufft": "cuFFT (FFT ops)",
    "curand": "cuRAND (random numbers)",
    "cusolver": "cuSOLVER (linear algebra)",
    "cusparse": "cuSPARSE (sparse ops)",
    "cudnn": "cuDNN (convolutions, RNNs)",
    "nccl": "NCCL (multi-GPU collectives)",
    "cupti": "CUPTI (profiler only)",
    "nvshmem": "NVSHMEM (optional XLA collectives)",
    "nvinfer": "TensorRT (TF-TRT only)",
    "nvinfer_plugin": "TensorRT plugins (TF-TRT only)",
    "cuda": "CUDA driver (installed with the NVIDIA driver, not with TensorFlow)",
}
_CUDA12 = (("cudart", "libcudart.so.12", "gpu"), ("cublas", "libcublas.so.12", "gpu"),
           ("cublasLt", "libcublasLt.so.12", "gpu"), ("cufft", "libcufft.so.11", "gpu"),
           ("cusolver", "libcusolver.so.11", "gpu"), ("cusparse", "libcusparse.so.12", "gpu"),
           ("nccl", "libnccl.so.2", "feature"), ("cupti", "libcupti.so.12", "feature"))
_CUDA11 = (("cudart", "libcudart.so.11.0", "gpu"), ("cublas", "libcublas.so.11", "gpu"),
           ("cublasLt", "libcublasLt.so.11", "gpu"), ("cufft", "libcufft.so.10", "gpu"),
           ("curand", "libcurand.so.10", "gpu"), ("cusolver", "libcusolver.so.11", "gpu"),
           ("cusparse", "libcusparse.so.11", "gpu"), ("nccl", "libnccl.so.2", "feature"))
# TensorRT sonames by TF release (build_info says only is_tensorrt_build, not which TensorRT).
_TENSORRT = (((2, 15), (2, 16), "8.6.1"),)
# cuDNN sub-libraries that libcudnn.so.<major> dlopen()s (cuDNN 8 / 9 API overview, docs.nvidia.com/deeplearning/cudnn).
CUDNN_SUBLIBRARIES = {
    8: ("libcudnn_ops_infer.so.8", "libcudnn_ops_train.so.8", "libcudnn_cnn_infer.so.8", "libcudnn_cnn_train.so.8",
        "libcudnn_adv_infer.so.8", "libcudnn_adv_train.so.8"),
    9: ("libcudnn_graph.so.9", "libcudnn_engines_precompiled.so.9", "libcudnn_engines_runtime_compiled.so.9",
        "libcudnn_heuristic.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_adv.so.9"),
}
# CPU instructions the x86-64 wheels are compiled for: AVX since TF 1.6 ("Prebuilt binaries will use AVX
# instructions", TF 1.6.0 release notes; `--copt=-mavx` in TF's release .bazelrc); intel-tensorflow-avx512
# for AVX-512. Without them `import tensorflow` aborts: "The TensorFlow library was compiled to use AVX
# instructions, but these aren't available on your machine."
CPU_NEEDS_SOURCE = "TensorFlow 1.6.0 release notes (https://github.com/tensorflow/tensorflow/releases/tag/v1.6.0)"
_CPU_NEEDS = {"intel-tensorflow-avx512": ("avx", "avx2", "avx512f")}
# The functions whose dlopen() is TF's: the object that defines one is the caller the loader searches for.
_DLOPEN_WRAPPERS = ("_ZN3tsl8internal18LoadDynamicLibraryEPKcPPv",
                    "_ZN10tensorflow8internal18LoadDynamicLibraryEPKcPPv")
# CUDA toolkit version.json component keys.
_TOOLKIT_KEYS = {"cudart": "cuda_cudart", "cublas": "libcublas", "cublasLt": "libcublas", "cufft": "libcufft",
                 "curand": "libcurand", "cusolver": "libcusolver", "cusparse": "libcusparse", "cupti": "cuda_cupti",
                 "nvJitLink": "libnvjitlink", "nccl": "nccl"}


def _release(version: str) -> Tuple[int, ...]:
    try:
        return Version(version).release
    except InvalidVersion:
        return ()


def tf_library_specs(tf: TensorFlowBuild) -> Tuple[List[LibrarySpec], List[Unknown]]:
    """The sonames `tf` will dlopen, in the order TF asks for them (the driver first)."""
    unknowns: List[Unknown] = []
    if not tf.is_cuda_build:
        return [], unknowns
    cuda = _release(tf.cuda_version or "")
    if not cuda:
        return [], [Unknown("libraries", f"{tf.distribution} {tf.version}: build_info.py has no CUDA version, so the "
                                         "sonames TensorFlow dlopen()s are unknown")]
    if cuda[0] == 12:
        table = list(_CUDA12)
    elif cuda[0] == 11:
        table = [(n, "libcusolver.so.10" if n == "cusolver" and cuda[:2] == (11, 0) else s, r) for n, s, r in _CUDA11]
    else:
        return [], [Unknown("libraries", f"tfcompat does not know which sonames a CUDA {tf.cuda_version} build of "
                                         f"TensorFlow dlopen()s")]
    specs = [LibrarySpec("cuda", "libcuda.so.1", "driver", _PURPOSE["cuda"])]
    cudnn_major = _release(tf.cudnn_version or "")[:1]
    for name, soname, role in table:
        # TF's DsoLoader falls back to the unversioned libcupti.so (LD_DEBUG=libs, TF 2.15.1 and 2.21.0).
        fallbacks = ("libcupti.so",) if name == "cupti" else ()
        specs.append(LibrarySpec(name, soname, role, _PURPOSE[name], fallbacks))
        if name == "cusparse":  # TryDlopenCUDALibraries order: ..., cusparse, cudnn
            if cudnn_major:
                specs.append(LibrarySpec("cudnn", f"libcudnn.so.{cudnn_major[0]}", "gpu", _PURPOSE["cudnn"]))
            else:
                unknowns.append(Unknown("libraries.cudnn", f"{tf.distribution} {tf.version}: build_info.py has no "
                                                           "cuDNN version"))
    tf_release = _release(tf.version)
    if tf_release[:2] >= (2, 21) and cuda[0] == 12:
        specs.append(LibrarySpec("nvshmem", "libnvshmem_host.so.3", "optional", _PURPOSE["nvshmem"]))
    if tf.is_tensorrt_build:
        trt = next((v for lo, hi, v in _TENSORRT if lo <= tf_release[:2] < hi), None)
        if trt:
            specs.append(LibrarySpec("nvinfer", f"libnvinfer.so.{trt}", "feature", _PURPOSE["nvinfer"]))
            specs.append(LibrarySpec("nvinfer_plugin", f"libnvinfer_plugin.so.{trt}", "feature",
                                     _PURPOSE["nvinfer_plugin"]))
        else:
            unknowns.append(Unknown("libraries.tensorrt", f"{tf.distribution} {tf.version} is a TensorRT build, but "
                                                          "tfcompat does not know which TensorRT soname it asks for"))
    return specs, unknowns


# ---------------------------------------------------------------------------------------------------------
# Versions of a library file.


class _Versions:
    """Version of a library file: nvidia-* wheel metadata, real file name, cudnn_version.h, toolkit version.json."""

    def __init__(self, root: Root, packages: Sequence[Package], site_dirs: Sequence[str]):
        self.root = root
        self.site_dirs = [d.rstrip("/") for d in site_dirs]
        self.packages = [p for p in packages if p.name.startswith(("nvidia-", "tensorrt"))]
        self._records: Dict[str, Dict[str, Package]] = {}
        self._headers: Dict[str, Optional[Tuple[str, str]]] = {}
        self._toolkit: Dict[str, Optional[Tuple[dict, str]]] = {}

    def _safe(self, host_path: str) -> str:
        """`host_path` re-resolved inside the root, so a symlink on the way cannot lead to the host."""
        if self.root.root is None:
            return host_path
        try:
            return self.root.path(self.root.display(host_path))
        except OSError:
            return os.path.join(self.root.root, ".tfcompat-unresolvable")  # too many links: read nothing

    def _record_map(self, site: str) -> Dict[str, Package]:
        if site not in self._records:
            out: Dict[str, Package] = {}
            for p in self.packages:
                if p.location.rstrip("/") != site or not p.metadata_path.endswith("METADATA"):
                    continue
                try:
                    with open(self._safe(os.path.join(os.path.dirname(p.metadata_path), "RECORD")),
                              encoding="utf-8") as fh:
                        for line in fh:
                            rel = line.split(",", 1)[0]
                            if ".so" in rel:
                                out[rel] = p
                except OSError:
                    continue
            self._records[site] = out
        return self._records[site]

    def distribution(self, host_path: str) -> Optional[Package]:
        for site in self.site_dirs:
            real_site = os.path.realpath(site)
            for base in {site, real_site}:
                if host_path.startswith(base + "/"):
                    return self._record_map(site).get(host_path[len(base) + 1:])
        return None

    def of(self, name: str, soname: str, host_path: str) -> Tuple[Optional[str], Optional[str], Optional[str]]:
        """(version, where it came from, distribution) of the library file at `host_path`."""
        pkg = self.distribution(host_path)
        if pkg is not None:
            return pkg.version, pkg.metadata_path, pkg.name
        prefix = soname.split(".so", 1)[0] + ".so."
        base = os.path.basename(host_path)
        if base.startswith(prefix) and re.fullmatch(r"\d+(\.\d+){2,}", base[len(prefix):]):
            return base[len(prefix):], f"file name {self.root.display(host_path)}", None
        if name.startswith("cudnn"):
            hdr = self._cudnn_header(os.path.dirname(host_path), soname)
            if hdr:
                return hdr
        toolkit = self._toolkit_version(os.path.dirname(host_path), name)
        if toolkit:
            return toolkit
        m = re.fullmatch(re.escape(prefix) + r"(\d+)(?:\.\d+)*", base)
        if m:  # only the major is known: libcupti.so.13
            return m.group(1), f"file name {self.root.display(host_path)} (major version only)", None
        return None, None, None

    def _cudnn_header(self, libdir: str, soname: str) -> Optional[Tuple[str, str, None]]:
        major = soname.rsplit(".", 1)[-1]
        shown_dir = self.root.display(libdir)
        candidates = [self._safe(os.path.join(os.path.dirname(libdir), "include", "cudnn_version.h"))]
        m = re.match(r"^/usr/lib/([^/]+)$", shown_dir)
        if m or shown_dir in ("/usr/lib64", "/usr/lib"):
            for rel in ("/usr/include/cudnn_version.h", f"/usr/include/{m.group(1) if m else ''}/cudnn_version_v{major}.h",
                        f"/usr/include/cudnn_version_v{major}.h"):
                try:
                    candidates.append(self.root.path(rel.replace("//", "/")))
                except OSError:
                    continue
        for path in candidates:
            if path in self._headers:
                hit = self._headers[path]
            else:
                hit = _read_cudnn_header(path, self.root)
                self._headers[path] = hit
            if hit and hit[0].split(".")[0] == major:
                return hit[0], hit[1], None
        return None

    def _toolkit_version(self, libdir: str, name: str) -> Optional[Tuple[str, str, None]]:
        key = _TOOLKIT_KEYS.get(name)
        if key is None:
            return None
        d = libdir
        for _ in range(4):
            d = os.path.dirname(d)
            if d in self._toolkit:
                found = self._toolkit[d]
            else:
                found = None
                path = self._safe(os.path.join(d, "version.json"))
                try:
                    with open(path, encoding="utf-8") as fh:
                        data = json.load(fh)
                    if isinstance(data, dict) and "cuda" in data:
                        found = (data, path)
                except (OSError, ValueError):
                    pass
                self._toolkit[d] = found
            if found:
                entry = found[0].get(key)
                if isinstance(entry, dict) and entry.get("version"):
                    return str(entry["version"]), self.root.display(found[1]), None
                return None
        return None


_CUDNN_DEFINE = re.compile(rb"#define\s+CUDNN_(MAJOR|MINOR|PATCHLEVEL)\s+(\d+)")


def _read_cudnn_header(path: str, root: Root) -> Optional[Tuple[str, str]]:
    try:
        with open(path, "rb") as fh:
            text = fh.read(1 << 16)
    except OSError:
        return None
    found = {k.decode(): v.decode() for k, v in _CUDNN_DEFINE.findall(text)}
    if "MAJOR" not in found:
        return None
    version = ".".join(found.get(k, "0") for k in ("MAJOR", "MINOR", "PATCHLEVEL"))
    return version, root.display(path)


# ---------------------------------------------------------------------------------------------------------
# The probe.


def _tf_objects(loader: Loader, package_dir: str) -> List[str]:
    """TF's own shared objects (inside-root paths), in the order `import tensorflow` loads them."""
    names = ("python/_pywrap_tensorflow_internal.so", "python/lib_pywrap_tensorflow_common.so",
             "libtensorflow_cc.so.2", "libtensorflow_framework.so.2", "libtensorflow_framework.so.1",
             "libtensorflow_framework.so")
    inside = loader.root.display(package_dir)
    out = []
    for n in names:
        host = loader.host(f"{inside}/{n}")
        if host is not None and os.path.isfile(host):
            out.append(f"{inside}/{n}")
    return out


def _dlopen_caller(loader: Loader, objects: Sequence[str]) -> Tuple[Optional[str], str]:
    """The TF object whose dlopen() loads the CUDA libraries: the one defining TF's LoadDynamicLibrary."""
    for path in objects:
        host = loader.host(path)
        if host is None:
            continue
        try:
            with ElfFile(host) as elf:
                for sym in _DLOPEN_WRAPPERS:
                    if any(s.defined for s in elf.lookup(sym)):
                        return path, f"defines {_demangle(sym)}, the function that calls dlopen()"
        except ElfError:
            continue
    framework = next((p for p in objects if "libtensorflow_framework" in p), None)
    if framework:
        return framework, "assumed: no TensorFlow object exports LoadDynamicLibrary"
    return (objects[-1] if objects else None), "assumed"


def _demangle(sym: str) -> str:
    return {"_ZN3tsl8internal18LoadDynamicLibraryEPKcPPv": "tsl::internal::LoadDynamicLibrary(char const*, void**)",
            "_ZN10tensorflow8internal18LoadDynamicLibraryEPKcPPv":
                "tensorflow::internal::LoadDynamicLibrary(char const*, void**)"}.get(sym, sym)


def _wheel_lib_dirs(loader: Loader, root: Root, site_dirs: Sequence[str]) -> List[str]:
    """Inside-root dirs where nvidia-*/tensorrt wheels put libraries: <site>/nvidia/*/lib, <site>/tensorrt*."""
    out = []
    for site in site_dirs:
        inside = root.display(site)
        for sub in sorted(loader.listing(inside + "/nvidia")):
            if loader.listing(f"{inside}/nvidia/{sub}/lib"):
                out.append(f"{inside}/nvidia/{sub}/lib")
        for sub in sorted(loader.listing(inside)):
            if sub.startswith("tensorrt"):
                out.append(f"{inside}/{sub}")
    return out


class _Probe:
    def __init__(self, root: Root, tf: TensorFlowBuild, packages: Sequence[Package], site_dirs: Sequence[str],
                 loader: Loader):
        self.root, self.tf, self.loader = root, tf, loader
        self.versions = _Versions(root, packages, site_dirs)
        self.wheel_dirs = _wheel_lib_dirs(loader, root, site_dirs)

    def copy(self, c: Candidate, name: str, soname: str) -> LibraryCopy:
        version, source, dist = self.versions.of(name, soname, c.host_path)
        return LibraryCopy(path=c.path, real_path=c.real, found_via=c.step, search_entry=c.written,
                           owner=c.owner, version=version, version_source=source, distribution=dist,
                           problem=c.problem)

    def resolve(self, spec: LibrarySpec, caller: Optional[LoadedObject], first_names: Sequence[str] = ()
                ) -> Tuple[LibraryResolution, Optional[LoadedObject]]:
        """dlopen(spec.soname) from `caller`; `first_names` are tried before it (cuDNN's versioned names),
        the spec's fallbacks after it (TF's DsoLoader tries libcupti.so when libcupti.so.12 fails)."""
        names = list(first_names) + [spec.soname] + list(spec.fallbacks)
        for name in names:
            lk, obj = self.loader.load(name, caller)
            if lk.winner is not None:
                break
        found = self.copy(lk.winner, spec.name, spec.soname) if lk.winner is not None else None
        others = [self.copy(c, spec.name, spec.soname) for c in lk.copies if c is not lk.winner
                  and (lk.winner is None or c.real != lk.winner.real)]
        reals = {c.real for c in lk.copies}
        extra = self.loader.copies_elsewhere(spec.soname, self.wheel_dirs, STEP_OFF_PATH)
        conf = [d for d in self.loader.cfg.conf_dirs]
        extra += self.loader.copies_elsewhere(spec.soname, conf, STEP_CONF_ONLY)
        for c in extra:
            if c.real not in reals:
                reals.add(c.real)
                others.append(self.copy(c, spec.name, spec.soname))
        missing = []
        if obj is not None:
            missing = [f"{n} (needed by {self.root.display(by) if by.startswith('/') else by})"
                       for n, by in self.loader.missing_deps(obj)]
        return LibraryResolution(
            name=spec.name, soname=spec.soname, role=spec.role, purpose=spec.purpose,
            requested_by=caller.real if caller else None, found=found, others=tuple(others),
            missing_deps=tuple(missing), other_sonames=tuple(self.other_sonames(spec.soname, lk)),
        ), obj

    def other_sonames(self, soname: str, lk: Lookup) -> List[str]:
        """Other versions of the same library on the search path: 'libcudnn.so.8 in /usr/lib/... (ld.so.cache)'."""
        stem = soname.split(".so.", 1)[0] + ".so."
        out: List[str] = []
        seen = set()
        for sd in lk.searched:
            if sd.path is None:
                continue
            for entry in sorted(self.loader.listing(sd.path)):
                if entry.startswith(stem) and entry != soname and entry[len(stem):len(stem) + 1].isdigit():
                    key = f"{entry} in {sd.path.rstrip('/')}"
                    if key not in seen:
                        seen.add(key)
                        out.append(f"{key} ({sd.step})")
        cache = self.loader.cfg.cache
        if cache is not None:
            for e in cache.entries:
                if e.soname.startswith(stem) and e.soname != soname and e.flags == self.loader.flags \
                        and e.soname[len(stem):len(stem) + 1].isdigit():
                    key = f"{e.soname} in {posixpath.dirname(e.path)}"
                    if key not in seen:
                        seen.add(key)
                        out.append(f"{key} (ld.so.cache)")
        return out[:12]


def _abi_checks(loader: Loader, objects: Iterable[LoadedObject], root: Root) -> List[VersionNeedCheck]:
    out: List[VersionNeedCheck] = []
    for obj in objects:
        for need in obj.elf.version_needs:
            provider = obj.deps.get(need.file)
            if provider is None and need.file in loader.loaded:
                provider = loader.loaded[need.file]
            if provider is not None:
                defined = set(provider.elf.version_defs)
                missing = tuple(v for v in need.versions if v not in defined)
                highest = tuple(_highest(provider.elf.version_defs, v) for v in _families(need.versions))
                out.append(VersionNeedCheck(obj.real, need.file, tuple(sorted(need.versions, key=_vkey)),
                                            provider.real, provider.step, missing, tuple(h for h in highest if h)))
            else:
                out.append(VersionNeedCheck(obj.real, need.file, tuple(sorted(need.versions, key=_vkey)), None,
                                            None, tuple(need.versions), ()))
    return out


def _is_driver_library(soname: str) -> bool:
    """Installed with the NVIDIA driver, not with TensorFlow: the driver rules judge those."""
    return soname.startswith(("libcuda.so", "libnvidia-", "libnvcuvid", "libcudadebugger"))


def _vkey(v: str) -> Tuple:
    prefix, _, num = v.rpartition("_")
    return (prefix, tuple(int(x) if x.isdigit() else 0 for x in num.split(".")))


def _families(versions: Iterable[str]) -> List[str]:
    return sorted({v.rpartition("_")[0] for v in versions if "_" in v and v.rpartition("_")[0]})


def _highest(defined: Iterable[str], family: str) -> Optional[str]:
    same = [v for v in defined if v.rpartition("_")[0] == family and re.match(r"^[\d.]+$", v.rpartition("_")[2])]
    return max(same, key=_vkey) if same else None


def probe_libraries(root: Root, tf: Optional[TensorFlowBuild], packages: Sequence[Package],
                    site_dirs: Sequence[str], python: PythonInfo, platform: Platform,
                    environ: Optional[Mapping[str, str]] = None, loader_config: Optional[LoaderConfig] = None
                    ) -> Tuple[Optional[NativeLibraries], List[Unknown]]:
    """The libraries `tf` will load, resolved as glibc would from TF's own objects (see the module docstring).

    `loader_config` is the scan's loader model of the target (built once, shared with the other probes)."""
    if tf is None:
        return None, []  # the tensorflow unknown already says why
    if not tf.package_dir or not os.path.isdir(tf.package_dir):
        return None, [Unknown("libraries", f"{tf.distribution} {tf.version} has no tensorflow/ package directory in "
                                           f"{tf.location}: nothing to resolve libraries from")]
    environ = environ if root.is_host else None
    if loader_config is None:  # a caller outside scan(): build the target's loader model here
        executable = python.executable if python.executable and python.executable.startswith("/") else None
        loader_config = LoaderConfig.for_target(root, executable, environ, platform.cpu_flags)
    loader = Loader(loader_config)
    objects = _tf_objects(loader, tf.package_dir)
    if not objects:
        return None, [Unknown("libraries", f"no libtensorflow_framework.so* or _pywrap_tensorflow_internal.so in "
                                           f"{tf.package_dir} (not a Linux build of TensorFlow?)")]
    try:
        read_elf(loader.host(objects[-1]) or objects[-1])
    except ElfError as exc:
        return None, [Unknown("libraries", f"cannot read TensorFlow's own library: {exc}")]
    machine = loader_config.machine
    unknowns: List[Unknown] = []
    exe = loader.load_executable()
    # TF's own objects, as `import tensorflow` dlopen()s them by path, each with its DT_NEEDED closure.
    loaded_tf: List[LoadedObject] = []
    for path in objects:
        obj = loader.load_path(path, STEP_PATH, parent=exe)
        if obj is not None and obj not in loaded_tf:
            loaded_tf.append(obj)
    caller_path, caller_source = _dlopen_caller(loader, objects)
    caller = None
    if caller_path:
        host = loader.host(caller_path)
        caller = loader.by_real.get(loader.inside(host)) if host else None
        if caller is None:
            caller = loader.load_path(caller_path, STEP_PATH, parent=exe)
    specs, spec_unknowns = tf_library_specs(tf)
    unknowns += spec_unknowns
    probe = _Probe(root, tf, packages, site_dirs, loader)
    resolutions: List[LibraryResolution] = []
    lib_objects: List[LoadedObject] = []
    cudnn_obj: Optional[LoadedObject] = None
    cudnn_major: Optional[int] = None
    for spec in specs:
        res, obj = probe.resolve(spec, caller)
        resolutions.append(res)
        if obj is not None and spec.role != "driver":
            lib_objects.append(obj)
        if spec.name == "cudnn":
            cudnn_obj, cudnn_major = obj, int(spec.soname.rsplit(".", 1)[-1])
    if cudnn_obj is not None and cudnn_major in CUDNN_SUBLIBRARIES:
        front = next(r for r in resolutions if r.name == "cudnn").found
        parts = _release(front.version or "") if front else ()
        for sub in CUDNN_SUBLIBRARIES[cudnn_major]:
            short = sub.split(".so")[0][len("lib"):]
            # cuDNN 9 asks for libcudnn_ops.so.9.28.0, then .so.9.28, then .so.9 (LD_DEBUG=libs, cuDNN 9.28).
            first = [f"{sub}.{'.'.join(map(str, parts[1:n]))}" for n in (3, 2)
                     if cudnn_major >= 9 and len(parts) >= n and parts[0] == cudnn_major]
            res, obj = probe.resolve(LibrarySpec(short, sub, "cudnn-sublibrary",
                                                 f"cuDNN sub-library, dlopen()ed by libcudnn.so.{cudnn_major}"),
                                     cudnn_obj, first)
            resolutions.append(res)
            if obj is not None:
                lib_objects.append(obj)
    # Every need of TF's own objects; for the libraries it loads, only the needs that are not met.
    abi = _abi_checks(loader, loaded_tf, root)
    abi += [c for c in _abi_checks(loader, [o for o in lib_objects if o not in loaded_tf], root)
            if c.missing and not _is_driver_library(c.library)]
    cfg = loader.cfg
    cpu = ()
    if machine == "x86_64":
        cpu = _CPU_NEEDS.get(tf.distribution, ("avx",))
    llp = None
    if root.is_host and environ is not None and environ.get("LD_LIBRARY_PATH") is not None:
        llp = environ.get("LD_LIBRARY_PATH")
    native = NativeLibraries(
        caller=caller.real if caller else None,
        caller_source=caller_source,
        executable=exe.path if exe else None,
        ld_library_path=llp,
        ld_preload=cfg.ld_preload + cfg.preload_file,
        ld_so_cache=(f"{cfg.cache.path} ({cfg.cache.format} format, {len(cfg.cache.entries)} entries)"
                     if cfg.cache else None),
        ld_so_cache_problem=cfg.cache_problem,
        default_dirs=cfg.default_dirs,
        hwcaps=cfg.hwcaps,
        libraries=tuple(resolutions),
        abi=tuple(abi),
        cpu_instructions=cpu,
        cpu_instructions_source=CPU_NEEDS_SOURCE if cpu else "",
    )
    return native, unknowns
