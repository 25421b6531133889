"""TFC210: the architectures build_info.py states against the SASS/PTX entries TF's own CUDA objects carry."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Union

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.matrix.arch import coverage, parse_arch, parse_cc
from tfcompat.model import Environment, Evidence, Severity
from tfcompat.rules._common import required_tf, tf_label
from tfcompat.rules.gpus import binary_coverage, gpu_name

Result = Iterator[Union[Hit, NotApplicable]]


def stated_entries(entries: Sequence[str]) -> set[str]:
    """build_info's list as code: in TF's build rules every entry gives SASS and compute_XY adds PTX."""
    out: set[str] = set()
    for e in entries:
        arch = parse_arch(e)
        if arch is None:
            continue
        digits = e.strip().split("_", 1)[1]
        out.add(f"sm_{digits}")
        if arch[0] == "compute":
            out.add(f"compute_{digits}")
    return out


def carried_entries(entries: Sequence[str]) -> set[str]:
    return {e for e in entries if e.startswith(("sm_", "compute_")) and parse_arch(e) is not None}


def _sorted(names: set[str]) -> str:
    def key(n: str) -> tuple[int, tuple[int, int], str]:
        arch = parse_arch(n)
        return (0 if n.startswith("sm_") else 1, arch[1:] if arch else (0, 0), n)

    return " ".join(sorted(names, key=key))


@rule("TFC210", "build-info-disagrees-with-binaries", Severity.WARNING, requires=("tensorflow",))
def build_info_disagrees(env: Environment, matrix: Matrix) -> Result:
    """build_info.py states other GPU architectures than TF's own CUDA objects carry.

    What: tfcompat reads the SASS (sm_XY) and PTX (compute_XY) entries of the `.nv_fatbin` sections of
    TF's CUDA objects (libtensorflow_framework, libtensorflow_cc) for builds that pip did not install
    from a wheel (conda, source builds) and compares them with build_info.py's
    `cuda_compute_capabilities` (where `compute_XY` means SASS and PTX for XY, as TF's build rules
    produce them).

    Why it crashes: the per-GPU checks (TFC205, TFC206) judge by build_info.py. When it lists
    architectures the kernels lack (a hand-edited build_info, a build whose configuration changed
    after the file was generated, a repackaged build), a GPU judged "native" runs from PTX JIT
    (slow first start) or fails with "no kernel image is available for execution on the device".
    Entries the list omits are harmless (information).

    Severity: warning when build_info states entries the binaries lack (the GPU verdicts rest on a
    list the kernels do not back); error when a GPU of this node has kernels by build_info but none
    in the binaries; information when the binaries carry more than stated.

    How to fix: trust the binaries: use a build whose kernels include your GPUs' architectures
    (rebuild with TF_CUDA_COMPUTE_CAPABILITIES listing them), or reinstall the package so build_info.py
    and the libraries come from one build.
    """
    tf = required_tf(env)
    if not tf.compute_capabilities:
        yield NotApplicable(f"build_info.py of {tf_label(tf)} states no compute capabilities")
        return
    if not tf.binary_capabilities:
        yield NotApplicable(
            f"no SASS/PTX entries in {tf.binary_capabilities_source}"
            if tf.binary_capabilities_source
            else "TF's CUDA objects are not read for a wheel that pip or uv installed (its build_info.py is trusted)"
        )
        return
    stated, carried = stated_entries(tf.compute_capabilities), carried_entries(tf.binary_capabilities)
    missing, extra = stated - carried, carried - stated
    if not missing and not extra:
        return
    files = tf.binary_capabilities_source or "TF's CUDA objects"
    ev: list[Evidence] = [
        Evidence("tensorflow build compute capabilities", " ".join(tf.compute_capabilities), tf.build_info_path or "?"),
        Evidence(
            "tensorflow binary compute capabilities",
            " ".join(tf.binary_capabilities),
            f"read from the SASS/PTX entries of {files}",
        ),
    ]
    gpu_notes: list[str] = []
    lost = False
    gpus = () if env.unknown("gpus") else env.host.gpus
    for g in gpus:
        cc = parse_cc(g.compute_capability)
        if cc is None:
            continue
        said, real = coverage(cc, tf.compute_capabilities), binary_coverage(cc, tf.binary_capabilities)
        if said.kind != real.kind:
            lost = lost or (real.kind == "none")
            gpu_notes.append(
                f"{gpu_name(g)}, compute capability {g.compute_capability}: {said.kind} by build_info "
                f"({said.via or 'no kernels'}), {real.kind} by the binaries ({real.via or 'no kernels'})"
            )
            ev.append(Evidence(f"gpu[{g.index}].compute_capability", g.compute_capability or "?", "NVML"))
    parts = []
    if missing:
        parts.append(f"stated but not in the binaries: {_sorted(missing)}")
    if extra:
        parts.append(f"in the binaries but not stated: {_sorted(extra)}")
    message = (
        f"build_info.py of {tf_label(tf)} states {' '.join(tf.compute_capabilities)}, but the SASS/PTX entries "
        f"of {files} are {' '.join(tf.binary_capabilities)} ({'; '.join(parts)})"
    )
    if gpu_notes:
        message += "; " + "; ".join(gpu_notes)
    if lost:
        severity = Severity.ERROR
        fix = (
            "The binaries are what runs: use a TensorFlow build with kernels for this GPU's architecture, or hide "
            "the GPU from the job (CUDA_VISIBLE_DEVICES)."
        )
    elif missing:
        severity = Severity.WARNING
        fix = (
            "The binaries are what runs: judge GPUs by their list (rebuild with TF_CUDA_COMPUTE_CAPABILITIES "
            "listing your GPUs), or reinstall so build_info.py and the libraries come from one build."
        )
    else:
        severity = Severity.INFO
        fix = "Nothing to do: the build carries more than build_info.py states (GPU checks judge by the stated list)."
    yield Hit(message=message, evidence=tuple(ev), remediation=fix, severity=severity)
