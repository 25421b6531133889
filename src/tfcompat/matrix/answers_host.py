"""The answers of `tfcompat matrix driver|gpu|validate`: what a driver runs, which releases run on a compute
capability, whether a matrix or overlay file is valid; plain dicts (the JSON output)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from packaging.version import Version

from tfcompat.matrix.answers import QueryError, _ver, driver_branch_out
from tfcompat.matrix.arch import cc_tuple, coverage, parse_cc
from tfcompat.matrix.entries import spec_text
from tfcompat.matrix.fields import MatrixError
from tfcompat.matrix.invariants import invariant_problems
from tfcompat.matrix.load import file_kind, load_matrix
from tfcompat.matrix.lookup import Matrix
from tfcompat.matrix.overlay import load_overlay

DRIVER_RE = re.compile(r"^\d{2,4}(\.\d{1,3}){0,2}$")


def driver_answer(matrix: Matrix, query: str) -> dict[str, Any]:
    """Which CUDA toolkits and TensorFlow releases driver `query` runs: fully (at or above the toolkit's
    own driver) or under minor-version compatibility (at or above the major's floor)."""
    if not DRIVER_RE.match(query):
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


def parse_query_cc(query: str) -> str:
    cc = parse_cc(query)
    if cc is None:
        raise QueryError(f"compute capability {query!r} is not like 8.6 or sm_86")
    return f"{cc[0]}.{cc[1]}"


COVERAGE_MODE = {"native": "native", "ptx": "ptx_jit", "none": "none"}


def gpu_answer(matrix: Matrix, query: str) -> dict[str, Any]:
    """Which TensorFlow releases run on compute capability `query`: natively (SASS of the same major, minor
    at or below the GPU's), only by JIT-compiling PTX (a compute_XY at or below it), or not at all."""
    cc = parse_query_cc(query)
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
        mode, via = COVERAGE_MODE[cov.kind], cov.entry  # the build entry as the matrix writes it
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
