"""3xx: the CUDA, cuDNN, NCCL and TensorRT libraries TensorFlow will load, and the ABI they meet.

These rules judge what ``probes/libraries.py`` found with its model of glibc's loader
(``env.target.native``); they read no file themselves.
"""

from __future__ import annotations

import posixpath
from typing import Dict, Iterator, List, Optional, Tuple, Union

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, LibraryCopy, LibraryResolution, NativeLibraries, Severity
from tfcompat.rules._common import tf_label, version_of
from tfcompat.units import short_path

Result = Iterator[Union[Hit, NotApplicable]]

_OFF_PATH = ("installed, not on the search path", "ld.so.conf dir, not in ld.so.cache")
_TF_OBJECTS = ("libtensorflow_framework.so", "libtensorflow_cc.so", "_pywrap_tensorflow_internal.so",
               "lib_pywrap_tensorflow_common.so")


# -- helpers -------------------------------------------------------------------------------------------


def _native(env: Environment) -> Optional[NativeLibraries]:
    return env.target.native


def _cuda_libraries(env: Environment) -> Tuple[Optional[NativeLibraries], Optional[NotApplicable]]:
    """The resolved libraries of a CUDA build, or why there is nothing to judge."""
    tf = env.tensorflow
    native = _native(env)
    assert tf is not None
    if native is None:
        return None, NotApplicable("the libraries TensorFlow loads were not resolved (no snapshot data)")
    if tf.is_rocm_build:
        return None, NotApplicable(f"{tf_label(tf)} is a ROCm build: it loads no CUDA library (4xx rules)")
    if tf.is_cuda_build is False:
        return None, NotApplicable(f"{tf_label(tf)} is a CPU-only build: it loads no CUDA library")
    if not native.libraries:
        return None, NotApplicable(f"no CUDA library list for {tf_label(tf)}")
    return native, None


def gpu_presence(env: Environment) -> Tuple[bool, str, Evidence]:
    """(GPUs present?, how to say it, evidence). A loaded NVIDIA kernel module counts as GPUs present."""
    gpus = env.host.gpus
    if gpus:
        names = ", ".join(sorted({g.name or "unknown model" for g in gpus}))
        return True, f"this node has {len(gpus)} GPU{'s' if len(gpus) != 1 else ''} ({names})", \
            Evidence("gpus", f"{len(gpus)} ({names})", "NVML")
    d = env.host.driver
    if d is not None and d.kernel_module_version:
        return True, f"this node has the NVIDIA driver {d.kernel_module_version} loaded", \
            Evidence("driver.version", d.kernel_module_version, d.kernel_module_source or "/proc/driver/nvidia/version")
    reason = env.unknown("gpus") or "NVML lists no GPU"
    if env.target.root or (env.unknown("gpus") and not reason.startswith("no NVIDIA driver")):
        # an image, or NVML not asked / failing: the GPUs are unknown, not absent
        return False, f"GPUs unknown ({reason})", Evidence("gpus", "unknown", reason)
    return False, "this node has no GPU", Evidence("gpus", "none", reason)


def _via(c: LibraryCopy) -> str:
    if c.found_via in ("DT_RUNPATH", "DT_RPATH") and c.owner:
        return f"{c.found_via} {c.search_entry} of {posixpath.basename(c.owner)}"
    if c.found_via in ("LD_LIBRARY_PATH", "default path") and c.search_entry:
        return f"{c.found_via} {c.search_entry}"
    return c.search_entry if c.found_via == "already loaded" else c.found_via


def describe(c: LibraryCopy) -> str:
    """'/x/libcudnn.so.9 (nvidia-cudnn-cu12 9.28.0.42, via DT_RUNPATH ... of libtensorflow_framework.so.2)'."""
    version = f"{c.distribution} {c.version}" if c.distribution else (c.version or "version unknown")
    if c.found_via in _OFF_PATH:
        return f"{c.real_path} ({version})"
    return f"{c.real_path} ({version}, via {_via(c)})"


def copy_evidence(lib: LibraryResolution, c: LibraryCopy, fact: Optional[str] = None) -> Evidence:
    return Evidence(fact or f"library {lib.soname}", f"{c.real_path} ({c.version or 'version unknown'}, "
                    f"{c.found_via})", c.version_source or c.real_path)


def _is_driver_soname(name: str) -> bool:
    return name.startswith(("libcuda.so", "libnvidia-", "libnvcuvid", "libcudadebugger"))


def _real_missing_deps(lib: LibraryResolution) -> List[str]:
    return [m for m in lib.missing_deps if not _is_driver_soname(m.split(" ", 1)[0])]


def _build_minor(env: Environment, matrix: Matrix, major: int) -> Tuple[Optional[str], str]:
    """The build's cuDNN major.minor: build_info.py states only the major; the matrix adds the minor."""
    tf = env.tensorflow
    release = matrix.tf_release(tf.version) if tf else None
    if release is not None and release.cudnn is not None and release.cudnn.release[0] == major:
        return str(release.cudnn), f"{release.label} in the matrix"
    return None, ""


def _has_extra(env: Environment, extra: str) -> bool:
    tf = env.tensorflow
    pkg = env.package(tf.distribution) if tf else None
    return bool(pkg and any(f'extra == "{extra}"' in r or f"extra == '{extra}'" in r for r in pkg.requires))


# -- TFC301 --------------------------------------------------------------------------------------------


@rule("TFC301", "gpu-library-missing", Severity.ERROR, requires=("tensorflow", "libraries"))
def gpu_library_missing(env: Environment, matrix: Matrix) -> Result:
    """A CUDA library TensorFlow needs for its GPUs cannot be loaded.

    What: TensorFlow dlopen()s cudart, cuBLAS, cuBLASLt, cuFFT, cuSOLVER, cuSPARSE and cuDNN by soname
    from libtensorflow_framework.so.2 when it sets up its GPUs. This rule resolves each one (and the
    cuDNN sub-libraries, and every library they need in turn) with a model of glibc's loader: the
    caller's DT_RUNPATH, LD_LIBRARY_PATH, /etc/ld.so.cache, the default directories. A copy that is
    installed but not on that search path (a pip wheel's directory missing from the RUNPATH) does not
    count. Severity: error on a node with GPUs (or an NVIDIA driver loaded), warning without. Optional
    libraries (NCCL, CUPTI, TensorRT) that are missing are reported as info.

    Why it crashes: without a GPU TensorFlow only tries libcudart, so nothing shows at import. On the
    GPU node TensorFlow logs "Could not load dynamic library 'libcudnn.so.9'" and "Cannot dlopen some
    GPU libraries ... Skipping registering GPU devices": the job silently runs on the CPU, or fails when
    it places ops on '/GPU:0'. A cuDNN sub-library that is missing fails at the first convolution
    ("Could not load library libcudnn_cnn.so.9"); a library whose own dependency is missing fails the
    same way ("dlerror: libnvJitLink.so.12: cannot open shared object file").

    How to fix: install the CUDA libraries of the build (`pip install "tensorflow[and-cuda]==X"` for
    TF >= 2.14), or put the directory that holds them on LD_LIBRARY_PATH (or in /etc/ld.so.conf.d/ and
    run ldconfig). The message names the directories of copies that are installed but not found.
    """
    native, na = _cuda_libraries(env)
    if na:
        yield na
        return
    tf = env.tensorflow
    has_gpus, gpus_text, gpus_ev = gpu_presence(env)
    cudnn_found = any(lib.name == "cudnn" and lib.found and not lib.found.problem for lib in native.libraries)
    broken: List[Tuple[LibraryResolution, str]] = []
    optional: List[LibraryResolution] = []
    for lib in native.libraries:
        if lib.role in ("driver", "optional"):
            continue  # the driver rules (2xx) judge libcuda.so.1; "optional" ones TF does not install
        if lib.role == "cudnn-sublibrary" and not cudnn_found:
            continue
        if lib.found is None or lib.found.problem:
            why = "not found" if lib.found is None else f"{lib.found.real_path} {lib.found.problem}"
            if lib.role == "feature":
                optional.append(lib)
            else:
                broken.append((lib, why))
            continue
        deps = _real_missing_deps(lib)
        if deps and lib.role != "feature":
            broken.append((lib, "found at " + lib.found.real_path + ", but it needs " + ", ".join(deps)))
    if broken:
        caller = native.caller or "TensorFlow"
        names = ", ".join(lib.soname for lib, _ in broken)
        evidence = []
        off_path_dirs: List[str] = []
        for lib, why in broken:
            off = [c for c in lib.others if c.found_via in _OFF_PATH]
            detail = why
            if off and lib.found is None:
                detail += "; installed but not on the search path: " + ", ".join(describe(c) for c in off)
                off_path_dirs += [posixpath.dirname(c.real_path) for c in off]
            if lib.other_sonames and lib.found is None:
                detail += "; other versions: " + ", ".join(lib.other_sonames[:3])
            evidence.append(Evidence(f"library {lib.soname}", detail, f"search path of {lib.requested_by or caller}"))
        evidence.append(gpus_ev)
        tail = ("TensorFlow logs \"Cannot dlopen some GPU libraries\" and registers no GPU: the job runs on the CPU "
                "or fails at its first GPU op") if has_gpus else \
            "on a node with GPUs TensorFlow would register no GPU (\"Cannot dlopen some GPU libraries\")"
        message = (f"{len(broken)} librar{'ies' if len(broken) != 1 else 'y'} that {tf_label(tf)} loads for its GPUs "
                   f"cannot be loaded from {short_path(caller)}: {names}; {gpus_text}: {tail}")
        dirs = list(dict.fromkeys(off_path_dirs))
        if dirs:
            fix = (f"Put the installed copies on the loader's path: export LD_LIBRARY_PATH={':'.join(dirs)}"
                   "${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} (or list the directories in /etc/ld.so.conf.d/ and run "
                   "ldconfig).")
        elif _has_extra(env, "and-cuda"):
            fix = f'pip install "{tf.distribution}[and-cuda]=={tf.version}" (the nvidia-* wheels TF\'s RUNPATH points at).'
        else:
            fix = (f"Install the CUDA {tf.cuda_version or '?'} libraries and cuDNN {tf.cudnn_version or '?'} that "
                   f"{tf_label(tf)} was built for and add their directory to LD_LIBRARY_PATH or /etc/ld.so.conf.d/.")
        missing_deps = [d for lib, _ in broken for d in _real_missing_deps(lib)]
        if missing_deps and not dirs:
            fix += " Missing dependencies: " + ", ".join(missing_deps) + "."
        # A copy that is installed (a pip wheel's directory) but not on the dlopen caller's search path
        # is a prediction of TF's loader code not yet confirmed on a GPU node (see issue 4's note, e.g.
        # libcusolver.so.11 in TF 2.21 [and-cuda]): a warning with the way to confirm it, not a gate failure.
        unconfirmed = all(any(c.found_via == "installed, not on the search path" for c in lib.others)
                          for lib, _ in broken)
        if has_gpus and unconfirmed:
            message += (" (predicted from where the copies lie; confirm on the node with "
                        "TF_CPP_VMODULE=dso_loader=1: 'Could not load dynamic library')")
        yield Hit(message=message, evidence=tuple(evidence), remediation=fix,
                  severity=Severity.ERROR if has_gpus and not unconfirmed else Severity.WARNING)
    if optional:
        yield Hit(
            message=f"optional libraries {tf_label(tf)} can load are missing: "
                    + ", ".join(f"{lib.soname} ({lib.purpose})" for lib in optional)
                    + "; only the features that use them fail",
            evidence=tuple(Evidence(f"library {lib.soname}", "not found" if lib.found is None else
                                    f"{lib.found.real_path} {lib.found.problem}",
                                    f"search path of {lib.requested_by or '?'}") for lib in optional),
            remediation="Install them only if the job uses these features (multi-GPU NCCL all-reduce, the profiler, "
                        "TF-TRT).",
            severity=Severity.INFO,
        )


# -- TFC302 --------------------------------------------------------------------------------------------


@rule("TFC302", "cudnn-version-mismatch", Severity.ERROR, requires=("tensorflow", "libraries"))
def cudnn_version_mismatch(env: Environment, matrix: Matrix) -> Result:
    """The cuDNN the loader picks has another major version, or an older minor, than TensorFlow's build.

    What: compares the version of the libcudnn.so.N file the loader picks (wheel metadata, real file
    name or cudnn_version.h) with the build's cuDNN: the major from build_info.py, the minor from the
    matrix's entry for the release (build_info.py states only the major).

    Why it crashes: at its first cuDNN call TensorFlow checks "Loaded runtime CuDNN library: 9.1.0 but
    source was compiled with: 9.3.0. CuDNN library needs to have matching major version and equal or
    higher minor version" and fails the op ("DNN library is not found" / "DNN library initialization
    failed"). Another major under the right file name (a symlink made to silence "Could not load
    dynamic library") fails with undefined symbols or the same check.

    How to fix: install a cuDNN of the build's major with a minor at least the build's
    (`pip install "nvidia-cudnn-cu12>=9.3,<10"` for a 9.3 build), and remove the copy or the symlink
    that wins instead.
    """
    native, na = _cuda_libraries(env)
    if na:
        yield na
        return
    tf = env.tensorflow
    lib = next((x for x in native.libraries if x.name == "cudnn"), None)
    if lib is None:
        yield NotApplicable(f"{tf_label(tf)} loads no cuDNN")
        return
    if lib.found is None or lib.found.problem:
        yield NotApplicable(f"{lib.soname} is not found (TFC301 reports it)")
        return
    have = version_of(lib.found.version)
    if have is None:
        yield NotApplicable(f"the version of {lib.found.real_path} is unknown (no wheel metadata, versioned file name "
                            "or cudnn_version.h)")
        return
    want_major = int(lib.soname.rsplit(".", 1)[-1])
    build_src = tf.build_info_path or "build_info.py"
    ev_have = copy_evidence(lib, lib.found, "cuDNN loaded")
    if have.release[0] != want_major:
        yield Hit(
            message=f"{lib.soname} resolves to cuDNN {lib.found.version} ({describe(lib.found)}), but {tf_label(tf)} "
                    f"was built with cuDNN {tf.cudnn_version or want_major}: another major version",
            evidence=(ev_have, Evidence("tensorflow build cuDNN", str(tf.cudnn_version or want_major), build_src)),
            remediation=f"Remove or re-point {lib.found.path} and install cuDNN {want_major}.x "
                        f"(pip install \"nvidia-cudnn-cu12>={want_major},<{want_major + 1}\" for CUDA 12 wheels).",
        )
        return
    build, build_source = _build_minor(env, matrix, want_major)
    build_v = version_of(build)
    if build_v is None:
        yield NotApplicable(f"the cuDNN minor version {tf_label(tf)} was built with is not in the matrix "
                            f"(build_info.py says only {tf.cudnn_version})")
        return
    # the runtime rule as the matrix states it (same major, minor >= the compiled one), with that fallback
    if len(have.release) < 2:
        return  # only the major is known (a file name like libcudnn.so.9): the minor cannot be judged
    compatible = matrix.cudnn_compatible(lib.found.version, build) if hasattr(matrix, "cudnn_compatible") else None
    if compatible is None:
        compatible = have.release[:2] >= build_v.release[:2]
    if not compatible:
        yield Hit(
            message=f"cuDNN {lib.found.version} ({describe(lib.found)}) is older than cuDNN {build}, which "
                    f"{tf_label(tf)} was built with: TensorFlow rejects it at the first cuDNN call (\"CuDNN library "
                    "needs to have matching major version and equal or higher minor version\")",
            evidence=(ev_have, Evidence("tensorflow build cuDNN", build, build_source),
                      Evidence("tensorflow build cuDNN major", str(tf.cudnn_version), build_src)),
            remediation=f"Install cuDNN >= {build}, < {want_major + 1} (pip install \"nvidia-cudnn-cu12>={build},"
                        f"<{want_major + 1}\") or remove the older copy that wins.",
        )


# -- TFC303 --------------------------------------------------------------------------------------------


@rule("TFC303", "cuda-runtime-mismatch", Severity.ERROR, requires=("tensorflow", "libraries"))
def cuda_runtime_mismatch(env: Environment, matrix: Matrix) -> Result:
    """The CUDA runtime (libcudart) or CUPTI the loader picks is of another CUDA major than the build, or older.

    What: compares the version of the libcudart file the loader picks (wheel metadata, real file name,
    a toolkit's version.json) with the CUDA version in build_info.py: another major is an error, the
    same major with an older minor a warning. CUPTI (the profiler's library, versioned like CUDA) of
    another major is a warning: TensorFlow falls back to an unversioned libcupti.so, which can be a
    system toolkit of another CUDA major.

    Why it crashes: TensorFlow asks for libcudart by the soname of its CUDA major; a file of another
    major under that name (a symlink `libcudart.so.12 -> libcudart.so.13`) has other symbols and ABI:
    "undefined symbol" or CUDA errors at the first kernel launch. An older minor than the build lacks
    runtime functions the build uses (TF's Requires-Dist asks for nvidia-cuda-runtime-cu12 >= the
    build's). A CUPTI of another major makes the profiler fail ("CUPTI could not be loaded",
    CUPTI_ERROR_*), or crash when tracing starts.

    How to fix: install the CUDA runtime (and CUPTI) of the build's major, at least its minor
    (`pip install "nvidia-cuda-runtime-cu12>=12.5" nvidia-cuda-cupti-cu12` for a 12.5 build), and remove
    the mismatching copy, symlink or toolkit directory that wins.
    """
    native, na = _cuda_libraries(env)
    if na:
        yield na
        return
    tf = env.tensorflow
    build = version_of(tf.cuda_version)
    if build is None:
        yield NotApplicable(f"the CUDA version of {tf_label(tf)} is unknown")
        return
    build_ev = Evidence("tensorflow build CUDA", tf.cuda_version, tf.build_info_path or "build_info.py")
    judged = 0
    for name, label, major_severity in (("cudart", "CUDA runtime", Severity.ERROR), ("cupti", "CUPTI", Severity.WARNING)):
        lib = next((x for x in native.libraries if x.name == name), None)
        if lib is None or lib.found is None or lib.found.problem:
            continue
        have = version_of(lib.found.version)
        if have is None:
            continue
        judged += 1
        ev = (copy_evidence(lib, lib.found, f"{label} loaded"), build_ev)
        asked = posixpath.basename(lib.found.path)
        as_name = f" (found as {asked})" if asked != lib.soname and asked != posixpath.basename(lib.found.real_path) \
            else ""
        if have.release[0] != build.release[0]:
            yield Hit(
                message=f"{lib.soname} resolves to {label} {lib.found.version}{as_name}, {describe(lib.found)}, but "
                        f"{tf_label(tf)} was built with CUDA {tf.cuda_version}: another CUDA major"
                        + ("" if name == "cudart" else "; only the profiler uses it"),
                evidence=ev,
                remediation=(f"Remove or re-point {lib.found.path} and install the CUDA {build.release[0]} runtime "
                             f"(pip install \"nvidia-cuda-runtime-cu{build.release[0]}\").") if name == "cudart" else
                            (f"pip install \"nvidia-cuda-cupti-cu{build.release[0]}\" (TF's RUNPATH finds it first), or "
                             f"remove {posixpath.dirname(lib.found.path)} from the loader's path."),
                severity=major_severity,
            )
        elif name == "cudart" and len(have.release) >= 2 and have.release[:2] < build.release[:2]:
            yield Hit(
                message=f"CUDA runtime {lib.found.version} ({describe(lib.found)}) is older than CUDA {tf.cuda_version}, "
                        f"which {tf_label(tf)} was built with: runtime functions the build uses may be missing",
                evidence=ev,
                remediation=f"Install a CUDA {build.release[0]} runtime >= {build.release[0]}.{build.release[1]} "
                            f"(pip install \"nvidia-cuda-runtime-cu{build.release[0]}>={build.release[0]}."
                            f"{build.release[1]}\").",
                severity=Severity.WARNING,
            )
    if not judged:
        yield NotApplicable("no CUDA runtime or CUPTI of known version is loaded")


# -- TFC304 --------------------------------------------------------------------------------------------


@rule("TFC304", "library-shadowed", Severity.WARNING, requires=("tensorflow", "libraries"))
def library_shadowed(env: Environment, matrix: Matrix) -> Result:
    """Another copy of a CUDA library wins over the one the environment installed, or copies disagree.

    What: for each library TensorFlow loads, lists every copy on the loader's search path. A warning
    when the environment's own copy (from an nvidia-* wheel) loses to another one, typically a system
    toolkit in LD_LIBRARY_PATH (searched before TF's DT_RUNPATH) or a copy already loaded by the
    process; info when several copies of different versions are on the path but the right one wins.

    Why it crashes: the winning copy is not the version pip resolved against TensorFlow's requirements:
    an older cuBLAS or cuDNN fails TensorFlow's version checks or lacks symbols ("undefined symbol:
    cublasLt..."), and two copies of one library in one process (a custom op or another package that
    finds the other copy through ld.so.cache) crash in unrelated places.

    How to fix: remove the directory of the shadowing copy from LD_LIBRARY_PATH (or LD_PRELOAD), or
    uninstall the copy you do not want; keep exactly one copy of each CUDA library visible.
    """
    native, na = _cuda_libraries(env)
    if na:
        yield na
        return
    disagree: List[Tuple[LibraryResolution, List[LibraryCopy]]] = []
    for lib in native.libraries:
        if lib.role == "driver" or lib.found is None or lib.found.problem:
            continue
        on_path = [c for c in lib.others if c.found_via not in _OFF_PATH and not c.problem]
        # only a wheel copy the loader would otherwise reach is shadowed; one off the search path is
        # not (removing the winner would leave nothing to load): TFC301's hints cover that case
        wheel = [c for c in on_path if c.distribution]
        if wheel and not lib.found.distribution:
            intended = wheel[0]
            yield Hit(
                message=f"{lib.soname}: {describe(lib.found)} shadows {describe(intended)}, the copy "
                        "this environment installed for TensorFlow",
                evidence=(copy_evidence(lib, lib.found, f"{lib.soname} loaded"),
                          copy_evidence(lib, intended, f"{lib.soname} installed")) +
                         ((Evidence("LD_LIBRARY_PATH", native.ld_library_path, "environment"),)
                          if lib.found.found_via == "LD_LIBRARY_PATH" and native.ld_library_path else ()),
                remediation=_shadow_fix(lib.found),
            )
            continue
        versions = {c.version for c in on_path if c.version} - {lib.found.version}
        if versions:
            disagree.append((lib, [c for c in on_path if c.version in versions]))
    if disagree:
        yield Hit(
            message="other versions of libraries TensorFlow loads are on the search path (the right copy wins, but "
                    "another caller can load the other one): "
                    + "; ".join(f"{lib.soname}: {lib.found.version} wins, also {', '.join(describe(c) for c in cs)}"
                                for lib, cs in disagree),
            evidence=tuple(copy_evidence(lib, c, f"{lib.soname} other copy") for lib, cs in disagree for c in cs),
            remediation="Remove the copies you do not use (or their directory from LD_LIBRARY_PATH / ld.so.conf) so "
                        "that every caller gets the same library.",
            severity=Severity.INFO,
        )


def _shadow_fix(c: LibraryCopy) -> str:
    d = posixpath.dirname(c.path)
    if c.found_via == "LD_LIBRARY_PATH":
        return f"Remove {c.search_entry} from LD_LIBRARY_PATH (it is searched before TensorFlow's DT_RUNPATH)."
    if c.found_via in ("LD_PRELOAD", "/etc/ld.so.preload"):
        return f"Remove {c.path} from {c.found_via}."
    if c.found_via == "already loaded":
        return f"Find what loads {c.real_path} before TensorFlow (LD_PRELOAD, the interpreter's libraries) and stop it."
    return f"Remove the copy in {d} or the entry that puts it first ({c.found_via})."


# -- TFC305 --------------------------------------------------------------------------------------------


@rule("TFC305", "cudnn-sublibrary-mixed", Severity.ERROR, requires=("tensorflow", "libraries"))
def cudnn_sublibrary_mixed(env: Environment, matrix: Matrix) -> Result:
    """The cuDNN sub-libraries the loader picks are not all of the version of libcudnn.so itself.

    What: libcudnn.so.N is a thin front that dlopen()s its sub-libraries (libcudnn_ops, libcudnn_cnn,
    libcudnn_adv, libcudnn_graph, libcudnn_engines_*, ...) by soname, with itself as the caller. Each
    one is resolved like the front; their versions (wheel metadata, file names) must all be equal.

    Why it crashes: a sub-library from another cuDNN (an LD_LIBRARY_PATH or ld.so.cache copy that
    comes before the front's own directory) fails cuDNN's own version check ("cuDNN version mismatch"
    / CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH) or with undefined symbols at the first convolution.

    How to fix: make one cuDNN installation visible: remove the other cuDNN's directory from
    LD_LIBRARY_PATH / ld.so.conf, or reinstall the wheel (`pip install --force-reinstall nvidia-cudnn-cu12`).
    """
    native, na = _cuda_libraries(env)
    if na:
        yield na
        return
    front = next((x for x in native.libraries if x.name == "cudnn"), None)
    subs = [x for x in native.libraries if x.role == "cudnn-sublibrary" and x.found and not x.found.problem]
    if front is None or front.found is None or front.found.problem or not subs:
        yield NotApplicable("no cuDNN with sub-libraries is loaded")
        return
    by_version: Dict[str, List[LibraryResolution]] = {}
    for lib in [front] + subs:
        by_version.setdefault(lib.found.version or "unknown", []).append(lib)
    known = [v for v in by_version if v != "unknown"]
    if len(known) > 1:
        main = front.found.version or "unknown"
        odd = [lib for v, libs in by_version.items() if v != main for lib in libs]
        yield Hit(
            message=f"cuDNN sub-libraries of mixed versions: {front.soname} is {main} ({front.found.real_path}), but "
                    + ", ".join(f"{lib.soname} is {lib.found.version or 'unknown'} ({describe(lib.found)})"
                                for lib in odd),
            evidence=tuple(copy_evidence(lib, lib.found) for lib in [front] + odd),
            remediation=_shadow_fix(odd[0].found) if odd else "Install one cuDNN.",
        )
        return
    dirs = {posixpath.dirname(lib.found.real_path) for lib in [front] + subs}
    if "unknown" in by_version and len(dirs) > 1:
        yield Hit(
            message=f"cuDNN sub-libraries come from {len(dirs)} directories ({', '.join(sorted(dirs))}) and their "
                    "versions cannot all be read: they may be of mixed versions",
            evidence=tuple(copy_evidence(lib, lib.found) for lib in [front] + subs),
            remediation="Keep one cuDNN installation visible to the loader.",
            severity=Severity.WARNING,
        )


# -- TFC306 --------------------------------------------------------------------------------------------


@rule("TFC306", "symbol-version-not-found", Severity.ERROR, requires=("tensorflow", "libraries"))
def symbol_version_not_found(env: Environment, matrix: Matrix) -> Result:
    """GLIBC / GLIBCXX / CXXABI versions that TensorFlow's objects need are not defined by the library the loader picks.

    What: reads the symbol versions each of TensorFlow's own shared objects (and each CUDA library it
    loads) needs from its DT_NEEDED libraries (.gnu.version_r: GLIBC_2.27, GLIBCXX_3.4.22,
    CXXABI_1.3.11, ...) and checks them against the versions defined (.gnu.version_d) by the libc,
    libstdc++, libgcc_s, libm that the loader picks for that object, e.g. a conda or vendored
    libstdc++ found first through LD_LIBRARY_PATH. A needed library that is not found at all is
    reported too. For CUDA libraries the severity is an error only on a node with GPUs.

    Why it crashes: `import tensorflow` fails with ImportError: "version `GLIBCXX_3.4.30' not found
    (required by .../libtensorflow_cc.so.2)" or "libstdc++.so.6: cannot open shared object file";
    for a CUDA library the same message appears at the first GPU op.

    How to fix: put a newer libstdc++ / glibc first (remove an old conda `lib` directory from
    LD_LIBRARY_PATH, `conda install -c conda-forge "libstdcxx-ng>=12"`), or use a TensorFlow built for
    the older system (an older release, or a manylinux image with a newer glibc).
    """
    native = _native(env)
    if native is None:
        yield NotApplicable("the libraries TensorFlow loads were not resolved (no snapshot data)")
        return
    tf = env.tensorflow
    has_gpus, gpus_text, gpus_ev = gpu_presence(env)
    problems = [c for c in native.abi if c.missing or c.provider is None]
    if not native.abi:
        yield NotApplicable("no symbol-version needs were read")
        return
    groups: Dict[Tuple[str, Optional[str]], List] = {}
    for c in problems:
        if _is_driver_soname(c.library):
            continue
        groups.setdefault((c.library, c.provider), []).append(c)
    for (library, provider), checks in groups.items():
        own = [c for c in checks if posixpath.basename(c.object).startswith(_TF_OBJECTS)]
        objects = ", ".join(posixpath.basename(c.object) for c in checks)
        if provider is None:
            message = (f"{library}, needed by {objects}, is not found by the loader: "
                       f"{'import tensorflow' if own else 'loading it'} fails with \"{library}: cannot open shared "
                       "object file\"")
            evidence = tuple(Evidence(f"{posixpath.basename(c.object)} needs", library, c.object) for c in checks)
            fix = f"Install the package that provides {library} in the environment (or image)."
        else:
            missing = sorted({v for c in checks for v in c.missing})
            highest = sorted({h for c in checks for h in c.provider_highest})
            message = (f"{objects} need{'s' if len(checks) == 1 else ''} {', '.join(missing)} from {library}, but the "
                       f"{library} the loader picks, {provider} (via {checks[0].provider_found_via}), defines only up "
                       f"to {', '.join(highest) or 'none of them'}: "
                       + (f"import tensorflow fails (\"version `{missing[0]}' not found\")" if own else
                          f"loading it fails at the first GPU op (\"version `{missing[0]}' not found\")"))
            evidence = tuple(Evidence(f"{posixpath.basename(c.object)} needs", ", ".join(c.missing), c.object)
                             for c in checks) + (Evidence(f"{library} defines up to", ", ".join(highest), provider),)
            fix = (f"Make the loader find a {library} that defines {', '.join(missing)}: remove the directory of "
                   f"{provider} from LD_LIBRARY_PATH if it is not the system one, or upgrade it "
                   "(conda install -c conda-forge libstdcxx-ng for libstdc++), or use a TensorFlow built for this "
                   "system.")
        severity = Severity.ERROR if own or has_gpus else Severity.WARNING
        if not own:
            evidence = evidence + (gpus_ev,)
        yield Hit(message=message, evidence=evidence, remediation=fix, severity=severity)


# -- TFC307 --------------------------------------------------------------------------------------------


@rule("TFC307", "cpu-instructions-missing", Severity.ERROR,
      requires=("tensorflow", "libraries", "platform.cpu_flags"))
def cpu_instructions_missing(env: Environment, matrix: Matrix) -> Result:
    """The CPU lacks instructions the TensorFlow build was compiled to use (AVX, AVX2, AVX-512).

    What: TensorFlow's x86-64 wheels are compiled with AVX since 1.6 (and intel-tensorflow-avx512 with
    AVX-512). This rule checks those instruction sets against the CPU flags of the node
    (/proc/cpuinfo).

    Why it crashes: `import tensorflow` aborts the interpreter (SIGABRT, "Illegal instruction" on
    older releases): "The TensorFlow library was compiled to use AVX instructions, but these aren't
    available on your machine." Old Xeons, some Atom/Celeron CPUs and emulators (QEMU without
    `-cpu host`) lack AVX.

    How to fix: run the job on a CPU with these instructions (or pass the host CPU through to the VM),
    or build TensorFlow from source without `-mavx`.
    """
    native = _native(env)
    if native is None:
        yield NotApplicable("the libraries TensorFlow loads were not resolved (no snapshot data)")
        return
    if not native.cpu_instructions:
        yield NotApplicable("no CPU instruction requirement is known for this build (not x86-64)")
        return
    flags = set(env.host.platform.cpu_flags)
    missing = [f for f in native.cpu_instructions if f not in flags]
    if missing:
        tf = env.tensorflow
        names = ", ".join(m.upper() for m in missing)
        model = env.host.platform.cpu_model or "model unknown"
        yield Hit(
            message=f"{tf_label(tf)} was compiled to use {names}, but this CPU ({model}) does not have "
                    f"{'it' if len(missing) == 1 else 'them'}: `import tensorflow` aborts "
                    f"(\"The TensorFlow library was compiled to use {missing[0].upper()} instructions, but these aren't "
                    "available on your machine\")",
            evidence=(Evidence("tensorflow build CPU instructions", ", ".join(native.cpu_instructions),
                               native.cpu_instructions_source),
                      Evidence("platform.cpu_flags", f"no {', '.join(missing)}", "/proc/cpuinfo")),
            remediation="Run on a CPU with " + names + " (in a VM, pass the host CPU through: `-cpu host`), or build "
                        "TensorFlow from source without -mavx.",
        )
