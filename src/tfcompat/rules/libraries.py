"""3xx: the CUDA, cuDNN, NCCL and TensorRT libraries TensorFlow will load: present, and of the right version.

These rules judge what ``probes/libraries.py`` found with its model of glibc's loader
(``env.target.native``); they read no file themselves. Shared helpers: _libraries.py; the copies the
loader picks (TFC304, TFC305): library_copies.py; the ABI they meet (TFC306, TFC307): native_abi.py.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Optional, Union

from tfcompat.engine.registry import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, LibraryResolution, Severity, TensorFlowBuild
from tfcompat.rules._common import required_tf, tf_label, version_of
from tfcompat.rules._libraries import (
    OFF_PATH,
    build_minor,
    copy_evidence,
    cuda_libraries,
    describe,
    gpu_presence,
    has_extra,
    real_missing_deps,
)
from tfcompat.units import short_path

Result = Iterator[Union[Hit, NotApplicable]]


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
    native = cuda_libraries(env)
    if isinstance(native, NotApplicable):
        yield native
        return
    tf = required_tf(env)
    has_gpus, gpus_text, gpus_ev = gpu_presence(env)
    cudnn_found = any(lib.name == "cudnn" and lib.found and not lib.found.problem for lib in native.libraries)
    broken: list[tuple[LibraryResolution, str]] = []
    optional: list[LibraryResolution] = []
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
        deps = real_missing_deps(lib)
        if deps and lib.role != "feature":
            broken.append((lib, "found at " + lib.found.real_path + ", but it needs " + ", ".join(deps)))
    if broken:
        caller = native.caller or "TensorFlow"
        names = ", ".join(lib.soname for lib, _ in broken)
        evidence = []
        off_path_dirs: list[str] = []
        for lib, why in broken:
            off = [c for c in lib.others if c.found_via in OFF_PATH]
            detail = why
            if off and lib.found is None:
                detail += "; installed but not on the search path: " + ", ".join(describe(c) for c in off)
                off_path_dirs += [posixpath.dirname(c.real_path) for c in off]
            if lib.other_sonames and lib.found is None:
                detail += "; other versions: " + ", ".join(lib.other_sonames[:3])
            evidence.append(Evidence(f"library {lib.soname}", detail, f"search path of {lib.requested_by or caller}"))
        evidence.append(gpus_ev)
        tail = (
            (
                'TensorFlow logs "Cannot dlopen some GPU libraries" and registers no GPU: the job runs on the CPU '
                "or fails at its first GPU op"
            )
            if has_gpus
            else 'on a node with GPUs TensorFlow would register no GPU ("Cannot dlopen some GPU libraries")'
        )
        message = (
            f"{len(broken)} librar{'ies' if len(broken) != 1 else 'y'} that {tf_label(tf)} loads for its GPUs "
            f"cannot be loaded from {short_path(caller)}: {names}; {gpus_text}: {tail}"
        )
        dirs = list(dict.fromkeys(off_path_dirs))
        if dirs:
            fix = (
                f"Put the installed copies on the loader's path: export LD_LIBRARY_PATH={':'.join(dirs)}"
                "${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} (or list the directories in /etc/ld.so.conf.d/ and run "
                "ldconfig)."
            )
        elif has_extra(env, "and-cuda"):
            fix = (
                f'pip install "{tf.distribution}[and-cuda]=={tf.version}" '
                "(the nvidia-* wheels TF's RUNPATH points at)."
            )
        else:
            fix = (
                f"Install the CUDA {tf.cuda_version or '?'} libraries and cuDNN {tf.cudnn_version or '?'} that "
                f"{tf_label(tf)} was built for and add their directory to LD_LIBRARY_PATH or /etc/ld.so.conf.d/."
            )
        missing_deps = [d for lib, _ in broken for d in real_missing_deps(lib)]
        if missing_deps and not dirs:
            fix += " Missing dependencies: " + ", ".join(missing_deps) + "."
        # A copy that is installed (a pip wheel's directory) but not on the dlopen caller's search path
        # is a prediction of TF's loader code not yet confirmed on a GPU node (see issue 4's note, e.g.
        # libcusolver.so.11 in TF 2.21 [and-cuda]): a warning with the way to confirm it, not a gate failure.
        unconfirmed = all(
            any(c.found_via == "installed, not on the search path" for c in lib.others) for lib, _ in broken
        )
        if has_gpus and unconfirmed:
            message += (
                " (predicted from where the copies lie; confirm on the node with "
                "TF_CPP_VMODULE=dso_loader=1: 'Could not load dynamic library')"
            )
        yield Hit(
            message=message,
            evidence=tuple(evidence),
            remediation=fix,
            severity=Severity.ERROR if has_gpus and not unconfirmed else Severity.WARNING,
        )
    if optional:
        yield Hit(
            message=f"optional libraries {tf_label(tf)} can load are missing: "
            + ", ".join(f"{lib.soname} ({lib.purpose})" for lib in optional)
            + "; only the features that use them fail",
            evidence=tuple(
                Evidence(
                    f"library {lib.soname}",
                    "not found" if lib.found is None else f"{lib.found.real_path} {lib.found.problem}",
                    f"search path of {lib.requested_by or '?'}",
                )
                for lib in optional
            ),
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
    matrix's entry for the release (build_info.py states only the major). TensorFlow 1.5 and 1.6 (matrix
    `cudnn_minor = "exact"`) accept only the minor they were compiled with, a newer one included.

    Why it crashes: at its first cuDNN call TensorFlow checks "Loaded runtime CuDNN library: 9.1.0 but
    source was compiled with: 9.3.0. CuDNN library needs to have matching major version and equal or
    higher minor version" and fails the op ("DNN library is not found" / "DNN library initialization
    failed"). Another major under the right file name (a symlink made to silence "Could not load
    dynamic library") fails with undefined symbols or the same check.

    How to fix: install a cuDNN of the build's major with a minor at least the build's
    (`pip install "nvidia-cudnn-cu12>=9.3,<10"` for a 9.3 build), and remove the copy or the symlink
    that wins instead.
    """
    native = cuda_libraries(env)
    if isinstance(native, NotApplicable):
        yield native
        return
    tf = required_tf(env)
    lib = next((x for x in native.libraries if x.name == "cudnn"), None)
    if lib is None:
        yield NotApplicable(f"{tf_label(tf)} loads no cuDNN")
        return
    if lib.found is None or lib.found.problem:
        yield NotApplicable(f"{lib.soname} is not found (TFC301 reports it)")
        return
    have = version_of(lib.found.version)
    if have is None or lib.found.version is None:  # one implies the other; mypy sees two Optionals
        yield NotApplicable(
            f"the version of {lib.found.real_path} is unknown (no wheel metadata, versioned file name "
            "or cudnn_version.h)"
        )
        return
    want_major = int(lib.soname.rsplit(".", 1)[-1])
    build_src = tf.build_info_path or "build_info.py"
    ev_have = copy_evidence(lib, lib.found, "cuDNN loaded")
    if have.release[0] != want_major:
        yield Hit(
            message=f"{lib.soname} resolves to cuDNN {lib.found.version} ({describe(lib.found)}), but {tf_label(tf)} "
            f"was built with cuDNN {tf.cudnn_version or want_major}: another major version",
            evidence=(ev_have, Evidence("tensorflow build cuDNN", str(tf.cudnn_version or want_major), build_src)),
            remediation=f"Remove or re-point {lib.found.path} and install cuDNN {want_major}.x ("
            + (
                _conda_hint(lib.found.distribution, f"cudnn>={want_major},<{want_major + 1}")
                or f'pip install "{_cudnn_wheel(tf)}>={want_major},<{want_major + 1}" for CUDA {_cuda_major(tf)} wheels'
            )
            + ").",
        )
        return
    build, build_source = build_minor(env, matrix, want_major)
    build_v = version_of(build)
    if build is None or build_v is None:
        yield NotApplicable(
            f"the cuDNN minor version {tf_label(tf)} was built with is not in the matrix "
            f"(build_info.py says only {tf.cudnn_version})"
        )
        return
    # the runtime rule as the matrix states it (same major, minor >= the compiled one), with that fallback
    if len(have.release) < 2:
        return  # only the major is known (a file name like libcudnn.so.9): the minor cannot be judged
    release = matrix.tf_release(tf.version)
    if release is not None and release.cudnn_minor == "exact":
        # TF 1.5/1.6 compare cuDNN "compatibility versions" (major.minor) for equality: a newer minor is refused too
        if have.release[:2] != build_v.release[:2]:
            yield Hit(
                message=f"cuDNN {lib.found.version} ({describe(lib.found)}) has another minor version than cuDNN "
                f"{build}, which {tf_label(tf)} was built with, and this release accepts only that minor: the first "
                'cuDNN call fails ("Loaded runtime CuDNN library: ... but source was compiled with ... If using a '
                'binary install, upgrade your CuDNN library to match")',
                evidence=(
                    ev_have,
                    Evidence("tensorflow build cuDNN", build, build_source),
                    Evidence("tensorflow cuDNN minor", "exact (same minor only)", f"{release.label} in the matrix"),
                ),
                remediation=f"Install cuDNN {build}.x (the minor {tf_label(tf)} was built with) and remove the copy "
                "that wins instead, or use TensorFlow 1.7 or newer, which accepts an equal or newer minor.",
            )
        return
    compatible = matrix.cudnn_compatible(lib.found.version, build) if hasattr(matrix, "cudnn_compatible") else None
    if compatible is None:
        compatible = have.release[:2] >= build_v.release[:2]
    if not compatible:
        yield Hit(
            message=f"cuDNN {lib.found.version} ({describe(lib.found)}) is older than cuDNN {build}, which "
            f'{tf_label(tf)} was built with: TensorFlow rejects it at the first cuDNN call ("CuDNN library '
            'needs to have matching major version and equal or higher minor version")',
            evidence=(
                ev_have,
                Evidence("tensorflow build cuDNN", build, build_source),
                Evidence("tensorflow build cuDNN major", str(tf.cudnn_version), build_src),
            ),
            remediation=f"Install cuDNN >= {build}, < {want_major + 1} ("
            + (
                _conda_hint(lib.found.distribution, f"cudnn>={build},<{want_major + 1}")
                or f'pip install "{_cudnn_wheel(tf)}>={build},<{want_major + 1}"'
                if want_major >= 8 or _conda_hint(lib.found.distribution, "")
                else f"cuDNN {want_major} has no pip wheel: NVIDIA's libcudnn{want_major} package or conda "
                f'"cudnn>={build},<{want_major + 1}" for the build\'s CUDA'
            )
            + ") or remove the older copy that wins.",
        )


def _cuda_major(tf: TensorFlowBuild) -> int:
    """The CUDA major of the build (12 when build_info does not say): it names the cuDNN wheel to install."""
    v = version_of(tf.cuda_version or "")
    return v.major if v is not None and v.major >= 11 else 12


def _cudnn_wheel(tf: TensorFlowBuild) -> str:
    """NVIDIA's cuDNN wheel for the build's CUDA: nvidia-cudnn-cu11 for a CUDA 11 build (TF 2.5-2.14), -cu12, -cu13."""
    return f"nvidia-cudnn-cu{_cuda_major(tf)}"


def _conda_hint(distribution: Optional[str], spec: str) -> Optional[str]:
    """`conda install` of `spec` from the channel of a conda package ("conda-forge::cudnn"), None for any other
    copy: a conda environment's libraries are fixed with conda, not with pip wheels next to them."""
    if not distribution or "::" not in distribution:
        return None
    channel = distribution.split("::", 1)[0]
    return f'conda install -c {channel} "{spec}" (the copy that wins is conda\'s {distribution})'


# -- TFC303 --------------------------------------------------------------------------------------------


@rule("TFC303", "cuda-runtime-mismatch", Severity.ERROR, requires=("tensorflow", "libraries"))
def cuda_runtime_mismatch(env: Environment, matrix: Matrix) -> Result:
    """The CUDA runtime (libcudart), CUPTI or another CUDA library the loader picks is of another CUDA major.

    What: compares the version of the libcudart file the loader picks (wheel metadata, real file name,
    a toolkit's version.json) with the CUDA version in build_info.py: another major is an error, the
    same major with an older minor a warning. CUPTI (the profiler's library, versioned like CUDA) of
    another major is a warning: TensorFlow falls back to an unversioned libcupti.so, which can be a
    system toolkit of another CUDA major. Another CUDA library (cuSOLVER, cuFFT, cuSPARSE, cuBLAS) is judged
    by what it pulls in: a libcusolver.so.11 that needs libcublas.so.11 is CUDA 11's, though CUDA 12 names
    its cuSOLVER libcusolver.so.11 too; the loader takes it (a warning: the libraries the [[dlopen]] tables
    name for one CUDA major only tell).

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
    native = cuda_libraries(env)
    if isinstance(native, NotApplicable):
        yield native
        return
    tf = required_tf(env)
    build = version_of(tf.cuda_version)
    if build is None or tf.cuda_version is None:
        yield NotApplicable(f"the CUDA version of {tf_label(tf)} is unknown")
        return
    build_ev = Evidence("tensorflow build CUDA", tf.cuda_version, tf.build_info_path or "build_info.py")
    judged = 0
    for name, label, major_severity in (
        ("cudart", "CUDA runtime", Severity.ERROR),
        ("cupti", "CUPTI", Severity.WARNING),
    ):
        lib = next((x for x in native.libraries if x.name == name), None)
        if lib is None or lib.found is None or lib.found.problem:
            continue
        have = version_of(lib.found.version)
        if have is None:
            continue
        judged += 1
        ev = (copy_evidence(lib, lib.found, f"{label} loaded"), build_ev)
        asked = posixpath.basename(lib.found.path)
        as_name = (
            f" (found as {asked})" if asked != lib.soname and asked != posixpath.basename(lib.found.real_path) else ""
        )
        if have.release[0] != build.release[0]:
            yield Hit(
                message=f"{lib.soname} resolves to {label} {lib.found.version}{as_name}, {describe(lib.found)}, but "
                f"{tf_label(tf)} was built with CUDA {tf.cuda_version}: another CUDA major"
                + ("" if name == "cudart" else "; only the profiler uses it"),
                evidence=ev,
                remediation=(
                    f"Remove or re-point {lib.found.path} and install the CUDA {build.release[0]} runtime "
                    f'(pip install "nvidia-cuda-runtime-cu{build.release[0]}").'
                )
                if name == "cudart"
                else (
                    f'pip install "nvidia-cuda-cupti-cu{build.release[0]}" (TF\'s RUNPATH finds it first), or '
                    f"remove {posixpath.dirname(lib.found.path)} from the loader's path."
                ),
                severity=major_severity,
            )
        elif name == "cudart" and len(have.release) >= 2 and have.release[:2] < build.release[:2]:
            yield Hit(
                message=f"CUDA runtime {lib.found.version} ({describe(lib.found)}) is older than CUDA "
                f"{tf.cuda_version}, which {tf_label(tf)} was built with: runtime functions the build uses "
                "may be missing",
                evidence=ev,
                remediation=f"Install a CUDA {build.release[0]} runtime >= {build.release[0]}.{build.release[1]} "
                f'(pip install "nvidia-cuda-runtime-cu{build.release[0]}>={build.release[0]}.'
                f'{build.release[1]}").',
                severity=Severity.WARNING,
            )
    for lib in native.libraries:  # the other CUDA libraries: of which major by what they pull in
        if lib.name in ("cudart", "cupti") or lib.role == "driver" or lib.found is None or lib.found.problem:
            continue
        telling = {  # the names it needs that one CUDA major only names
            n: next(iter(m)) for n in lib.found.needed for m in [matrix.facts.cuda_majors_of(n)] if len(m) == 1
        }
        if not telling:
            continue
        judged += 1
        if build.release[0] in telling.values():
            continue
        other = sorted(set(telling.values()))
        pulls = ", ".join(telling)
        wheel = "cublas" if lib.name == "cublasLt" else lib.name.lower()
        yield Hit(
            message=f"{lib.soname} resolves to {describe(lib.found)}, a CUDA {other[0]} build (it needs {pulls}), but "
            f"{tf_label(tf)} was built with CUDA {tf.cuda_version}: CUDA {other[0]} and {build.release[0]} share the "
            f"soname, so the loader takes it; what CUDA {build.release[0]} added to the library is missing, and it "
            f"pulls CUDA {other[0]}'s libraries into the process",
            evidence=(
                copy_evidence(lib, lib.found),
                Evidence(f"{lib.soname} needs", pulls, f"DT_NEEDED of {lib.found.real_path}"),
                build_ev,
            ),
            remediation=f"Put a CUDA {build.release[0]} copy first (pip install "
            f'"nvidia-{wheel}-cu{build.release[0]}", or the CUDA {build.release[0]} toolkit), or remove '
            f"{posixpath.dirname(lib.found.path)} from the loader's path.",
            severity=Severity.WARNING,
        )
    if not judged:
        yield NotApplicable("no CUDA library of known version or CUDA major is loaded")
