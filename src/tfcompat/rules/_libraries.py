"""Shared helpers of the 3xx rules: the libraries a CUDA build resolves, how to describe a copy, GPUs present.

The 3xx rules judge what ``probes/libraries.py`` found with its model of glibc's loader
(``env.target.native``); they read no file themselves.
"""

from __future__ import annotations

import posixpath
from typing import Optional, Union

from tfcompat.engine.registry import NotApplicable
from tfcompat.matrix import Matrix
from tfcompat.model import (
    Environment,
    Evidence,
    LibraryCopy,
    LibraryResolution,
    NativeLibraries,
)
from tfcompat.rules._common import required_tf, tf_label

OFF_PATH = ("installed, not on the search path", "ld.so.conf dir, not in ld.so.cache")
TF_OBJECTS = (
    "libtensorflow_framework.so",
    "libtensorflow_cc.so",
    "_pywrap_tensorflow_internal.so",
    "lib_pywrap_tensorflow_common.so",
)


def native_of(env: Environment) -> Optional[NativeLibraries]:
    return env.target.native


def cuda_libraries(env: Environment) -> Union[NativeLibraries, NotApplicable]:
    """The resolved libraries of a CUDA build, or why there is nothing to judge (for rules that require
    "tensorflow")."""
    tf = required_tf(env)
    native = native_of(env)
    if native is None:
        return NotApplicable("the libraries TensorFlow loads were not resolved (no snapshot data)")
    if tf.is_rocm_build:
        return NotApplicable(f"{tf_label(tf)} is a ROCm build: it loads no CUDA library (4xx rules)")
    if tf.is_cuda_build is False:
        return NotApplicable(f"{tf_label(tf)} is a CPU-only build: it loads no CUDA library")
    if not native.libraries:
        return NotApplicable(f"no CUDA library list for {tf_label(tf)}")
    return native


def gpu_presence(env: Environment) -> tuple[bool, str, Evidence]:
    """(GPUs present?, how to say it, evidence). A loaded NVIDIA kernel module counts as GPUs present."""
    gpus = env.host.gpus
    if gpus:
        names = ", ".join(sorted({g.name or "unknown model" for g in gpus}))
        return (
            True,
            f"this node has {len(gpus)} GPU{'s' if len(gpus) != 1 else ''} ({names})",
            Evidence("gpus", f"{len(gpus)} ({names})", "NVML"),
        )
    d = env.host.driver
    if d is not None and d.kernel_module_version:
        return (
            True,
            f"this node has the NVIDIA driver {d.kernel_module_version} loaded",
            Evidence(
                "driver.version", d.kernel_module_version, d.kernel_module_source or "/proc/driver/nvidia/version"
            ),
        )
    reason = env.unknown("gpus") or "NVML lists no GPU"
    if env.target.root or (env.unknown("gpus") and not reason.startswith("no NVIDIA driver")):
        # an image, or NVML not asked / failing: the GPUs are unknown, not absent
        return False, f"GPUs unknown ({reason})", Evidence("gpus", "unknown", reason)
    return False, "this node has no GPU", Evidence("gpus", "none", reason)


def found_via_text(c: LibraryCopy) -> str:
    if c.found_via in ("DT_RUNPATH", "DT_RPATH") and c.owner:
        return f"{c.found_via} {c.search_entry} of {posixpath.basename(c.owner)}"
    if c.found_via in ("LD_LIBRARY_PATH", "default path") and c.search_entry:
        return f"{c.found_via} {c.search_entry}"
    return c.search_entry if c.found_via == "already loaded" else c.found_via


def describe(c: LibraryCopy) -> str:
    """'/x/libcudnn.so.9 (nvidia-cudnn-cu12 9.28.0.42, via DT_RUNPATH ... of libtensorflow_framework.so.2)'."""
    version = f"{c.distribution} {c.version}" if c.distribution else (c.version or "version unknown")
    if c.found_via in OFF_PATH:
        return f"{c.real_path} ({version})"
    return f"{c.real_path} ({version}, via {found_via_text(c)})"


def copy_evidence(lib: LibraryResolution, c: LibraryCopy, fact: Optional[str] = None) -> Evidence:
    return Evidence(
        fact or f"library {lib.soname}",
        f"{c.real_path} ({c.version or 'version unknown'}, {c.found_via})",
        c.version_source or c.real_path,
    )


def is_driver_soname(name: str) -> bool:
    return name.startswith(("libcuda.so", "libnvidia-", "libnvcuvid", "libcudadebugger"))


def real_missing_deps(lib: LibraryResolution) -> list[str]:
    return [m for m in lib.missing_deps if not is_driver_soname(m.split(" ", 1)[0])]


def build_minor(env: Environment, matrix: Matrix, major: int) -> tuple[Optional[str], str]:
    """The build's cuDNN major.minor: build_info.py states only the major; the matrix adds the minor."""
    tf = env.tensorflow
    release = matrix.tf_release(tf.version) if tf else None
    if release is not None and release.cudnn is not None and release.cudnn.release[0] == major:
        return str(release.cudnn), f"{release.label} in the matrix"
    return None, ""


def has_extra(env: Environment, extra: str) -> bool:
    tf = env.tensorflow
    pkg = env.package(tf.distribution) if tf else None
    return bool(pkg and any(f'extra == "{extra}"' in r or f"extra == '{extra}'" in r for r in pkg.requires))
