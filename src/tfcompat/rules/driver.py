"""2xx: the NVIDIA driver and the GPUs of the node."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Union

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, Severity
from tfcompat.rules._common import cuda_of, required_driver, required_tf, tf_label, version_of

Result = Iterator[Union[Hit, NotApplicable]]


@rule("TFC201", "driver-too-old-for-cuda", Severity.ERROR, requires=("tensorflow", "driver"))
def driver_too_old(env: Environment, matrix: Matrix) -> Result:
    """The NVIDIA driver is older than the CUDA that TensorFlow was built with needs.

    What: each CUDA major needs a minimum driver (CUDA 12: 525.60.13 on Linux) under NVIDIA's
    minor-version compatibility; each toolkit release ships with a newer one (CUDA 12.5 Update 1:
    555.42.06) that supports every feature.

    Why it crashes: below the major's floor the CUDA runtime cannot initialise: TensorFlow logs
    "CUDA driver version is insufficient for CUDA runtime version" / "failed call to cuInit" and runs
    on the CPU, or jobs that require a GPU abort. Between the floor and the toolkit's driver,
    everything runs except PTX produced by the newer toolchain: XLA warns that "the driver is
    older than the PTX compiler" and disables parallel compilation; kernels JIT-compiled from PTX
    for GPUs without SASS fail to load.

    How to fix: upgrade the NVIDIA driver to at least the toolkit's driver (or, on data-center GPUs
    only, install the cuda-compat forward-compatibility package), or use a TensorFlow built with an
    older CUDA.
    """
    tf = required_tf(env)
    driver = required_driver(env)
    if tf.is_cuda_build is False:
        yield NotApplicable(f"{tf_label(tf)} is not a CUDA build")
        return
    release = matrix.tf_release(tf.version)
    cuda, cuda_source = cuda_of(tf, release)
    cuda_v = version_of(cuda)
    if cuda is None or cuda_v is None:
        yield NotApplicable(f"the CUDA version of {tf_label(tf)} is unknown (no build_info.py, not in the matrix)")
        return
    shown, source = driver.version, driver.version_source
    have = version_of(shown)
    if shown is None or have is None:
        yield NotApplicable(f"driver version {driver.version!r} is not a version")
        return
    # A cuda-compat libcuda (forward compatibility) brings a newer user-mode driver: CUDA runs at its
    # level on data-center GPUs (TFC204 judges the GPUs, TFC212 the kernel-module branch: rules/forward_compat.py).
    compat = next(
        (
            lib
            for lib in driver.libraries
            if lib.soname == "libcuda.so.1" and lib.forward_compat and version_of(lib.version or "") is not None
        ),
        None,
    )
    compat_v = version_of(compat.version) if compat is not None else None
    if compat is not None and compat.version is not None and compat_v is not None and compat_v > have:
        have, shown, source = compat_v, compat.version, f"forward-compatibility {compat.path}"
    need = matrix.driver_need(cuda)
    if need.floor is None or need.floor_text is None:  # set together by driver_need
        yield NotApplicable(f"the matrix has no driver facts for CUDA {cuda}")
        return
    ev_driver = Evidence("driver.version", shown, source)
    ev_cuda = Evidence("tensorflow build CUDA", cuda, cuda_source)
    if need.major is not None and need.major.min_driver is not None and need.floor == need.major.min_driver:
        mvc, floor_fact, floor_source = True, f"CUDA {cuda_v.major}.x minimum driver", need.major.source
    else:
        # a floor that is not the major's minor-version-compatibility floor is the toolkit's own driver
        assert need.toolkit is not None, "driver_need: a floor without the major's comes from the toolkit"
        mvc, floor_fact, floor_source = False, f"CUDA {cuda} driver", need.toolkit.source
    ev_floor = Evidence(floor_fact, need.floor_text, floor_source)
    if have < need.floor:
        what = (
            f"the minimum for any CUDA {cuda_v.major} application"
            if mvc
            else f"the driver CUDA {cuda} needs (no minor-version compatibility for it)"
        )
        yield Hit(
            message=f"NVIDIA driver {shown} is older than {need.floor_text}, {what}; {tf_label(tf)} "
            f"(built with CUDA {cuda}) cannot initialise CUDA on this node",
            evidence=(ev_driver, ev_cuda, ev_floor),
            remediation=f"Upgrade the NVIDIA driver to >= {need.full_text or need.floor_text} (at least "
            f"{need.floor_text}), or use a TensorFlow release built with an older CUDA.",
        )
    elif need.toolkit is not None and need.full is not None and have < need.full:  # full: the toolkit's driver
        yield Hit(
            message=f"NVIDIA driver {shown} is older than {need.full_text}, the driver of CUDA {cuda} that "
            f"{tf_label(tf)} was built with: it runs under minor-version compatibility, but PTX from "
            "the newer toolchain cannot be JIT-compiled (XLA disables parallel compilation; GPUs "
            "without SASS in the build fail)",
            evidence=(
                ev_driver,
                ev_cuda,
                Evidence(f"CUDA {need.toolkit.version} driver", need.toolkit.min_driver_text, need.toolkit.source),
                ev_floor,
            ),
            remediation=f"Upgrade the NVIDIA driver to >= {need.full_text}.",
            severity=Severity.WARNING,
        )


_PTX_JIT = "libnvidia-ptxjitcompiler.so.1"  # libcuda.so.1 dlopen()s it to JIT-compile PTX


@rule("TFC203", "driver-library-mismatch", Severity.ERROR, requires=("driver",))
def driver_library_mismatch(env: Environment, matrix: Matrix) -> Result:
    """The loaded NVIDIA kernel module and the user-space driver libraries are different versions.

    What: /proc/driver/nvidia/version names the kernel module that is loaded; libcuda.so.1 and
    libnvidia-ml.so.1 carry their version in their file names. They differ after a driver upgrade
    without a reboot (or module reload), or when a container brings its own driver libraries.
    libnvidia-ptxjitcompiler.so.1 (which libcuda dlopen()s to JIT-compile PTX) is judged the same way,
    as a warning: only a GPU newer than TensorFlow's compiled kernels needs it.

    Why it crashes: NVML fails with "Driver/library version mismatch" (nvidia-smi too), cuInit fails
    with CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803), and TensorFlow sees no GPU.

    How to fix: reboot the node (or unload and reload the nvidia kernel modules), so the kernel module
    matches the installed user-space driver; in containers, let the NVIDIA container toolkit inject
    the host's libraries instead of shipping them in the image. A cuda-compat libcuda is the
    exception: it is meant to be newer (TFC204, TFC211, TFC212 judge it).
    """
    d = required_driver(env)
    kernel = d.kernel_module_version
    ev_kernel = Evidence(
        "driver.kernel_module_version", kernel or "?", d.kernel_module_source or "/proc/driver/nvidia/version"
    )
    if d.nvml_error == "NVML_ERROR_LIB_RM_VERSION_MISMATCH":
        nvml_lib = next((lib for lib in d.libraries if lib.soname == "libnvidia-ml.so.1"), None)
        ev = [ev_kernel, Evidence("NVML", "NVML_ERROR_LIB_RM_VERSION_MISMATCH", "nvmlInit (child process)")]
        if nvml_lib:
            ev.append(Evidence("libnvidia-ml.so.1", nvml_lib.version or "?", nvml_lib.path))
        yield Hit(
            message=f"NVML reports a driver/library version mismatch: kernel module {kernel or '?'}"
            + (f", libnvidia-ml {nvml_lib.version}" if nvml_lib and nvml_lib.version else "")
            + "; CUDA cannot initialise until the node is rebooted or the module reloaded",
            evidence=tuple(ev),
            remediation="Reboot the node (or reload the nvidia kernel modules) so the kernel module matches the "
            "installed driver libraries; drain it until then.",
        )
        return
    if not kernel:
        yield NotApplicable("the kernel module version is unknown (/proc/driver/nvidia/version unreadable)")
        return
    for lib in d.libraries:
        if lib.version is None or lib.forward_compat or lib.version == kernel:
            continue
        if lib.soname == _PTX_JIT:  # only PTX JIT-compiled by the driver needs it: a GPU newer than TF's SASS
            yield Hit(
                message=f"{lib.soname} is version {lib.version} ({lib.path}) but the loaded kernel module is "
                f"{kernel}: libcuda.so.1 dlopen()s it to JIT-compile PTX (a GPU newer than TensorFlow's "
                "compiled kernels), which then fails",
                evidence=(ev_kernel, Evidence(lib.soname, lib.version, lib.path)),
                remediation=f"Install the {lib.soname} of the driver {kernel} (the same driver package as "
                "libcuda.so.1); if the image ships its own, remove it and let the NVIDIA container toolkit inject "
                "the host's.",
                severity=Severity.WARNING,
            )
            continue
        yield Hit(
            message=f"{lib.soname} is version {lib.version} ({lib.path}) but the loaded kernel module is {kernel}: "
            'CUDA fails with "driver/library version mismatch" (CUDA_ERROR_SYSTEM_DRIVER_MISMATCH)',
            evidence=(ev_kernel, Evidence(lib.soname, lib.version, lib.path)),
            remediation="Reboot the node (or reload the nvidia kernel modules); if the image ships its own "
            f"{lib.soname}, remove it and let the NVIDIA container toolkit inject the host's.",
        )


@rule("TFC209", "gpu-lost", Severity.ERROR, requires=("driver",))
def gpu_lost(env: Environment, matrix: Matrix) -> Result:
    """NVML cannot reach a GPU: it fell off the bus, or the driver reports it lost.

    What: nvmlInit or a per-GPU query answered NVML_ERROR_GPU_IS_LOST (or another error for one GPU
    while the others answered).

    Why it crashes: CUDA fails on that GPU (cudaErrorDevicesUnavailable, Xid 79 "GPU has fallen off the
    bus" in the kernel log); jobs scheduled on it hang or die, and the rest of the node's GPU rules
    cannot judge it.

    How to fix: drain the node; reset the GPU (`nvidia-smi -r`) or reboot; check `dmesg` for Xid 79
    and the PCIe link; RMA the GPU if it recurs.
    """
    d = required_driver(env)
    problems = list(d.gpu_errors)
    if d.nvml_error == "NVML_ERROR_GPU_IS_LOST":
        problems.insert(0, "nvmlInit: NVML_ERROR_GPU_IS_LOST")
    if problems:
        yield Hit(
            message="NVML cannot query " + "; ".join(problems) + ": jobs on this node fail or hang on that GPU",
            evidence=tuple(Evidence("NVML", p, "NVML child process (nvmlInit / per-GPU queries)") for p in problems),
            remediation="Drain the node, then reset the GPU (nvidia-smi -r) or reboot; check dmesg for Xid 79; "
            "RMA the GPU if it recurs.",
        )
