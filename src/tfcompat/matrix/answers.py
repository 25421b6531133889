"""The answers of `tfcompat matrix tensorflow|cuda`, each a plain dict (driver, gpu and validate: answers_host;
what-runs: what_runs).

The dict is the JSON output; render/matrix_text.py renders the same dict as text. A question about
something the matrix does not know is a `QueryError`: one line, exit 2.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from packaging.version import InvalidVersion, Version

from tfcompat.errors import TfcompatError
from tfcompat.matrix.entries import Companion, TFPlatformBuild, TFRelease, spec_text
from tfcompat.matrix.lookup import Matrix


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
    ("cudnn_minor", lambda r: r.cudnn_minor),  # "exact": TF 1.5/1.6 accept only the compiled minor
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
    ("protoc", lambda r: _ver(r.protoc)),
    ("numpy_built_with", lambda r: _ver(r.numpy_built_with)),
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
    want = _parse_version(query, "CUDA version")
    if matrix.cuda_toolkit(query) is None and matrix.cuda and want > matrix.cuda[-1].version:
        newer = _newer_minor_answer(matrix, query, want)
        if newer is not None:
            return newer
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


def _newer_minor_answer(matrix: Matrix, query: str, want: Version) -> Optional[dict[str, Any]]:
    """A toolkit newer than the matrix's newest, of a major with minor-version compatibility (CUDA 13.5 when the
    matrix ends at 13.2): what is known for every toolkit of the major (it starts on the major's floor driver,
    without PTX from a newer toolchain), and that its own driver is not recorded. None: another major."""
    major = matrix.cuda_major_info(want.major)
    newest = max((t for t in matrix.cuda if t.version.major == want.major), key=lambda t: t.version, default=None)
    if major is None or not major.minor_version_compatibility or newest is None:
        return None
    return {
        "query": query,
        "cuda": str(want),
        "label": f"CUDA {query}, newer than the matrix",
        "update": None,
        "min_driver": None,
        "min_driver_windows": None,
        "min_driver_compat": major.min_driver_text,
        "minor_version_compatibility": True,
        "min_driver_floor": major.min_driver_text,
        "same_minor": [],
        "tensorflow": [],
        "cudnn": [],
        "compute_capabilities": [],
        "forward_compatibility": matrix.forward_compatibility.statement if matrix.forward_compatibility else None,
        "note": f"the matrix knows CUDA {want.major}.x up to {newest.version}: this toolkit's own driver (every "
        f"feature, PTX it compiles) is not recorded; add its row from NVIDIA's release notes "
        f"(scripts/matrix_row.py)",
        "sources": list(dict.fromkeys([major.source, *major.sources])),
        "known": False,
    }
