"""The answers of `tfcompat matrix tensorflow|cuda|driver|gpu|validate|what-runs`, each a plain dict.

The dict is the JSON output; render/matrix_text.py renders the same dict as text. A question about
something the matrix does not know is a `QueryError`: one line, exit 2.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Optional

from packaging.version import InvalidVersion, Version

from tfcompat.errors import TfcompatError
from tfcompat.matrix.arch import cc_tuple, coverage, parse_cc
from tfcompat.matrix.entries import Companion, TFPlatformBuild, TFRelease, spec_text
from tfcompat.matrix.fields import MatrixError
from tfcompat.matrix.invariants import invariant_problems
from tfcompat.matrix.load import file_kind, load_matrix
from tfcompat.matrix.lookup import Matrix
from tfcompat.matrix.overlay import load_overlay


class QueryError(TfcompatError):
    """The question names something the matrix does not know: one line, exit 2."""


def _spec(s: Any) -> Optional[str]:
    return spec_text(s) if s is not None and str(s) else None


def _ver(v: Any) -> Optional[str]:
    return str(v) if v is not None else None


_TF_FIELDS: tuple[tuple[str, Callable[[TFRelease], Any]], ...] = (
    ("python", lambda r: _spec(r.python)),
    ("cuda", lambda r: _ver(r.cuda)),
    ("cudnn", lambda r: _ver(r.cudnn)),
    ("compute_capabilities", lambda r: list(r.compute_capabilities)),
    ("numpy_abi", lambda r: r.numpy_abi),
    ("numpy", lambda r: _spec(r.numpy)),
    ("protobuf", lambda r: _spec(r.protobuf)),
    ("keras", lambda r: _spec(r.keras)),
    ("ml_dtypes", lambda r: _spec(r.ml_dtypes)),
    ("h5py", lambda r: _spec(r.h5py)),
    ("tensorrt", lambda r: r.tensorrt),
    ("tensorrt_lib", lambda r: r.tensorrt_lib),
    ("glibc", lambda r: _ver(r.glibc)),
    ("glibcxx", lambda r: _ver(r.glibcxx)),
    ("cxxabi", lambda r: _ver(r.cxxabi)),
    ("manylinux", lambda r: r.manylinux),
    ("cxx11_abi", lambda r: r.cxx11_abi),
    ("compiler", lambda r: r.compiler),
    ("and_cuda", lambda r: {k: spec_text(v) for k, v in r.and_cuda} or None),
)


def _parse_version(text: str, what: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise QueryError(f"{what} {text!r} is not a version") from None


def minor(v: str) -> str:
    """ "2.15.1" -> "2.15"."""
    rel = Version(v).release
    return f"{rel[0]}.{rel[1]}"


def tensorflow_answer(matrix: Matrix, query: str) -> dict[str, Any]:
    """What TensorFlow `query` (2.15, 2.15.1, 2.15.0.post1; a tensorflow-rocm 2.14.0.600) needs."""
    want = _parse_version(query, "TensorFlow version")
    if matrix.tf_rocm_release(query) is not None:
        return tensorflow_rocm_answer(matrix, query)
    version = matrix.resolve_tf(query)
    listed = version is not None
    if version is None:
        rel = matrix.tf_release(query) if len(want.release) >= 3 else None
        if rel is None:
            known = matrix.tf_releases()
            span = f"{known[0]} ... {known[-1]}" if known else "none"
            newer = bool(known) and want > Version(known[-1])
            raise QueryError(
                f"tensorflow {query} is not in the matrix {matrix.path} (it knows {span})"
                + (
                    "; `tfcompat check` judges a newer release from its own build_info.py and "
                    "Requires-Dist (TFC109 says the matrix is stale)"
                    if newer
                    else ""
                )
            )
        version = query
    rel = matrix.tf_release(version)
    assert rel is not None
    out: dict[str, Any] = {
        "query": query,
        "version": version,
        "listed_release": listed,
        "versions": spec_text(rel.versions),
        "releases": list(rel.releases),
    }
    for key, read in _TF_FIELDS:
        out[key] = read(rel)
    out["sass"] = list(dict.fromkeys(rel.sass))
    out["ptx"] = list(rel.ptx)
    need = matrix.driver_need(str(rel.cuda)) if rel.cuda is not None else None
    out["min_driver"] = need.floor_text if need else None
    out["min_driver_full"] = need.full_text if need else None
    out["min_driver_cuda"] = need.toolkit.name if need and need.toolkit else None
    pip_need = matrix.driver_need(str(rel.and_cuda_cuda)) if rel.and_cuda_cuda is not None else None
    out["and_cuda_cuda"] = _ver(rel.and_cuda_cuda)
    out["and_cuda_driver_row"] = pip_need.toolkit.name if pip_need and pip_need.toolkit else None
    out["and_cuda_min_driver"] = pip_need.full_text if pip_need else None  # every feature of the pip libraries
    out["companions"] = [
        {
            "package": c.package,
            "versions": spec_text(c.versions),
            "tensorflow": spec_text(c.tensorflow),
            "native": c.native,
        }
        for c in _newest_per_package(matrix.companions_for(version))
    ]
    siblings = [
        r
        for r in matrix.tensorflow
        if r is not rel and r.releases and any(minor(x) == minor(version) for x in r.releases)
    ]
    others = []
    for sib in siblings:
        differs = {k: read(sib) for k, read in _TF_FIELDS if read(sib) != read(rel)}
        others.append({"versions": spec_text(sib.versions), "releases": list(sib.releases), "differs": differs})
    out["other_entries"] = others
    platforms = matrix.tf_platform_builds(version)
    out["platforms"] = [_platform_out(p) for p in platforms]
    out["note"] = rel.note
    out["confirmed"] = rel.confirmed
    out["checked"] = rel.checked.isoformat()
    out["sources"] = list(
        dict.fromkeys(
            list(rel.source)
            + [s for n in (need, pip_need) if n for s in n.sources]
            + [s for p in platforms for s in p.source]
        )
    )
    return out


def _platform_out(p: TFPlatformBuild) -> dict[str, Any]:
    return {
        "package": p.package,
        "platform": p.platform,
        "versions": spec_text(p.versions),
        "manylinux": p.manylinux,
        "glibc": _ver(p.glibc),
        "cuda_build": p.cuda_build,
        "wrapper": p.wrapper,
        "confirmed": p.confirmed,
        "note": p.note,
    }


def driver_branch_out(matrix: Matrix, driver: str) -> Optional[dict[str, Any]]:
    """The driver's branch and its end of life ([[driver_branch]]), or None where the matrix has no row."""
    b = matrix.driver_branch(driver)
    if b is None:
        return None
    return {
        "branch": f"R{b.branch}",
        "designation": b.designation,
        "end_of_life": b.end_of_life,
        "confirmed": b.confirmed,
        "note": b.note,
        "source": list(b.source),
    }


def _newest_per_package(rows: list[Companion]) -> list[Companion]:
    """Pure-Python companions: only the newest row admitting the release (every older
    tensorflow-probability admits a newer TF too). Native ones: every row (Python-op range vs ABI)."""
    newest: dict[str, Companion] = {}
    for c in rows:
        if not c.native and (c.package not in newest or _lowest(c.versions) > _lowest(newest[c.package].versions)):
            newest[c.package] = c
    return [c for c in rows if c.native or newest[c.package] is c]


def _lowest(spec: Any) -> Version:
    bounds = [Version(s.version) for s in spec if s.operator in (">=", "==", "~=") and not s.version.endswith("*")]
    return min(bounds) if bounds else Version("0")


def tensorflow_rocm_answer(matrix: Matrix, query: str) -> dict[str, Any]:
    """What tensorflow-rocm `query` (2.14.0.600 = TF 2.14.0 for ROCm 6.0) needs: ROCm, not CUDA."""
    rel = matrix.tf_rocm_release(query)
    if rel is None:
        raise QueryError(f"tensorflow-rocm {query} is not in the matrix {matrix.path}")
    tf = rel.tf_version(query)
    lines = [r for r in matrix.rocm if tf in r.tensorflow or minor(tf) in r.tensorflow]
    return {
        "query": query,
        "version": query,
        "distribution": "tensorflow-rocm",
        "tensorflow": tf,
        "rocm": str(rel.rocm),
        "releases": list(rel.releases),
        "gfx": list(rel.gfx),
        "python": _spec(rel.python),
        "manylinux": rel.manylinux,
        "glibc": _ver(rel.glibc),
        "numpy_abi": rel.numpy_abi,
        "cuda": None,
        "and_cuda": None,
        "rocm_lines": [{"rocm": spec_text(r.rocm), "gfx": list(r.gfx), "confirmed": r.confirmed} for r in lines],
        "note": rel.note,
        "checked": rel.checked.isoformat(),
        "sources": list(dict.fromkeys(list(rel.source) + [s for r in lines for s in r.source])),
    }


def _find_cuda(matrix: Matrix, query: str):
    _parse_version(query, "CUDA version")
    toolkit = matrix.cuda_toolkit(query)
    if toolkit is None:
        raise QueryError(
            f"CUDA {query} is not in the matrix {matrix.path} (NVIDIA's release notes list "
            f"{matrix.cuda[0].version} ... {matrix.cuda[-1].version})"
            if matrix.cuda
            else f"CUDA {query} is not in the matrix {matrix.path}"
        )
    return toolkit


def cuda_answer(matrix: Matrix, query: str) -> dict[str, Any]:
    """The drivers CUDA `query` needs (12.4 = 12.4 GA; 12.4.1 = 12.4 Update 1)."""
    toolkit = _find_cuda(matrix, query)
    major = matrix.cuda_major_info(toolkit.version.major)
    need = matrix.driver_need(str(toolkit.version))
    mm = toolkit.version.release[:2]
    out: dict[str, Any] = {
        "query": query,
        "cuda": str(toolkit.version),
        "label": toolkit.name,
        "update": toolkit.update,
        "min_driver": toolkit.min_driver_text,
        "min_driver_windows": toolkit.min_driver_windows_text,
        "min_driver_compat": major.min_driver_text if major else None,
        "minor_version_compatibility": bool(major and major.minor_version_compatibility),
        "min_driver_floor": need.floor_text,
        "same_minor": [
            {"cuda": str(t.version), "label": t.name, "min_driver": t.min_driver_text}
            for t in matrix.cuda
            if t.version.release[:2] == mm
        ],
        "tensorflow": [
            r for rel in matrix.tensorflow if rel.cuda is not None and rel.cuda.release[:2] == mm for r in rel.releases
        ],
        "cudnn": [
            {
                "versions": spec_text(c.versions),
                "cuda": spec_text(c.cuda),
                "min_driver": c.min_driver_text,
                "driver_branch": c.driver_branch,
            }
            for c in matrix.cudnn
            if c.cuda.contains(toolkit.version, prereleases=True)
        ],
        "compute_capabilities": [
            cc for e in matrix.compute_capabilities if e.cuda_can_build(toolkit.version) for cc in e.capabilities
        ],
        "forward_compatibility": matrix.forward_compatibility.statement if matrix.forward_compatibility else None,
        "note": toolkit.note or (major.note if major and not major.minor_version_compatibility else None),
        "sources": list(need.sources),
    }
    return out


_DRIVER_RE = re.compile(r"^\d{2,4}(\.\d{1,3}){0,2}$")


def driver_answer(matrix: Matrix, query: str) -> dict[str, Any]:
    """Which CUDA toolkits and TensorFlow releases driver `query` runs: fully (at or above the toolkit's
    own driver) or under minor-version compatibility (at or above the major's floor)."""
    if not _DRIVER_RE.match(query):
        raise QueryError(f"driver version {query!r} is not an NVIDIA driver version like 535.54.03")
    have = Version(query)
    full, compat, none = [], [], []
    for t in matrix.cuda:
        need = matrix.driver_need(str(t.version))
        if have >= t.min_driver:
            full.append(str(t.version))
        elif need.floor is not None and have >= need.floor:
            compat.append(str(t.version))
        else:
            none.append(str(t.version))
    tf_full: list[str] = []
    tf_compat: list[str] = []
    tf_none: list[str] = []
    for rel in matrix.tensorflow:
        if rel.cuda is None:
            continue
        need = matrix.driver_need(str(rel.cuda))
        if need.full is not None and have >= need.full:
            tf_full.extend(rel.releases)
        elif need.floor is not None and have >= need.floor:
            tf_compat.extend(rel.releases)
        else:
            tf_none.extend(rel.releases)
    majors = {m.major: m for m in matrix.cuda_majors}
    newer_majors = sorted({Version(v).major for v in none} - {Version(v).major for v in full + compat})
    fc = matrix.forward_compatibility
    bad = [
        {
            "versions": spec_text(k.versions),
            "reason": k.reason,
            "severity": k.severity,
            "source": list(k.source),
            "overlay": k.origin,
        }
        for k in matrix.known_bad(query)
    ]
    sources = [matrix.cuda[0].source] if matrix.cuda else []
    sources += [s for m in majors.values() for s in (m.sources or (m.source,))]
    if fc is not None and newer_majors:
        sources += list(fc.source)
    branch = driver_branch_out(matrix, query)
    if branch is not None:
        sources += branch["source"]
    return {
        "driver": query,
        "cuda_full": full,
        "cuda_compat": compat,
        "cuda_none": none,
        "tensorflow_full": tf_full,
        "tensorflow_compat": tf_compat,
        "tensorflow_none": tf_none,
        "forward_compatibility": (
            f"CUDA {', '.join(map(str, newer_majors))}.x only with {fc.package} on: {'; '.join(fc.gpus)} (not GeForce)"
        )
        if fc is not None and newer_majors
        else None,
        "known_bad": bad,
        "branch": branch,
        "sources": list(dict.fromkeys(sources)),
    }


def _parse_cc(query: str) -> str:
    cc = parse_cc(query)
    if cc is None:
        raise QueryError(f"compute capability {query!r} is not like 8.6 or sm_86")
    return f"{cc[0]}.{cc[1]}"


_MODE = {"native": "native", "ptx": "ptx_jit", "none": "none"}


def gpu_answer(matrix: Matrix, query: str) -> dict[str, Any]:
    """Which TensorFlow releases run on compute capability `query`: natively (SASS of the same major, minor
    at or below the GPU's), only by JIT-compiling PTX (a compute_XY at or below it), or not at all."""
    cc = _parse_cc(query)
    entry = matrix.compute_capability(cc)
    if entry is None:
        raise QueryError(f"compute capability {cc} is not in the matrix {matrix.path}")
    want = cc_tuple(cc)
    native: list[str] = []
    ptx: list[str] = []
    none: list[str] = []
    by_entry: list[dict[str, Any]] = []
    for rel in matrix.tensorflow:
        if not rel.compute_capabilities:
            continue
        cov = coverage(want, rel.compute_capabilities)
        mode, via = _MODE[cov.kind], cov.entry  # the build entry as the matrix writes it
        {"native": native, "ptx_jit": ptx, "none": none}[mode].extend(rel.releases)
        by_entry.append(
            {
                "versions": spec_text(rel.versions),
                "releases": list(rel.releases),
                "mode": mode,
                "via": via,
                "compute_capabilities": list(rel.compute_capabilities),
            }
        )
    return {
        "compute_capability": cc,
        "architecture": entry.architecture,
        "examples": entry.examples,
        "cuda_first": _ver(entry.first_cuda),
        "cuda_last": _ver(entry.last_cuda),
        "native": native,
        "ptx_jit": ptx,
        "none": none,
        "by_entry": by_entry,
        "cudnn": [
            {
                "versions": spec_text(c.versions),
                "cuda": spec_text(c.cuda),
                "supported": c.supports_cc(cc)
                and any(
                    entry.cuda_can_build(t.version) for t in matrix.cuda if c.cuda.contains(t.version, prereleases=True)
                ),
            }
            for c in matrix.cudnn
        ],
        "note": entry.note,
        "sources": list(dict.fromkeys(list(entry.source) + _build_list_sources(matrix))),
    }


def _build_list_sources(matrix: Matrix) -> list[str]:
    """One wheel per distinct compute-capability list: where the lists were read."""
    seen: dict[tuple[str, ...], str] = {}
    for rel in matrix.tensorflow:
        wheel = next((s for s in rel.source if "#files" in s), None)
        if wheel and rel.compute_capabilities not in seen:
            seen[rel.compute_capabilities] = wheel
    return list(seen.values())


def validate_answer(path: str) -> dict[str, Any]:
    """Load FILE as what its [meta] kind says (matrix or overlay); for a matrix also the invariants."""
    kind = file_kind(Path(path))
    if kind == "overlay":
        ov = load_overlay(Path(path))
        return {
            "path": path,
            "valid": True,
            "kind": "overlay",
            "counts": {
                "known_bad_driver": len(ov.known_bad_drivers),
                "waiver": len(ov.waivers),
                "thresholds": len(ov.thresholds),
            },
        }
    m = load_matrix(Path(path))
    problems = invariant_problems(m)
    if problems:
        raise MatrixError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    return {
        "path": path,
        "valid": True,
        "kind": "matrix",
        "counts": {
            "tensorflow": len(m.tensorflow),
            "releases": len(m.tf_releases()),
            "cuda": len(m.cuda),
            "cuda_major": len(m.cuda_majors),
            "compute_capability": len(m.compute_capabilities),
            "cudnn": len(m.cudnn),
            "tensorflow_rocm": len(m.tensorflow_rocm),
            "rocm": len(m.rocm),
            "tensorflow_platform": len(m.tensorflow_platforms),
            "driver_branch": len(m.driver_branches),
            "companion": len(m.companions),
            "known_bad_driver": len(m.known_bad_drivers),
        },
    }


# ---------------------------------------------------------------------------------------------- what runs here


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
    if not _DRIVER_RE.match(driver):
        raise QueryError(f"driver version {driver!r} is not an NVIDIA driver version like 535.54.03")
    have = Version(driver)
    gpu_info = []
    for cc in dict.fromkeys(_parse_cc(g) for g in gpus):
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
            kind = _MODE[cov.kind]
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
