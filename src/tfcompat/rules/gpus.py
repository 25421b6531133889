"""2xx, per GPU: each GPU's compute capability against the kernels the TensorFlow build carries."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Optional, Union

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.matrix.arch import CC, Coverage, coverage, parse_arch, parse_cc
from tfcompat.matrix.entries import CC_DROPPED, CC_NATIVE, CC_NEWER, CC_UNLISTED, CudnnRelease, spec_text
from tfcompat.matrix.lookup import CudnnSupport
from tfcompat.model import Environment, Evidence, Gpu, Severity, TensorFlowBuild
from tfcompat.rules._common import cuda_of, required_tf, tf_label, version_of

Result = Iterator[Union[Hit, NotApplicable]]


def gpu_name(g: Gpu) -> str:
    return f"GPU {g.index} ({g.name or 'unknown model'}, {g.uuid or 'no UUID'})"


def gpu_fact(g: Gpu, fact: str, value: str, api: str = "NVML") -> Evidence:
    """Evidence about one GPU, named by index and UUID."""
    return Evidence(f"gpu[{g.index}].{fact}", value, f"{api}, {g.uuid or 'GPU ' + str(g.index)}")


def _gpu_evidence(g: Gpu) -> Evidence:
    return gpu_fact(g, "compute_capability", g.compute_capability or "?", "NVML nvmlDeviceGetCudaComputeCapability")


def build_archs(tf: TensorFlowBuild) -> tuple[tuple[str, ...], bool]:
    """The architecture list the GPU rules judge by: build_info's, else the one read from the SASS/PTX entries
    of TF's CUDA objects (TF < 2.3 states none); True when it is the binaries'."""
    if tf.compute_capabilities or not tf.binary_capabilities:
        return tf.compute_capabilities, False
    return tf.binary_capabilities, True


def binary_coverage(cc: CC, archs: Sequence[str]) -> Coverage:
    """coverage() for entries read from a binary, where compute_XY is PTX alone (in build_info it also means
    SASS): SASS of the same major at or below the GPU's minor, else the newest PTX at or below it."""
    native = coverage(cc, [a for a in archs if a.startswith("sm_")])
    if native.kind == "native":
        return native
    ptx = [(p[1:], a) for a in archs for p in [parse_arch(a)] if p and p[0] == "compute" and p[1:] <= cc]
    if not ptx:
        return Coverage("none", None, None)
    best, entry = max(ptx, key=lambda e: e[0])
    return Coverage("ptx", f"compute_{best[0]}{best[1]}", entry)


def tf_coverage(cc: CC, tf: TensorFlowBuild) -> Coverage:
    archs, from_binary = build_archs(tf)
    return binary_coverage(cc, archs) if from_binary else coverage(cc, archs)


def _build_evidence(env: Environment) -> Evidence:
    tf = required_tf(env)
    archs, from_binary = build_archs(tf)
    if from_binary:
        where = f"read from the SASS/PTX entries of {tf.binary_capabilities_source or 'its CUDA objects'}"
        return Evidence("tensorflow binary compute capabilities", " ".join(archs), where)
    return Evidence("tensorflow build compute capabilities", " ".join(archs), tf.build_info_path or "build_info.py")


def _arch_precheck(env: Environment) -> Optional[str]:
    tf = required_tf(env)
    if tf.is_cuda_build is False:
        return f"{tf_label(tf)} is not a CUDA build"
    if not build_archs(tf)[0]:
        return (
            f"{tf_label(tf)} states no compute capabilities (no build_info.py, or none in it) and none were read "
            "from its CUDA objects"
        )
    if not any(g.compute_capability for g in env.host.gpus):
        return "NVML reported no compute capability for any GPU"
    return None


@rule("TFC205", "gpu-needs-ptx-jit", Severity.WARNING, requires=("tensorflow", "gpus"))
def gpu_needs_ptx_jit(env: Environment, matrix: Matrix) -> Result:
    """A GPU has no native (SASS) kernels in this TensorFlow build and runs only through PTX JIT.

    What: the build carries SASS for a list of architectures (sm_XY) and PTX for the last one
    (compute_XY). A GPU of a newer major than every SASS entry (e.g. Blackwell, compute capability
    10.0 or 12.0, with TF 2.21's `sm_60 ... sm_89, compute_90`) gets its kernels JIT-compiled by
    the driver from PTX.

    Why it crashes: it usually does not crash, but TF warns "CUDA kernels will be jit-compiled from
    PTX, which could take 30 minutes or longer", so the first start of a job stalls; the JIT cache
    must be large enough (CUDA_CACHE_MAXSIZE). The driver must be at least as new as the toolkit
    that produced the PTX, or loading fails with CUDA_ERROR_UNSUPPORTED_PTX_VERSION ("the provided
    PTX was compiled with an unsupported toolchain"): that case is reported as an error.

    Where build_info.py lists no compute capabilities (TF < 2.3, some source and conda builds), the
    list judged is the one read from the SASS/PTX entries of TF's own CUDA objects (`.nv_fatbin`).

    How to fix: use a TensorFlow build with SASS for this architecture (a newer release, a
    community or NGC build), or accept the slow first start and keep the JIT cache warm
    (CUDA_CACHE_MAXSIZE=4294967296). Upgrade the driver to at least the toolkit's driver.
    """
    skip = _arch_precheck(env)
    if skip:
        yield NotApplicable(skip)
        return
    tf = required_tf(env)
    release = matrix.tf_release(tf.version)
    cuda, _ = cuda_of(tf, release)
    toolkit = matrix.cuda_toolkit(cuda) if cuda and version_of(cuda) else None
    driver = env.host.driver
    have = version_of(driver.version) if driver and driver.version else None
    for g in env.host.gpus:
        cc = parse_cc(g.compute_capability)
        if cc is None or g.compute_capability is None:  # a parsed capability has its text
            continue
        cov = tf_coverage(cc, tf)
        if cov.kind != "ptx":
            continue
        ev = [_gpu_evidence(g), _build_evidence(env)]
        # JIT needs a driver that knows the PTX's toolkit and the GPU's architecture.
        needs = [(toolkit.min_driver, toolkit.min_driver_text, f"CUDA {cuda}", toolkit.source)] if toolkit else []
        arch = matrix.compute_capability(g.compute_capability)
        arch_kit = matrix.cuda_toolkit(str(arch.first_cuda)) if arch and arch.first_cuda else None
        if arch is not None and arch_kit is not None:
            needs.append(
                (
                    arch_kit.min_driver,
                    arch_kit.min_driver_text,
                    f"CUDA {arch.first_cuda}, the first with compute capability {g.compute_capability} "
                    f"({arch.architecture})",
                    arch_kit.source,
                )
            )
        short = [n for n in needs if have is not None and have < n[0]]
        if short and driver is not None and driver.version is not None:  # a known `have` is driver.version
            best = max(short, key=lambda n: n[0])
            ev += [Evidence("driver.version", driver.version, driver.version_source)]
            ev += [Evidence(f"driver of {why}", text, src) for _, text, why, src in short]
            yield Hit(
                message=f"{gpu_name(g)}, compute capability {g.compute_capability}, has no SASS in {tf_label(tf)} "
                f"and needs PTX JIT from {cov.via}, but driver {driver.version} is older than "
                f"{best[1]} ({best[2]}) and cannot JIT that PTX for it: kernels fail to load",
                evidence=tuple(ev),
                remediation=f"Upgrade the NVIDIA driver to >= {best[1]}, or use a TensorFlow build with SASS for "
                f"sm_{cc[0]}{cc[1]}.",
                severity=Severity.ERROR,
            )
            continue
        yield Hit(
            message=f"{gpu_name(g)}, compute capability {g.compute_capability}, has no SASS in {tf_label(tf)} "
            f"({' '.join(build_archs(tf)[0])}): kernels are JIT-compiled from {cov.via} PTX at "
            "first use (slow first start, minutes to tens of minutes)",
            evidence=tuple(ev),
            remediation=f"Use a TensorFlow build with SASS for sm_{cc[0]}{cc[1]}, or keep the PTX JIT cache warm "
            "(CUDA_CACHE_MAXSIZE=4294967296, a persistent CUDA_CACHE_PATH).",
        )


@rule("TFC206", "gpu-not-supported-by-build", Severity.ERROR, requires=("tensorflow", "gpus"))
def gpu_not_supported(env: Environment, matrix: Matrix) -> Result:
    """A GPU has neither SASS nor usable PTX in this TensorFlow build.

    What: the GPU's compute capability is below every architecture the build carries (e.g. a
    Maxwell GPU, compute capability 5.2, with TF >= 2.17, whose oldest SASS is sm_60 and whose only
    PTX is compute_90), or of an older major than any SASS with no PTX old enough.

    Why it crashes: TensorFlow still creates the device (its own minimum is 3.5), then the first
    kernel launch fails with "no kernel image is available for execution on the device" /
    "device kernel image is invalid".

    Where build_info.py lists none, the architectures are read from the SASS/PTX entries of TF's
    own CUDA objects (TF 1.x, 2.0-2.2, source builds), and the evidence names those files.

    How to fix: use a TensorFlow release whose build lists this architecture (`tfcompat matrix gpu
    X.Y` lists them; TF 2.16 was the last with sm_50, TF 2.14 the last with sm_35), hide this GPU
    from the job (CUDA_VISIBLE_DEVICES), or move the job to a node with supported GPUs.
    """
    skip = _arch_precheck(env)
    if skip:
        yield NotApplicable(skip)
        return
    tf = required_tf(env)
    for g in env.host.gpus:
        cc = parse_cc(g.compute_capability)
        if cc is None or tf_coverage(cc, tf).kind != "none":
            continue
        # UUIDs, not indices: CUDA numbers GPUs fastest-first by default, NVML by PCI bus
        others = [
            o.uuid or str(o.index)
            for o in env.host.gpus
            for o_cc in [parse_cc(o.compute_capability)]
            if o.index != g.index and o_cc and tf_coverage(o_cc, tf).kind != "none"
        ]
        hide = f" or hide it (CUDA_VISIBLE_DEVICES={','.join(others)})" if others else ""
        yield Hit(
            message=f"{gpu_name(g)}, compute capability {g.compute_capability}, has no kernels in {tf_label(tf)} "
            f"({' '.join(build_archs(tf)[0])}): the first GPU op fails with "
            '"no kernel image is available for execution on the device"',
            evidence=(_gpu_evidence(g), _build_evidence(env)),
            remediation=f"Use a TensorFlow release built for sm_{cc[0]}{cc[1]}{hide}.",
        )


@rule("TFC207", "mixed-gpus", Severity.INFO, requires=("gpus",))
def mixed_gpus(env: Environment, matrix: Matrix) -> Result:
    """The node has GPUs of different models or compute capabilities.

    What: NVML lists more than one GPU model or compute capability on this node.

    Why it crashes: it does not by itself, but a multi-GPU job runs at the pace of the slowest GPU,
    a build may cover one architecture natively and another only through PTX JIT, and XLA
    autotuning results differ per device.

    How to fix: schedule multi-GPU jobs on uniform GPUs (CUDA_VISIBLE_DEVICES, node labels), or
    accept it knowingly (--ignore TFC207).
    """
    models: dict[tuple[Optional[str], Optional[str]], list[int]] = {}  # (name, cc) -> GPU indices
    for g in env.host.gpus:
        models.setdefault((g.name, g.compute_capability), []).append(g.index)
    if len(models) > 1:
        parts = [
            f"{name or '?'} (compute capability {cc or '?'}) on GPU {', '.join(map(str, idx))}"
            for (name, cc), idx in sorted(models.items(), key=lambda kv: kv[1][0])
        ]
        yield Hit(
            message=f"{len(models)} kinds of GPU on this node: " + "; ".join(parts),
            evidence=tuple(_gpu_evidence(g) for g in env.host.gpus),
            remediation="Pin multi-GPU jobs to one kind of GPU with CUDA_VISIBLE_DEVICES, or label and schedule "
            "by GPU model.",
        )


def _cudnn_status(entries: tuple[CudnnRelease, ...], cc: str) -> tuple[str, CudnnRelease]:
    """The best standing of `cc` over the rows of one release (the builds of one release differ: 9.10.2 for
    CUDA 12.8/12.9 lists Blackwell, its build for CUDA 12.0-12.9 does not; which one is installed is not
    known), preferring confirmed rows: native, then unlisted, newer, dropped."""
    order = [CC_NATIVE, CC_UNLISTED, CC_NEWER, CC_DROPPED]
    ranked = sorted(((order.index(e.cc_status(cc)), not e.confirmed, i) for i, e in enumerate(entries)))
    rank, _, i = ranked[0]
    return order[rank], entries[i]


def _sources(entries: tuple[CudnnRelease, ...]) -> str:
    return ", ".join(dict.fromkeys(s for e in entries for s in e.source))


def _cudnn_version_label(e: CudnnRelease) -> str:
    return f"cuDNN {spec_text(e.versions)} for CUDA {e.cuda_major}"


@rule("TFC208", "cudnn-gpu-unsupported", Severity.ERROR, requires=("tensorflow", "gpus"))
def cudnn_gpu_unsupported(env: Environment, matrix: Matrix) -> Result:
    """The cuDNN the loader picks does not support a GPU's architecture.

    What: NVIDIA's cuDNN support matrix lists the compute capabilities each release supports, and
    architectures come and go: cuDNN 9 added Blackwell (10.0, 12.0) in 9.7 (the CUDA 12+ builds only: the
    CUDA 11 build of 9.7-9.10 stops at 9.0) and dropped Maxwell, Pascal
    and Volta in 9.11.0 (both read from the wheels' binaries: from 9.11.0 the libraries TensorFlow calls
    carry sm_75 and newer only; NVIDIA's 9.10.2 matrix lists 5.0-12.0, its 9.17.0 matrix 7.5-12.0).
    With `tensorflow[and-cuda]` >= 2.20 the cuDNN wheel is a range, so pip installs the newest 9.x.

    Why it crashes: on an architecture the release dropped, cuDNN calls fail
    (CUDNN_STATUS_ARCH_MISMATCH, "DNN library initialization failed"): convolutions and RNNs abort
    although TensorFlow itself has kernels for the GPU. A GPU newer than the release documents is not
    an error: cuDNN >= 9.0 built with CUDA >= 12 runs a subset of graphs there in forward-compatibility
    mode (PTX JIT), which is reported as a warning or information. A release the matrix does not
    describe (no row of its major.minor) is "unknown for this release", not judged by an older one.

    How to fix: pin the cuDNN wheel to a release that supports the GPU (e.g. `pip install
    "nvidia-cudnn-cu12<9.11"` for Maxwell, Pascal or Volta), or a newer one that lists a new GPU, or run on newer GPUs.
    """
    tf = required_tf(env)
    native = getattr(env.target, "native", None)
    cudnn = next((lib for lib in (native.libraries if native else ()) if lib.name == "cudnn"), None)
    if cudnn is None or cudnn.found is None or not cudnn.found.version:
        yield NotApplicable("the cuDNN the loader picks, or its version, is unknown")
        return
    build_cuda = version_of(tf.cuda_version or "")
    if build_cuda is None:
        yield NotApplicable(f"the CUDA major of {tf_label(tf)} is unknown")
        return
    found = cudnn.found
    support = matrix.cudnn_support(found.version, build_cuda.major)
    if support.basis == "none":
        yield NotApplicable(f"the matrix has no cuDNN support entry at or before {found.version}")
        return
    lib_ev = Evidence("cudnn.version", found.version, found.version_source or found.real_path)
    name = f"cuDNN {found.version} ({found.real_path})"
    for g in env.host.gpus:
        cc = g.compute_capability
        if not cc or parse_cc(cc) is None:
            continue
        if support.basis == "gap":
            yield from _gap_hit(g, cc, name, support, lib_ev)
            continue
        status, entry = _cudnn_status(support.entries, cc)
        basis = "" if support.basis == "exact" else f" (judged from {entry.label}, a release of the same minor)"
        ev = (_gpu_evidence(g), lib_ev, Evidence("cuDNN support matrix", entry.label, _sources(support.entries)))
        if status == CC_DROPPED:
            if entry.confirmed:
                yield Hit(
                    message=f"{gpu_name(g)}, compute capability {cc}, is not supported by {name}{basis}: "
                    "the support matrix no longer lists this architecture; cuDNN calls fail with "
                    "CUDNN_STATUS_ARCH_MISMATCH",
                    evidence=ev,
                    remediation=f"Pin a cuDNN that supports compute capability {cc} "
                    '(e.g. pip install "nvidia-cudnn-cu12<9.11" for Maxwell/Pascal/Volta), or use newer GPUs.',
                )
            else:
                yield Hit(
                    message=f"{gpu_name(g)}, compute capability {cc}, is reported dropped by {name}{basis} "
                    f"(UNCONFIRMED: {entry.note or 'no primary source read'}); if so, cuDNN calls fail with "
                    "CUDNN_STATUS_ARCH_MISMATCH",
                    evidence=ev,
                    remediation=f'Pin a cuDNN that lists compute capability {cc} (e.g. "nvidia-cudnn-cu12<9.11"), '
                    "or check NVIDIA's support matrix of this release.",
                    severity=Severity.WARNING,
                )
        elif status == CC_NEWER:
            yield _newer_hit(g, cc, name, entry, ev, basis)
        elif status == CC_UNLISTED and entry.compute_capabilities:  # a row of drops alone says nothing else
            yield Hit(
                message=f"{gpu_name(g)}, compute capability {cc}: the support matrix of {name}{basis} neither "
                "lists nor drops it: unknown for this release",
                evidence=ev,
                remediation="Check NVIDIA's cuDNN support matrix for this release and GPU.",
                severity=Severity.INFO,
            )


_FC_CAVEAT = (
    "cuDNN >= 9.0 built with CUDA >= 12 runs only a subset of operation graphs on GPUs newer than its list, "
    "in forward-compatibility mode (PTX JIT; CUDNN_LIB_CONFIG=FULL); others fail with CUDNN_STATUS_NOT_SUPPORTED"
)
# NVIDIA's page behind _FC_CAVEAT: cited even where the row's source is the wheels' binaries (9.1-9.4, 9.6)
_FC_SOURCE = "https://docs.nvidia.com/deeplearning/cudnn/frontend/latest/developer/forward-compatibility.html"


def _with_fc_source(ev: tuple[Evidence, ...]) -> tuple[Evidence, ...]:
    if any(_FC_SOURCE in e.source for e in ev):
        return ev
    return ev + (Evidence("cuDNN hardware forward compatibility", "cuDNN >= 9.0 built with CUDA >= 12", _FC_SOURCE),)


def _newer_hit(g: Gpu, cc: str, name: str, entry: CudnnRelease, ev: tuple[Evidence, ...], basis: str) -> Hit:
    listed = (
        ", ".join(entry.compute_capabilities) or f"{entry.min_compute_capability} ... {entry.max_compute_capability}"
    )
    if entry.forward_compatible:
        return Hit(
            message=f"{gpu_name(g)}, compute capability {cc}, is newer than every architecture the support matrix "
            f"of {name}{basis} lists ({listed}): {_FC_CAVEAT}",
            evidence=_with_fc_source(ev),
            remediation=f"Use a cuDNN release that lists compute capability {cc} natively (cuDNN 9.10.2 for CUDA "
            "12.8/12.9 lists 10.0 and 12.0).",
            severity=Severity.INFO,
        )
    return Hit(
        message=f"{gpu_name(g)}, compute capability {cc}, is newer than every architecture the support matrix of "
        f"{name}{basis} lists ({listed}), and this build has no hardware forward compatibility (cuDNN < 9.0 or "
        "CUDA < 12): unknown for this release, cuDNN calls may fail",
        evidence=ev,
        remediation=f"Use a cuDNN release that lists compute capability {cc}.",
        severity=Severity.WARNING,
    )


def _gap_hit(g: Gpu, cc: str, name: str, support: CudnnSupport, lib_ev: Evidence) -> Iterator[Hit]:
    """A release the matrix does not describe: say what is unknown, with the newest older release for context."""
    status, older = _cudnn_status(support.older, cc)
    ev = (
        _gpu_evidence(g),
        lib_ev,
        Evidence("cuDNN support matrix (newest older release)", older.label, _sources(support.older)),
    )
    head = (
        f"{gpu_name(g)}, compute capability {cc}: the matrix has no support entry for {name} "
        f"(none of its major.minor): unknown for this release"
    )
    if status == CC_DROPPED and older.confirmed:
        yield Hit(
            message=f"{head}; {_cudnn_version_label(older)}, an older release, already dropped this architecture, "
            "so cuDNN calls most likely fail with CUDNN_STATUS_ARCH_MISMATCH",
            evidence=ev,
            remediation=f"Pin a cuDNN that supports compute capability {cc} "
            '(e.g. pip install "nvidia-cudnn-cu12<9.11" for Maxwell/Pascal/Volta), or use newer GPUs.',
            severity=Severity.WARNING,
        )
    elif status == CC_NEWER:
        caveat = f"; {_FC_CAVEAT}" if older.forward_compatible else ""
        yield Hit(
            message=f"{head}; it is newer than every architecture {_cudnn_version_label(older)}, an older "
            f"release, lists{caveat}",
            evidence=_with_fc_source(ev) if caveat else ev,
            remediation=f"Use a cuDNN release whose support matrix lists compute capability {cc}.",
            severity=Severity.INFO,
        )
