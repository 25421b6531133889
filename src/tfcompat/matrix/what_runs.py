"""The answer of `tfcompat matrix what-runs`: given a driver and GPUs (or a snapshot), the newest TensorFlow,
cuDNN and CUDA that run there, and the pip line; a plain dict (the JSON output)."""

from __future__ import annotations

from typing import Any, Optional

from packaging.version import Version

from tfcompat.matrix.answers import QueryError, _spec, _ver, driver_branch_out
from tfcompat.matrix.answers_host import COVERAGE_MODE, DRIVER_RE, parse_query_cc
from tfcompat.matrix.arch import cc_tuple, coverage
from tfcompat.matrix.entries import TFRelease, spec_text
from tfcompat.matrix.lookup import Matrix


def _lower_bound(spec: Any) -> Optional[Version]:
    lows = [Version(s.version.rstrip(".*")) for s in spec if s.operator in (">=", "==", "~=", "===")]
    return min(lows) if lows else None


def host_from_snapshot(path: str) -> tuple[Optional[str], list[str], str]:
    """(driver version, GPU compute capabilities, where the driver version was read) from a `tfcompat scan`
    snapshot (or a report that embeds one). SnapshotError (one line, exit 2) when it cannot be read."""
    from tfcompat.model import read_snapshot

    env = read_snapshot(path)
    driver = env.host.driver
    version = driver.version if driver is not None else None
    ccs = [g.compute_capability for g in env.host.gpus if g.compute_capability]
    where = f"{path} ({driver.version_source})" if driver is not None and version else path
    return version, ccs, where


def what_runs_answer(
    matrix: Matrix, driver: Optional[str], gpus: list[str], driver_source: str = "--driver"
) -> dict[str, Any]:
    """The operator's question "what may I run here?": given the driver and the GPUs' compute capabilities,
    the newest TensorFlow release

    * whose CUDA the driver runs: with every feature (the build toolkit's own driver) or under minor-version
      compatibility (the major's floor);
    * whose kernels cover every GPU: SASS, or PTX the driver can JIT (PTX needs the build toolkit's own
      driver: minor-version compatibility does not cover it);
    * with a cuDNN it can load (same major, minor >= compiled) that supports every GPU, where the matrix
      judges any cuDNN it can load;

    the newest cuDNN and CUDA that work here, and the pip line (with a cuDNN pin where pip's choice would not
    work here)."""
    from tfcompat.matrix.entries import CudnnRelease, DriverNeed

    if not driver:
        raise QueryError("no NVIDIA driver version: give --driver VERSION or a snapshot with host.driver")
    if not DRIVER_RE.match(driver):
        raise QueryError(f"driver version {driver!r} is not an NVIDIA driver version like 535.54.03")
    have = Version(driver)
    gpu_info = []
    for cc in dict.fromkeys(parse_query_cc(g) for g in gpus):
        entry = matrix.compute_capability(cc)
        if entry is None:
            raise QueryError(f"compute capability {cc} is not in the matrix {matrix.path}")
        gpu_info.append((cc, entry))

    def driver_mode(cuda: str) -> tuple[str, DriverNeed]:
        need = matrix.driver_need(cuda)
        if need.full is not None and have >= need.full:
            return "full", need
        if need.floor is not None and have >= need.floor:
            return "compat", need
        return "none", need

    # CUDA toolkits the driver runs and that can build for every GPU
    def builds_all(t: Any) -> bool:
        return all(e.cuda_can_build(t.version) for _, e in gpu_info)

    toolkits = [t for t in matrix.cuda if t.update != "RC"]
    cuda_full = [t for t in toolkits if have >= t.min_driver and builds_all(t)]
    cuda_compat = [t for t in toolkits if driver_mode(str(t.version))[0] == "compat" and builds_all(t)]
    runs = [t for t in toolkits if driver_mode(str(t.version))[0] != "none"]

    def low(c: CudnnRelease) -> Version:
        return _lower_bound(c.versions) or Version("0")

    # cuDNN entries the driver runs (a toolkit of theirs runs, their own driver floor), newest last
    cudnn_driver_ok = sorted(
        (
            c
            for c in matrix.cudnn
            if (c.min_driver is None or have >= c.min_driver)
            and any(c.cuda.contains(t.version, prereleases=True) for t in runs)
        ),
        key=lambda c: (low(c), c.cuda_major),
    )
    cudnn_here = [c for c in cudnn_driver_ok if all(c.supports_cc(cc) for cc, _ in gpu_info)]

    def loadable(rel: TFRelease) -> list[CudnnRelease]:
        if rel.cuda is None or rel.cudnn is None:
            return []
        cuda_major, compiled = rel.cuda.major, rel.cudnn
        return [
            c
            for c in cudnn_driver_ok
            if c.cuda_major == cuda_major
            and low(c).major == compiled.major
            and matrix.cudnn_compatible(str(low(c)), str(compiled)) is not False
        ]

    candidates: list[dict[str, Any]] = []
    for rel in matrix.tensorflow:
        if rel.cuda is None:
            continue
        mode, need = driver_mode(str(rel.cuda))
        why: list[str] = []
        if mode == "none":
            why.append(f"needs driver >= {need.floor_text} (CUDA {rel.cuda})")
        kernels = []
        for cc, _entry in gpu_info:
            cov = coverage(cc_tuple(cc), rel.compute_capabilities)
            kind = COVERAGE_MODE[cov.kind]
            kernels.append({"compute_capability": cc, "mode": kind, "via": cov.entry})
            if kind == "none":
                why.append(f"no kernels for compute capability {cc} ({' '.join(rel.compute_capabilities)})")
            elif kind == "ptx_jit" and mode == "compat":
                why.append(
                    f"compute capability {cc} runs it only by JIT from PTX ({cov.entry}) built by CUDA {rel.cuda}: "
                    f"the driver needs >= {need.full_text}; minor-version compatibility does not cover PTX"
                )
        can_load = loadable(rel)
        good = [c for c in can_load if c in cudnn_here]
        # block only where the matrix judges the compiled-with minor itself: releases between it and the
        # first entry that does judge are unknown, not unsupported
        judged = rel.cudnn is not None and any(low(c).release[:2] == rel.cudnn.release[:2] for c in can_load)
        if judged and not good and gpu_info:
            why.append(
                f"no cuDNN it can load (cuDNN {rel.cudnn.major if rel.cudnn else '?'}.x, minor >= {rel.cudnn}) "
                f"supports compute capability {', '.join(cc for cc, _ in gpu_info)} per the matrix"
            )
        for version in rel.releases:
            candidates.append(
                {
                    "version": version,
                    "rel": rel,
                    "mode": mode,
                    "need": need,
                    "kernels": kernels,
                    "why": why,
                    "cudnn": good[-1] if good else None,
                    "cudnn_newest": can_load[-1] if can_load else None,
                }
            )
    candidates.sort(key=lambda c: Version(c["version"]))
    runnable = [c for c in candidates if not c["why"]]
    best = runnable[-1] if runnable else None
    best_full = next((c for c in reversed(runnable) if c["mode"] == "full"), None)

    def cudnn_out(c: Optional[CudnnRelease]) -> Optional[dict[str, Any]]:
        if c is None:
            return None
        return {"versions": spec_text(c.versions), "cuda_major": c.cuda_major, "cuda": spec_text(c.cuda)}

    def tf_out(c: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        if c is None:
            return None
        rel, need, version = c["rel"], c["need"], c["version"]
        pin_name, pin_spec = next(((k, v) for k, v in rel.and_cuda if k.startswith("nvidia-cudnn-")), (None, None))
        pip = (
            f'pip install "tensorflow[and-cuda]=={version}"' if rel.and_cuda else f'pip install "tensorflow=={version}"'
        )
        exact = pin_spec is not None and all(s.operator in ("==", "===") for s in pin_spec)
        if pin_name and not exact and c["cudnn"] is not None and c["cudnn"] is not c["cudnn_newest"]:
            # pip takes the newest cuDNN the [and-cuda] range admits; a newer one does not work here
            pip += f' "{pin_name}{spec_text(c["cudnn"].versions)}"'
        return {
            "version": version,
            "cuda": _ver(rel.cuda),
            "cudnn": _ver(rel.cudnn),
            "python": _spec(rel.python),
            "driver": c["mode"],
            "min_driver": need.floor_text,
            "min_driver_full": need.full_text,
            "kernels": c["kernels"],
            "cudnn_here": cudnn_out(c["cudnn"]),
            "cudnn_pin": f"{pin_name}{spec_text(pin_spec)}" if pin_name else None,
            "pip": pip,
        }

    chosen = tf_out(best)
    newest = candidates[-1] if candidates else None
    blocked = (
        {"version": newest["version"], "why": newest["why"]}
        if newest is not None and (best is None or Version(newest["version"]) > Version(best["version"]))
        else None
    )
    notes = []
    if not gpu_info:
        notes.append("no GPU given: kernel and cuDNN coverage not checked")
    uncovered = [
        cc
        for cc, _ in gpu_info
        if all(coverage(cc_tuple(cc), r.compute_capabilities).kind == "none" for r in matrix.tensorflow)
    ]
    for cc in uncovered:
        notes.append(f"no TensorFlow release in the matrix has kernels (SASS or PTX) for compute capability {cc}")
    if best is None:
        notes.append("no TensorFlow release in the matrix runs here")
    else:
        rel = best["rel"]
        if best["mode"] == "compat":
            notes.append(
                f"TensorFlow {best['version']} starts under minor-version compatibility (driver >= "
                f"{best['need'].floor_text}); every feature of CUDA {rel.cuda} needs >= {best['need'].full_text}"
            )
        if not rel.and_cuda:
            notes.append(
                f"TensorFlow {best['version']} has no [and-cuda] extra: CUDA {rel.cuda} and cuDNN {rel.cudnn} "
                "(same major, minor >=) come from the system"
            )
        if best["cudnn"] is None and gpu_info:
            notes.append(
                f"the matrix judges no cuDNN that TensorFlow {best['version']} can load (cuDNN "
                f"{rel.cudnn}, same major, minor >=) on these GPUs with this driver: check its support matrix"
            )
    sources: list[str] = []
    for c in (best, best_full):
        if c is not None:
            sources += list(c["rel"].source) + list(c["need"].sources)
    for _, e in gpu_info:
        sources += list(e.source)
    for cd in (best["cudnn"] if best else None, cudnn_here[-1] if cudnn_here else None):
        if cd is not None:
            sources += list(cd.source)
    branch = driver_branch_out(matrix, driver)
    if branch is not None:
        sources += branch["source"]
    return {
        "driver": driver,
        "driver_source": driver_source,
        "gpus": [{"compute_capability": cc, "architecture": e.architecture} for cc, e in gpu_info],
        "tensorflow": chosen,
        "tensorflow_full": tf_out(best_full),
        "newer_blocked": blocked,
        "uncovered_gpus": uncovered,
        "pip": chosen["pip"] if chosen is not None else None,
        "cudnn": cudnn_out(cudnn_here[-1]) if cudnn_here else None,
        "cuda_full": str(max(t.version for t in cuda_full)) if cuda_full else None,
        "cuda_compat": str(max(t.version for t in cuda_compat)) if cuda_compat else None,
        "known_bad": [
            {"versions": spec_text(k.versions), "reason": k.reason, "severity": k.severity, "overlay": k.origin}
            for k in matrix.known_bad(driver)
        ],
        "driver_branch": branch,
        "notes": notes,
        "sources": list(dict.fromkeys(sources)),
    }
