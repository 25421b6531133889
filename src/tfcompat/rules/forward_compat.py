"""2xx: a cuda-compat (forward-compatibility) libcuda: on which GPUs, on which kernel-module branch, and
whether the node needs it at all.

The facts are NVIDIA's: the CUDA Compatibility guide's forward-compatibility table ([[forward_compat_package]])
and the last driver branch of each GPU architecture ([[driver_gpu_support]]). The split: TFC204 judges the GPUs
(the package's user-mode driver must support them), TFC212 the kernel module (the package must support its
branch), TFC211 says when the host driver alone already meets TensorFlow's need.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Optional, Union

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.matrix.forward_compat import branch_of, compat_package_of, gpu_support_of
from tfcompat.model import Driver, DriverLibrary, Environment, Evidence, Severity
from tfcompat.rules._common import cuda_of, required_driver, required_tf, tf_label, version_of

Result = Iterator[Union[Hit, NotApplicable]]

# Forward compatibility (cuda-compat) is supported on data-center GPUs, select NGC-ready RTX SKUs and Jetson
# only (NVIDIA, "CUDA Forward Compatibility"); these name prefixes are consumer/workstation products.
_NO_FORWARD_COMPAT = ("NVIDIA GeForce", "GeForce", "NVIDIA TITAN", "TITAN", "Quadro", "NVIDIA Quadro")
FORWARD_COMPAT_SOURCE = "https://docs.nvidia.com/deploy/cuda-compatibility/forward-compatibility.html"


def compat_libcuda(d: Driver) -> Optional[DriverLibrary]:
    """The libcuda.so.1 the loader picks, where it comes from a cuda-compat package."""
    return next((lib for lib in d.libraries if lib.soname == "libcuda.so.1" and lib.forward_compat), None)


def _kernel(d: Driver) -> tuple[Optional[str], str]:
    """The kernel module's version (NVML reports the same: libnvidia-ml is not part of cuda-compat)."""
    if d.kernel_module_version:
        return d.kernel_module_version, d.kernel_module_source or "/proc/driver/nvidia/version"
    return d.nvml_driver_version, "NVML nvmlSystemGetDriverVersion"


def _compat_ev(lib: DriverLibrary) -> Evidence:
    return Evidence("libcuda.so.1 (cuda-compat)", lib.version or "?", lib.path)


@rule("TFC204", "forward-compat-unsupported-gpu", Severity.ERROR, requires=("driver", "gpus"))
def forward_compat_unsupported(env: Environment, matrix: Matrix) -> Result:
    """A cuda-compat (forward-compatibility) libcuda is used on a GPU that does not support it.

    What: the libcuda.so.1 the loader finds comes from a cuda-compat package (a newer user-mode
    driver for an older kernel module), and the node has GeForce, TITAN or Quadro GPUs, or GPUs whose
    architecture the package's driver branch no longer supports (Kepler: R470 is the last branch;
    Maxwell, Pascal, Volta: R580).

    Why it crashes: forward compatibility works only on data-center GPUs (and select NGC-ready RTX
    SKUs and Jetson); elsewhere cuInit fails with CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE (804,
    "forward compatibility was attempted on non supported HW") and TensorFlow sees no GPU. A user-mode
    driver from a branch after the last one for the GPU's architecture does not drive that GPU at all.

    How to fix: remove the cuda-compat directory from LD_LIBRARY_PATH / ld.so.conf on these nodes and
    upgrade the host driver instead (within what the GPU supports), use a TensorFlow built with a CUDA
    the host driver runs, or run the image only on data-center GPUs the package supports.
    """
    d = required_driver(env)
    compat = compat_libcuda(d)
    if compat is None:
        return
    lib_ev = _compat_ev(compat)
    bad = [g for g in env.host.gpus if (g.name or "").startswith(_NO_FORWARD_COMPAT)]
    if bad:
        names = "; ".join(f"GPU {g.index} {g.name} ({g.uuid or '?'})" for g in bad)
        yield Hit(
            message=f"libcuda.so.1 comes from a forward-compatibility package ({compat.path}, "
            f"{compat.version or '?'}) but forward compatibility is not supported on {names}: cuInit fails "
            "with error 804",
            evidence=(lib_ev,)
            + tuple(Evidence(f"gpu[{g.index}].name", g.name or "?", "NVML nvmlDeviceGetName") for g in bad)
            + (Evidence("forward compatibility", "data-center GPUs only", FORWARD_COMPAT_SOURCE),),
            remediation="Take the cuda-compat directory out of the library path on these nodes and upgrade the "
            "host driver instead, or schedule the image on data-center GPUs only.",
        )
    branch = branch_of(compat.version)
    if branch is None:
        return
    dropped = [
        (g, row)
        for g in env.host.gpus
        for row in [gpu_support_of(matrix.driver_gpu_support, g.compute_capability)]
        if row is not None and branch > row.last_branch
    ]
    if dropped:
        names = "; ".join(
            f"GPU {g.index} {g.name or '?'} ({row.architecture}, compute capability {g.compute_capability}, last "
            f"driver R{row.last_branch})"
            for g, row in dropped
        )
        yield Hit(
            message=f"libcuda.so.1 comes from a forward-compatibility package of driver branch R{branch} "
            f"({compat.path}, {compat.version}), which no longer supports {names}: CUDA cannot initialise "
            "these GPUs through it",
            evidence=(lib_ev,)
            + tuple(
                Evidence(f"gpu[{g.index}].compute_capability", g.compute_capability or "?", "NVML") for g, _ in dropped
            )
            + tuple(
                dict.fromkeys(
                    Evidence(f"last driver for {row.architecture}", f"R{row.last_branch}", row.source[0])
                    for _, row in dropped
                )
            ),
            remediation="Take the cuda-compat directory out of the library path on these nodes and use a "
            "TensorFlow built with a CUDA that the GPU's last driver branch runs (or move the job to newer GPUs).",
        )


@rule("TFC211", "forward-compat-unnecessary", Severity.INFO, requires=("tensorflow", "driver"))
def forward_compat_unnecessary(env: Environment, matrix: Matrix) -> Result:
    """The host's kernel driver alone already meets TensorFlow's CUDA need: the cuda-compat libcuda is unnecessary.

    What: the libcuda.so.1 the loader picks comes from a cuda-compat package, and the node's own driver
    (the kernel module's version) is at least the driver of the CUDA release TensorFlow was built with.

    Why it crashes: nothing fails today, but the package pins the user-mode driver: NVIDIA supports
    older forward-compatibility packages only on older kernel modules, so once the node's driver is
    upgraded past the package's branch, cuInit fails with CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803,
    "system has unsupported display driver / cuda driver combination") (TFC212). NVIDIA: "When
    performing a full system upgrade ... remove any forward compatible packages present in the system."

    How to fix: take the cuda-compat directory out of LD_LIBRARY_PATH / ld.so.conf (or do not install
    cuda-compat in the image); the host driver runs this TensorFlow with every feature.
    """
    tf = required_tf(env)
    d = required_driver(env)
    compat = compat_libcuda(d)
    if compat is None:
        return
    if tf.is_cuda_build is False:
        yield NotApplicable(f"{tf_label(tf)} is not a CUDA build")
        return
    kernel, kernel_source = _kernel(d)
    have, compat_v = version_of(kernel), version_of(compat.version)
    if kernel is None or have is None or compat_v is None:
        yield NotApplicable("the kernel module's or the cuda-compat libcuda's version is unknown")
        return
    if compat_v <= have:
        return  # not in effect: the package is older than the kernel module (TFC212)
    cuda, cuda_source = cuda_of(tf, matrix.tf_release(tf.version))
    if cuda is None:
        yield NotApplicable(f"the CUDA version of {tf_label(tf)} is unknown (no build_info.py, not in the matrix)")
        return
    need = matrix.driver_need(cuda)
    want, want_text = (need.full, need.full_text) if need.full is not None else (need.floor, need.floor_text)
    if want is None or want_text is None:
        yield NotApplicable(f"the matrix has no driver facts for CUDA {cuda}")
        return
    if have < want:
        return  # the package is what lets this TensorFlow run with every feature
    branch = branch_of(compat.version)
    yield Hit(
        message=f"the host's kernel driver {kernel} already meets {want_text}, the driver of CUDA {cuda} that "
        f"{tf_label(tf)} was built with: the cuda-compat libcuda {compat.version} ({compat.path}) is unnecessary, "
        f"and CUDA fails to initialise (error 803) once the node's driver is upgraded past R{branch}",
        evidence=(
            Evidence("driver.kernel_module_version", kernel, kernel_source),
            _compat_ev(compat),
            Evidence("tensorflow build CUDA", cuda, cuda_source),
            Evidence(f"CUDA {cuda} driver", want_text, need.sources[0] if need.sources else "the matrix"),
        ),
        remediation=f"Take {os.path.dirname(compat.path)} out of LD_LIBRARY_PATH / ld.so.conf (or do not install "
        "cuda-compat in the image): the host driver runs this TensorFlow by itself.",
        severity=Severity.INFO,
    )


@rule("TFC212", "forward-compat-unsupported-branch", Severity.ERROR, requires=("driver",))
def forward_compat_unsupported_branch(env: Environment, matrix: Matrix) -> Result:
    """A cuda-compat libcuda is used on a kernel-module branch that the package does not support.

    What: the libcuda.so.1 the loader picks comes from a cuda-compat package, and the loaded kernel
    module is of a branch NVIDIA's forward-compatibility table does not mark compatible with it.
    Error: the kernel module is newer than the package ("older forward compatibility packages are not
    supported on new driver versions"; an image built with cuda-compat, run after the host driver was
    upgraded). Warning: the kernel module is older, but its branch is not among the package's supported
    ones (end-of-life branches and New Feature Branches are not supported targets).

    Why it crashes: cuInit fails with CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803, "system has unsupported
    display driver / cuda driver combination") when the package's user-mode driver and the kernel
    module do not go together; on an unsupported branch NVIDIA gives no guarantee that it initialises.

    How to fix: a kernel module newer than the package runs older CUDA applications by itself (backward
    compatibility): take the cuda-compat directory out of the library path. On an unsupported older
    branch, move the node to a supported branch (an LTS or production branch the table lists) or use the
    package that supports it.
    """
    d = required_driver(env)
    compat = compat_libcuda(d)
    if compat is None:
        return
    kernel, kernel_source = _kernel(d)
    k_branch, c_branch = branch_of(kernel), branch_of(compat.version)
    if kernel is None or k_branch is None or c_branch is None:
        yield NotApplicable("the kernel module's or the cuda-compat libcuda's version is unknown")
        return
    ev_kernel = Evidence("driver.kernel_module_version", kernel, kernel_source)
    pkg = compat_package_of(matrix.forward_compat_packages, compat.version or "")
    pkg_name = pkg.package if pkg is not None else f"the R{c_branch} cuda-compat package"
    if k_branch > c_branch:
        yield Hit(
            message=f"libcuda.so.1 comes from {pkg_name} ({compat.path}, {compat.version}), older than the loaded "
            f"kernel module {kernel}: forward-compatibility packages are not supported on newer drivers, cuInit "
            'fails with CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803, "system has unsupported display driver / cuda '
            'driver combination")',
            evidence=(
                ev_kernel,
                _compat_ev(compat),
                Evidence(
                    "forward compatibility", "older packages are not supported on new drivers", FORWARD_COMPAT_SOURCE
                ),
            ),
            remediation=f"Take {os.path.dirname(compat.path)} out of LD_LIBRARY_PATH / ld.so.conf (or rebuild the "
            "image without cuda-compat): the newer host driver runs this CUDA by itself.",
        )
        return
    if k_branch == c_branch:
        return  # the package's own branch: not needed, not harmful ("N/A" in NVIDIA's table)
    if pkg is None:
        yield NotApplicable(f"NVIDIA's forward-compatibility table (the matrix) has no package of branch R{c_branch}")
        return
    if k_branch in pkg.compatible:
        return
    info = matrix.driver_branch(kernel)
    status = ""
    if info is not None and info.designation == "new-feature":
        status = f" (R{k_branch} is a New Feature Branch)"
    elif info is not None and info.end_of_life:
        status = f" (R{k_branch} reaches end of life {info.end_of_life})"
    listed = ", ".join(f"R{b}" for b in pkg.compatible) or "none but its own"
    yield Hit(
        message=f"libcuda.so.1 comes from {pkg.package} ({compat.path}, {compat.version}), which NVIDIA supports on "
        f"kernel-module branches {listed} only, not on R{k_branch} ({kernel}){status}: CUDA may fail to initialise "
        "(error 803) and NVIDIA does not support the combination",
        evidence=(
            ev_kernel,
            _compat_ev(compat),
            Evidence(f"{pkg.package} compatible branches", listed, pkg.source[0]),
        ),
        remediation=f"Move the node to a branch {pkg.package} supports ({listed}) or to a driver that runs the "
        "application's CUDA by itself, then take the cuda-compat directory out of the library path.",
        severity=Severity.WARNING,
    )
