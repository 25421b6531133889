"""2xx: the NVIDIA driver and the GPUs of the node."""

from __future__ import annotations

from typing import Iterator, Union

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, Severity
from tfcompat.rules._common import cuda_of, tf_label, version_of

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
    tf = env.tensorflow
    driver = env.host.driver
    assert tf is not None and driver is not None
    if tf.is_cuda_build is False:
        yield NotApplicable(f"{tf_label(tf)} is not a CUDA build")
        return
    release = matrix.tf_release(tf.version)
    cuda, cuda_source = cuda_of(tf, release)
    cuda_v = version_of(cuda)
    if cuda_v is None:
        yield NotApplicable(f"the CUDA version of {tf_label(tf)} is unknown (no build_info.py, not in the matrix)")
        return
    have = version_of(driver.version)
    if have is None:
        yield NotApplicable(f"driver version {driver.version!r} is not a version")
        return
    major = matrix.cuda_major(cuda_v.major)
    toolkit = matrix.cuda_toolkit(cuda)
    if major is None:
        yield NotApplicable(f"the matrix has no driver floor for CUDA {cuda_v.major}")
        return
    ev_driver = Evidence("driver.version", driver.version, driver.version_source)
    ev_cuda = Evidence("tensorflow build CUDA", cuda, cuda_source)
    ev_floor = Evidence(f"CUDA {cuda_v.major}.x minimum driver", major.min_driver_text, major.source)
    if have < major.min_driver:
        yield Hit(
            message=f"NVIDIA driver {driver.version} is older than {major.min_driver_text}, the minimum for any CUDA "
                    f"{cuda_v.major} application; {tf_label(tf)} (built with CUDA {cuda}) cannot initialise "
                    "CUDA on this node",
            evidence=(ev_driver, ev_cuda, ev_floor),
            remediation=f"Upgrade the NVIDIA driver to >= {toolkit.min_driver_text if toolkit else major.min_driver_text} "
                        f"(at least {major.min_driver_text}), or use a TensorFlow release built with an older CUDA.",
        )
    elif toolkit is not None and have < toolkit.min_driver:
        yield Hit(
            message=f"NVIDIA driver {driver.version} is older than {toolkit.min_driver_text}, the driver of CUDA {cuda} that "
                    f"{tf_label(tf)} was built with: it runs under minor-version compatibility, but PTX from "
                    "the newer toolchain cannot be JIT-compiled (XLA disables parallel compilation; GPUs "
                    "without SASS in the build fail)",
            evidence=(ev_driver, ev_cuda, Evidence(f"CUDA {toolkit.version} driver", toolkit.min_driver_text,
                                                   toolkit.source), ev_floor),
            remediation=f"Upgrade the NVIDIA driver to >= {toolkit.min_driver_text}.",
            severity=Severity.WARNING,
        )
