"""Which CUDA, cuDNN, NCCL and TensorRT libraries the installed TensorFlow will dlopen(), found as glibc would.

TensorFlow links none of them: ``tsl::internal::DsoLoader`` dlopen()s each by soname at run time, from
inside ``libtensorflow_framework.so.2``, so the search path is that object's DT_RUNPATH (not the union of
TF's libraries), then ``LD_LIBRARY_PATH``'s place in glibc's order, ``ld.so.cache`` and the default dirs.
On a node without a GPU TF only ever tries ``libcudart`` and ``libcuda``; this probe resolves every library
statically so that a missing or wrong cuDNN shows before the first GPU op on the production node.

For each library: the file that wins and the search step that found it, its version (the ``nvidia-*``
wheel or conda package that installed it, its real file name, ``cudnn_version.h``, a toolkit's ``version.json``),
every other copy on the search path, copies installed but not on it, and other sonames of the same library
(``libcudnn.so.8`` when ``.9`` is wanted). Also: the GLIBC/GLIBCXX/CXXABI versions TF's own objects and
the winning libraries need against the libc/libstdc++ the loader picks for them, and the CPU instructions
the build needs. Nothing is loaded or imported.

Which sonames a build asks for: library_specs.py; the version of one file: library_versions.py; here,
the resolution.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping, Sequence
from typing import Optional

from packaging.version import InvalidVersion, Version

from tfcompat.matrix import WorldFacts, shipped_facts
from tfcompat.model import (
    CondaPackage,
    LibraryCopy,
    LibraryResolution,
    NativeLibraries,
    Package,
    Platform,
    PythonInfo,
    TensorFlowBuild,
    Unknown,
)
from tfcompat.probes.budget import UNLIMITED, Budget
from tfcompat.probes.library_abi import abi_checks, is_driver_library
from tfcompat.probes.library_specs import LibrarySpec, tf_library_specs
from tfcompat.probes.library_versions import LibraryVersions
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
from tfcompat.probes.tensorflow import core_dirs

# The functions whose dlopen() is TF's: the object that defines one is the caller the loader searches for.
# tensorflow::internal::LoadLibrary is the name up to 2.3 (defined in libtensorflow_framework.so.1/.2 of the
# 1.14-2.3 wheels, read 2026-12-07; the 1.5-1.13 wheels link CUDA by DT_NEEDED instead).
_DLOPEN_WRAPPERS = (
    "_ZN3tsl8internal18LoadDynamicLibraryEPKcPPv",
    "_ZN10tensorflow8internal18LoadDynamicLibraryEPKcPPv",
    "_ZN10tensorflow8internal11LoadLibraryEPKcPPv",
)


# ---------------------------------------------------------------------------------------------------------
# The probe.


def _tf_objects(loader: Loader, package_dirs: Sequence[str]) -> list[str]:
    """TF's own shared objects (inside-root paths), in the order `import tensorflow` loads them, from the real
    package (tensorflow_core/ in the 1.15-2.1 layout, else tensorflow/)."""
    names = (
        "python/_pywrap_tensorflow_internal.so",
        "python/lib_pywrap_tensorflow_common.so",
        "libtensorflow_cc.so.2",
        "libtensorflow_framework.so.2",
        "libtensorflow_framework.so.1",
        "libtensorflow_framework.so",
    )
    for package_dir in package_dirs:
        inside = loader.root.display(package_dir)
        out = [f"{inside}/{n}" for n in names if loader.root.is_file(f"{inside}/{n}")]
        if out:
            return out
    return []


def _dlopen_caller(loader: Loader, objects: Sequence[str]) -> tuple[Optional[str], str]:
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


def _linked_versions(tf: TensorFlowBuild, objects: Sequence[LoadedObject]) -> TensorFlowBuild:
    """`tf` with the CUDA and cuDNN versions its own objects link by DT_NEEDED where build_info.py states none
    (the 1.5-1.13 wheels: libcudart.so.10.0 and libcudnn.so.7 are DT_NEEDED of libtensorflow_framework.so), so
    that the sonames it loads can be looked up. Only for choosing sonames; the snapshot keeps build_info's facts."""
    if not tf.is_cuda_build or (tf.cuda_version and tf.cudnn_version):
        return tf
    needed = [n for o in objects for n in o.elf.needed]
    cudart = next((n[len("libcudart.so.") :] for n in needed if n.startswith("libcudart.so.")), None)
    cudnn = next((n[len("libcudnn.so.") :] for n in needed if n.startswith("libcudnn.so.")), None)
    return dataclasses.replace(
        tf,
        cuda_version=tf.cuda_version or (cudart if cudart and _release_of(cudart) else None),
        cudnn_version=tf.cudnn_version or (cudnn if cudnn and _release_of(cudnn) else None),
    )


def _demangle(sym: str) -> str:
    return {
        "_ZN3tsl8internal18LoadDynamicLibraryEPKcPPv": "tsl::internal::LoadDynamicLibrary(char const*, void**)",
        "_ZN10tensorflow8internal18LoadDynamicLibraryEPKcPPv": (
            "tensorflow::internal::LoadDynamicLibrary(char const*, void**)"
        ),
        "_ZN10tensorflow8internal11LoadLibraryEPKcPPv": "tensorflow::internal::LoadLibrary(char const*, void**)",
    }.get(sym, sym)


def _wheel_lib_dirs(loader: Loader, root: Root, site_dirs: Sequence[str]) -> list[str]:
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
    def __init__(
        self,
        root: Root,
        tf: TensorFlowBuild,
        packages: Sequence[Package],
        site_dirs: Sequence[str],
        loader: Loader,
        conda: Sequence[CondaPackage] = (),
    ):
        self.root, self.tf, self.loader = root, tf, loader
        self.versions = LibraryVersions(root, packages, site_dirs, conda)
        # where installed copies lie off the search path: the wheels' dirs and the conda packages' lib dirs
        conda_dirs = [posixpath.dirname(p) for c in conda for p in c.libraries]
        self.wheel_dirs = list(dict.fromkeys(_wheel_lib_dirs(loader, root, site_dirs) + conda_dirs))

    def copy(self, c: Candidate, name: str, soname: str, winner: bool = False) -> LibraryCopy:
        """The LibraryCopy of `c`; the winner's also says what it needs (DT_NEEDED)."""
        version, source, dist = self.versions.of(name, soname, c.host_path, c.elf.soname if c.elf else None)
        return LibraryCopy(
            path=c.path,
            real_path=c.real,
            found_via=c.step,
            search_entry=c.written,
            owner=c.owner,
            version=version,
            version_source=source,
            distribution=dist,
            problem=c.problem,
            needed=c.elf.needed if winner and c.elf else (),
        )

    def resolve(
        self, spec: LibrarySpec, caller: Optional[LoadedObject], first_names: Sequence[str] = ()
    ) -> tuple[LibraryResolution, Optional[LoadedObject]]:
        """dlopen(spec.soname) from `caller`; `first_names` are tried before it (cuDNN's versioned names),
        the spec's fallbacks after it (TF's DsoLoader tries libcupti.so when libcupti.so.12 fails)."""
        names = list(first_names) + [spec.soname] + list(spec.fallbacks)
        for name in names:
            lk, obj = self.loader.load(name, caller)
            if lk.winner is not None:
                break
        found = self.copy(lk.winner, spec.name, spec.soname, winner=True) if lk.winner is not None else None
        others = [
            self.copy(c, spec.name, spec.soname)
            for c in lk.copies
            if c is not lk.winner and (lk.winner is None or c.real != lk.winner.real)
        ]
        reals = {c.real for c in lk.copies}
        extra = self.loader.copies_elsewhere(spec.soname, self.wheel_dirs, STEP_OFF_PATH)
        conf = list(self.loader.cfg.conf_dirs)
        extra += self.loader.copies_elsewhere(spec.soname, conf, STEP_CONF_ONLY)
        for c in extra:
            if c.real not in reals:
                reals.add(c.real)
                others.append(self.copy(c, spec.name, spec.soname))
        missing = []
        if obj is not None:
            missing = [
                f"{n} (needed by {self.root.display(by) if by.startswith('/') else by})"
                for n, by in self.loader.missing_deps(obj)
            ]
        return LibraryResolution(
            name=spec.name,
            soname=spec.soname,
            role=spec.role,
            purpose=spec.purpose,
            requested_by=caller.real if caller else None,
            found=found,
            others=tuple(others),
            missing_deps=tuple(missing),
            other_sonames=tuple(self.other_sonames(spec.soname, lk)),
        ), obj

    def other_sonames(self, soname: str, lk: Lookup) -> list[str]:
        """Other versions of the same library on the search path: 'libcudnn.so.8 in /usr/lib/... (ld.so.cache)'.
        One line per real file: on a merged-/usr system (/lib -> usr/lib) /lib/<triplet> and /usr/lib/<triplet>
        are one directory, and a soname link and its real file (libcudart.so.11.0 -> libcudart.so.11.8.89) are
        one library; the file the loader picked is no other version."""
        stem = soname.split(".so.", 1)[0] + ".so."
        out: list[str] = []
        seen = set()
        reals = {lk.winner.real} if lk.winner is not None else set()
        for sd in lk.searched:
            if sd.path is None:
                continue
            for entry in sorted(e for e in self.loader.listing(sd.path) if e.startswith(stem)):  # filter, then sort
                if entry != soname and entry[len(stem) : len(stem) + 1].isdigit():
                    key = f"{entry} in {sd.path.rstrip('/')}"
                    if key not in seen and self._new_real(posixpath.join(sd.path, entry), reals):
                        seen.add(key)
                        out.append(f"{key} ({sd.step})")
        cache = self.loader.cfg.cache
        if cache is not None:
            for e in cache.entries:
                if (
                    e.soname.startswith(stem)
                    and e.soname != soname
                    and e.flags == self.loader.flags
                    and e.soname[len(stem) : len(stem) + 1].isdigit()
                ):
                    key = f"{e.soname} in {posixpath.dirname(e.path)}"
                    if key not in seen and self._new_real(e.path, reals):
                        seen.add(key)
                        out.append(f"{key} (ld.so.cache)")
        return out[:12]

    def _new_real(self, path: str, reals: set) -> bool:
        """Whether the inside-root `path` is a file not named yet (adds it); a path that cannot be resolved is."""
        try:
            real = self.root.resolve(path)
        except OSError:
            return True
        if real in reals:
            return False
        reals.add(real)
        return True


def _release_of(version: Optional[str]) -> tuple[int, ...]:
    try:
        return Version(version or "").release
    except InvalidVersion:
        return ()


def probe_libraries(
    root: Root,
    tf: Optional[TensorFlowBuild],
    packages: Sequence[Package],
    site_dirs: Sequence[str],
    python: PythonInfo,
    platform: Platform,
    environ: Optional[Mapping[str, str]] = None,
    loader_config: Optional[LoaderConfig] = None,
    facts: Optional[WorldFacts] = None,
    budget: Budget = UNLIMITED,
    conda: Sequence[CondaPackage] = (),
) -> tuple[Optional[NativeLibraries], list[Unknown]]:
    """The libraries `tf` will load, resolved as glibc would from TF's own objects (see the module docstring).

    `loader_config` is the scan's loader model of the target (built once, shared with the other probes);
    `facts` the matrix's world facts (what TF dlopen()s, CPU needs), the shipped matrix's by default.
    `budget`: asked before each library is looked up; when it runs out, the libraries not looked up are
    left out and an Unknown "libraries" names them (the library rules are then skipped).
    `conda`: the target's conda packages (probes/conda.py); a file one of them lists gets its version."""
    facts = facts if facts is not None else shipped_facts()
    if tf is None:
        return None, []  # the tensorflow unknown already says why
    package_dirs = core_dirs(tf.location, root)
    if not package_dirs:
        return None, [
            Unknown(
                "libraries",
                f"{tf.distribution} {tf.version} has no tensorflow/ package directory in "
                f"{tf.location}: nothing to resolve libraries from",
            )
        ]
    environ = environ if root.is_host else None
    if loader_config is None:  # a caller outside scan(): build the target's loader model here
        executable = python.executable if python.executable and python.executable.startswith("/") else None
        loader_config = LoaderConfig.for_target(root, executable, environ, platform.cpu_flags)
    loader = Loader(loader_config)
    objects = _tf_objects(loader, package_dirs)
    if not objects:
        return None, [
            Unknown(
                "libraries",
                f"no libtensorflow_framework.so* or _pywrap_tensorflow_internal.so in "
                f"{', '.join(package_dirs)} (not a Linux build of TensorFlow?)",
            )
        ]
    try:
        read_elf(loader.host(objects[-1]) or objects[-1])
    except ElfError as exc:
        return None, [Unknown("libraries", f"cannot read TensorFlow's own library: {exc}")]
    machine = loader_config.machine
    unknowns: list[Unknown] = []
    exe = loader.load_executable()
    # TF's own objects, as `import tensorflow` dlopen()s them by path, each with its DT_NEEDED closure.
    loaded_tf: list[LoadedObject] = []
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
    specs, spec_unknowns = tf_library_specs(_linked_versions(tf, loaded_tf), facts)
    unknowns += spec_unknowns
    probe = _Probe(root, tf, packages, site_dirs, loader, conda)
    resolutions: list[LibraryResolution] = []
    lib_objects: list[LoadedObject] = []
    cudnn_obj: Optional[LoadedObject] = None
    cudnn_major: Optional[int] = None
    cut: list[str] = []
    for spec in specs:
        if budget.expired():
            cut.append(spec.soname)
            continue
        res, obj = probe.resolve(spec, caller)
        resolutions.append(res)
        if obj is not None and spec.role != "driver":
            lib_objects.append(obj)
        if spec.name == "cudnn":
            cudnn_obj, cudnn_major = obj, int(spec.soname.rsplit(".", 1)[-1])
    sublibraries = facts.cudnn_sublibraries(cudnn_major) if cudnn_major is not None else ()
    if cudnn_obj is not None and cudnn_major is not None and sublibraries:
        front = next(r for r in resolutions if r.name == "cudnn").found
        parts = _release_of(front.version) if front else ()
        for sub in sublibraries:
            if budget.expired():
                cut.append(sub)
                continue
            short = sub.split(".so")[0][len("lib") :]
            # cuDNN 9 asks for libcudnn_ops.so.9.28.0, then .so.9.28, then .so.9 (LD_DEBUG=libs, cuDNN 9.28).
            first = [
                f"{sub}.{'.'.join(map(str, parts[1:n]))}"
                for n in (3, 2)
                if cudnn_major >= 9 and len(parts) >= n and parts[0] == cudnn_major
            ]
            res, obj = probe.resolve(
                LibrarySpec(
                    short, sub, "cudnn-sublibrary", f"cuDNN sub-library, dlopen()ed by libcudnn.so.{cudnn_major}"
                ),
                cudnn_obj,
                first,
            )
            resolutions.append(res)
            if obj is not None:
                lib_objects.append(obj)
    if cut:
        unknowns.append(
            Unknown(
                "libraries",
                f"{budget.reason}: {len(cut)} libraries not looked up "
                f"({', '.join(cut[:4])}{', ...' if len(cut) > 4 else ''})",
            )
        )
    unknowns += [Unknown("libraries.versions", p) for p in probe.versions.problems]
    # Every need of TF's own objects; for the libraries it loads, only the needs that are not met.
    abi = abi_checks(loader, loaded_tf)
    abi += [
        c
        for c in abi_checks(loader, [o for o in lib_objects if o not in loaded_tf])
        if c.missing and not is_driver_library(c.library)
    ]
    cfg = loader.cfg
    cpu = facts.cpu_needs(tf.distribution, machine)
    llp = None
    if root.is_host and environ is not None and environ.get("LD_LIBRARY_PATH") is not None:
        llp = environ.get("LD_LIBRARY_PATH")
    native = NativeLibraries(
        caller=caller.real if caller else None,
        caller_source=caller_source,
        executable=exe.path if exe else None,
        ld_library_path=llp,
        ld_preload=cfg.ld_preload + cfg.preload_file,
        ld_so_cache=(
            f"{cfg.cache.path} ({cfg.cache.format} format, {len(cfg.cache.entries)} entries)" if cfg.cache else None
        ),
        ld_so_cache_problem=cfg.cache_problem,
        default_dirs=cfg.default_dirs,
        hwcaps=cfg.hwcaps,
        libraries=tuple(resolutions),
        abi=tuple(abi),
        cpu_instructions=cpu,
        cpu_instructions_source=facts.cpu_needs_source if cpu else "",
    )
    return native, unknowns
