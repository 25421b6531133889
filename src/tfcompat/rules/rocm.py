"""4xx: AMD ROCm builds of TensorFlow against the node's ROCm and GPUs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Optional, Union

from packaging.specifiers import SpecifierSet

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, Severity, TensorFlowBuild
from tfcompat.rules._common import required, required_tf, tf_evidence, tf_label, version_of

Result = Iterator[Union[Hit, NotApplicable]]

_BUILD_ROCM = re.compile(r"^/opt/rocm-(\d+\.\d+(?:\.\d+)?)(?:/|$)")
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
    ROCm 6.0.0); /opt/rocm/.info/version names the installed user space. Before 2.10 the version names
    no ROCm: then TF's own objects say it, by the RUNPATH of the build (/opt/rocm-3.5.0/lib in
    tensorflow-rocm 2.2.0) or else by the ROCm sonames they need (libamdhip64.so.3: ROCm 3.x, from the
    matrix's [[rocm_soname]] table).

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
    have = version_of(rocm_version)
    installed = Evidence("rocm.version", rocm_version, rocm.version_source or "/opt/rocm/.info/version")
    built = rocm_of_tf_version(tf.version)
    how = Evidence("tensorflow-rocm version scheme", "<TF version>.<ROCm without dots>", ROCM_NAMING_SOURCE)
    if built is None:  # before 2.10 the version names no ROCm: the objects' RUNPATH and sonames say it
        from_binaries = binary_rocm(tf, matrix)
        if from_binaries is None:
            yield NotApplicable(f"{tf_label(tf)} names no ROCm release in its version, and its objects none")
            return
        built, how, spec = from_binaries
        if spec is not None:  # only a soname range is known: a release outside it lacks that file
            if have is None or spec.contains(have, prereleases=True):
                return
            yield Hit(
                message=f"{tf_label(tf)} is built for ROCm {built}, but ROCm {rocm_version} is installed: "
                f"{how.value} is not part of it",
                evidence=(tf_evidence(tf), installed, how),
                remediation=f"Install ROCm {built}, or a tensorflow-rocm built for ROCm {rocm_version}.",
            )
            return
    b = version_of(built)
    if b is None or have is None or b.release[:2] == have.release[:2]:
        return
    severity = Severity.ERROR if b.major != have.major else Severity.WARNING
    yield Hit(
        message=f"{tf_label(tf)} is built for ROCm {built}, but ROCm {rocm_version} is installed"
        + (f" (another major: its libamdhip64.so.{b.major} will not be found)" if b.major != have.major else ""),
        evidence=(tf_evidence(tf), installed, how),
        remediation=f"Install the tensorflow-rocm build for ROCm {have.major}.{have.minor}, or ROCm {built}.",
        severity=severity,
    )


def rocm_range(spec: SpecifierSet) -> str:
    """'==5.*' -> '5.x'; any other specifier as written."""
    m = re.fullmatch(r"==(\d+(?:\.\d+)*)\.\*", str(spec))
    return f"{m.group(1)}.x" if m else str(spec)


def binary_rocm(tf: TensorFlowBuild, matrix: Matrix) -> Optional[tuple[str, Evidence, Optional[SpecifierSet]]]:
    """The ROCm TF's own objects were built for: (version, evidence, None) from a RUNPATH that names the build
    machine's /opt/rocm-X.Y.Z; else (the range, evidence, its specifier) from a ROCm soname the matrix knows."""
    for obj in tf.rocm_objects:
        for entry in obj.build_rocm:
            m = _BUILD_ROCM.match(entry)
            if m:
                return m.group(1), Evidence("RUNPATH of the build", entry, obj.path), None
    for obj in tf.rocm_objects:
        for name in obj.rocm_needed:
            known = matrix.rocm_soname(name)
            if known is not None:
                rng = rocm_range(known.rocm)
                fact = f"DT_NEEDED of {obj.path} (ROCm {rng}" + (")" if known.confirmed else ", unconfirmed)")
                return rng, Evidence(fact, name, ", ".join(known.source)), known.rocm
    return None


def binary_gfx(tf: TensorFlowBuild) -> Optional[tuple[tuple[str, ...], str]]:
    """The gfx targets TF's own objects carry code for and the objects read; None when none was read whole
    (no .hip_fatbin, or bundles compressed beyond reading: then the list could be short)."""
    read = [o for o in tf.rocm_objects if o.offload_section is not None]
    if not read or any(o.offload_compressed or o.offload_problems for o in read):
        return None
    targets = tuple(sorted({g for o in read for g in o.gfx_targets}))
    return (targets, ", ".join(o.path for o in read if o.gfx_targets)) if targets else None


@rule("TFC402", "rocm-gfx-unsupported", Severity.ERROR, requires=("tensorflow", "rocm"))
def rocm_gfx_unsupported(env: Environment, matrix: Matrix) -> Result:
    """An AMD GPU's gfx target is not among the targets this tensorflow-rocm build carries code for.

    What: KFD's topology (/sys/class/kfd/kfd/topology/nodes/*/properties, gfx_target_version) names
    each GPU's LLVM target (gfx90a, gfx942, gfx1100); the wheel carries offload code for a fixed list
    (tensorflow-rocm 2.14.0.600: gfx900, gfx906, gfx908, gfx90a, gfx1030, gfx1100). The list is read
    from the clang offload bundles in the .hip_fatbin section of TF's own libraries when they were read
    whole, else taken from the matrix; the finding says which. Only the processor is compared (a code
    object built for xnack+ or sramecc- alone may still not load), and a build with a generic target
    (gfx9-generic) is not judged.

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
    binaries = binary_gfx(tf)
    entry = next((e for e in matrix.tensorflow_rocm if tf.version in e.releases and e.gfx), None)
    if binaries is not None:  # facts on the machine beat the matrix
        gfx, source, which = binaries[0], binaries[1], "the .hip_fatbin code objects of TF's own libraries"
    elif entry is not None:
        gfx, source, which = entry.gfx, ", ".join(entry.source), "the matrix"
    else:
        yield NotApplicable(f"the matrix lists no gfx targets for {tf_label(tf)}, and none was read from its objects")
        return
    generic = any(t.endswith("-generic") for t in gfx)  # a generic target runs on a family: not judged here
    for g in rocm.gpus:
        if g.gfx_target in gfx or generic:
            continue
        yield Hit(
            message=f"AMD GPU (KFD node {g.node}) is {g.gfx_target}, but {tf_label(tf)} carries code only for "
            f"{', '.join(gfx)} (from {which}): TensorFlow ignores it or fails with hipErrorNoBinaryForGpu",
            evidence=(
                Evidence(f"kfd node {g.node} gfx_target_version", g.gfx_target, g.source),
                Evidence(f"build gfx targets ({which})", " ".join(gfx), source),
            ),
            remediation=f"Use a tensorflow-rocm build with {g.gfx_target} code (AMD's wheels for a newer ROCm), "
            "or run on a GPU it supports.",
        )
