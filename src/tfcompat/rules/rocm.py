"""4xx: AMD ROCm builds of TensorFlow against the node's ROCm and GPUs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Optional, Union

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, Severity, TensorFlowBuild
from tfcompat.rules._common import required, required_tf, tf_evidence, tf_label, version_of

Result = Iterator[Union[Hit, NotApplicable]]

ROCM_NAMING_SOURCE = (
    "https://rocm.docs.amd.com/projects/install-on-linux/en/docs-6.0.2/reference/3rd-party-support-matrix.html"
)


def rocm_of_tf_version(version: str) -> Optional[str]:
    """tensorflow-rocm versions are `<TF version>.<ROCm version without dots>`: 2.14.0.600 -> 6.0.0."""
    v = version_of(version)
    if v is None or len(v.release) < 4:
        return None
    digits = str(v.release[3])
    if not re.fullmatch(r"\d{3}", digits):
        return None
    return f"{digits[0]}.{digits[1]}.{digits[2]}"


def _is_rocm(tf: TensorFlowBuild) -> bool:
    return bool(tf.is_rocm_build) or tf.distribution == "tensorflow-rocm"


@rule("TFC401", "rocm-version-mismatch", Severity.ERROR, requires=("tensorflow", "rocm.version"))
def rocm_version_mismatch(env: Environment, matrix: Matrix) -> Result:
    """tensorflow-rocm was built for another ROCm release than the one installed on the node.

    What: tensorflow-rocm wheels encode their ROCm release in the version (2.14.0.600 is built for
    ROCm 6.0.0); /opt/rocm/.info/version names the installed user space.

    Why it crashes: the wheel links libamdhip64.so.<major>, libhsa-runtime64.so.1 and librccl.so.1 of
    its ROCm: another major fails at import with "libamdhip64.so.6: cannot open shared object file";
    another minor loads but is untested and can fail in kernels or RCCL.

    How to fix: install the tensorflow-rocm build for the installed ROCm (the suffix matches), or the
    ROCm release the wheel was built for.
    """
    tf = required_tf(env)
    rocm = required(env.host.rocm, "rocm")
    rocm_version = required(rocm.version, "rocm.version")
    if not _is_rocm(tf):
        yield NotApplicable(f"{tf_label(tf)} is not a ROCm build")
        return
    built = rocm_of_tf_version(tf.version)
    if built is None:
        yield NotApplicable(f"{tf_label(tf)} does not name its ROCm release in its version")
        return
    b, have = version_of(built), version_of(rocm_version)
    if b is None or have is None or b.release[:2] == have.release[:2]:
        return
    severity = Severity.ERROR if b.major != have.major else Severity.WARNING
    yield Hit(
        message=f"{tf_label(tf)} is built for ROCm {built}, but ROCm {rocm_version} is installed"
        + (f" (another major: its libamdhip64.so.{b.major} will not be found)" if b.major != have.major else ""),
        evidence=(
            tf_evidence(tf),
            Evidence("rocm.version", rocm_version, rocm.version_source or "/opt/rocm/.info/version"),
            Evidence("tensorflow-rocm version scheme", "<TF version>.<ROCm without dots>", ROCM_NAMING_SOURCE),
        ),
        remediation=f"Install the tensorflow-rocm build for ROCm {have.major}.{have.minor}, or ROCm {built}.",
        severity=severity,
    )


@rule("TFC402", "rocm-gfx-unsupported", Severity.ERROR, requires=("tensorflow", "rocm"))
def rocm_gfx_unsupported(env: Environment, matrix: Matrix) -> Result:
    """An AMD GPU's gfx target is not among the targets this tensorflow-rocm build carries code for.

    What: KFD's topology (/sys/class/kfd/kfd/topology/nodes/*/properties, gfx_target_version) names
    each GPU's LLVM target (gfx90a, gfx942, gfx1100); the wheel carries offload code for a fixed list
    (tensorflow-rocm 2.14.0.600: gfx900, gfx906, gfx908, gfx90a, gfx1030, gfx1100).

    Why it crashes: TensorFlow either ignores the GPU ("Ignoring visible gpu device ... with AMDGPU
    ISA gfxNNN") or kernels fail to launch with "hipErrorNoBinaryForGpu: Unable to find code object
    for all current devices".

    How to fix: use a tensorflow-rocm build for this GPU's target (AMD's repo.radeon.com wheels for
    newer ROCm releases), or run on GPUs whose target the build lists.
    """
    tf = required_tf(env)
    rocm = required(env.host.rocm, "rocm")
    if not _is_rocm(tf):
        yield NotApplicable(f"{tf_label(tf)} is not a ROCm build")
        return
    entry = next((e for e in matrix.tensorflow_rocm if tf.version in e.releases and e.gfx), None)
    if entry is None:
        yield NotApplicable(f"the matrix lists no gfx targets for {tf_label(tf)}")
        return
    for g in rocm.gpus:
        if g.gfx_target in entry.gfx:
            continue
        yield Hit(
            message=f"AMD GPU (KFD node {g.node}) is {g.gfx_target}, but {tf_label(tf)} carries code only for "
            f"{', '.join(entry.gfx)}: TensorFlow ignores it or fails with hipErrorNoBinaryForGpu",
            evidence=(
                Evidence(f"kfd node {g.node} gfx_target_version", g.gfx_target, g.source),
                Evidence("build gfx targets", " ".join(entry.gfx), ", ".join(entry.source)),
            ),
            remediation=f"Use a tensorflow-rocm build with {g.gfx_target} code (AMD's wheels for a newer ROCm), "
            "or run on a GPU it supports.",
        )
