"""`tfcompat matrix`: ask the compatibility matrix the questions users ask.

    tfcompat matrix tensorflow 2.15      what a release needs (2.15 = the newest 2.15 release)
    tfcompat matrix cuda 12.4            the drivers a CUDA toolkit needs
    tfcompat matrix driver 535.54.03     which CUDA toolkits and TensorFlow releases a driver runs
    tfcompat matrix gpu 8.6              which TensorFlow releases run on a compute capability
    tfcompat matrix validate FILE        check a matrix or site-overlay file (exit 0 valid, 2 not)

Each answer is built as a plain dict (the JSON output); the text output renders the same dict.
Unknown versions are a one-line error and exit 2.
"""

from __future__ import annotations

import json
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import typer
from packaging.version import InvalidVersion, Version

from tfcompat.errors import TfcompatError
from tfcompat.matrix import (
    Matrix,
    MatrixError,
    TFRelease,
    cc_tuple,
    file_kind,
    invariant_problems,
    load_matrix,
    load_overlay,
    parse_matrix,
    spec_text,
)


class QueryError(TfcompatError):
    """The question names something the matrix does not know: one line, exit 2."""


class Format(str, Enum):
    text = "text"
    json = "json"


matrix_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Ask the compatibility matrix: what a TensorFlow release needs, what a driver or GPU can run; "
         "validate a matrix or site-overlay file.",
)

FormatOpt = typer.Option(Format.text, "--format", "-f", help="Output format.")
MatrixOpt = typer.Option(None, "--matrix", help="Use this compatibility matrix file.")
OverlayOpt = typer.Option(None, "--matrix-overlay", help="Add a site overlay (known-bad drivers, waivers); repeatable.")


# ---------------------------------------------------------------------------------------------- answers


def _spec(s: Any) -> Optional[str]:
    return spec_text(s) if s is not None and str(s) else None


def _ver(v: Any) -> Optional[str]:
    return str(v) if v is not None else None


_TF_FIELDS: Tuple[Tuple[str, Callable[[TFRelease], Any]], ...] = (
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


def _minor(v: str) -> str:
    rel = Version(v).release
    return f"{rel[0]}.{rel[1]}"


def tensorflow_answer(matrix: Matrix, query: str) -> Dict[str, Any]:
    """What TensorFlow `query` (2.15, 2.15.1, 2.15.0.post1) needs."""
    want = _parse_version(query, "TensorFlow version")
    version = matrix.resolve_tf(query)
    listed = version is not None
    if version is None:
        rel = matrix.tf_release(query) if len(want.release) >= 3 else None
        if rel is None:
            known = matrix.tf_releases()
            span = f"{known[0]} ... {known[-1]}" if known else "none"
            newer = bool(known) and want > Version(known[-1])
            raise QueryError(f"tensorflow {query} is not in the matrix {matrix.path} (it knows {span})"
                             + ("; `tfcompat check` judges a newer release from its own build_info.py and "
                                "Requires-Dist (TFC109 says the matrix is stale)" if newer else ""))
        version = query
    rel = matrix.tf_release(version)
    assert rel is not None
    out: Dict[str, Any] = {"query": query, "version": version, "listed_release": listed,
                           "versions": spec_text(rel.versions), "releases": list(rel.releases)}
    for key, read in _TF_FIELDS:
        out[key] = read(rel)
    out["sass"] = list(dict.fromkeys(rel.sass))
    out["ptx"] = list(rel.ptx)
    need = matrix.driver_need(str(rel.cuda)) if rel.cuda is not None else None
    out["min_driver"] = need.floor_text if need else None
    out["min_driver_full"] = need.full_text if need else None
    out["min_driver_cuda"] = need.toolkit.name if need and need.toolkit else None
    out["companions"] = [
        {"package": c.package, "versions": spec_text(c.versions), "tensorflow": spec_text(c.tensorflow),
         "native": c.native}
        for c in matrix.companions_for(version)
    ]
    siblings = [r for r in matrix.tensorflow if r is not rel and r.releases
                and any(_minor(x) == _minor(version) for x in r.releases)]
    others = []
    for sib in siblings:
        differs = {k: read(sib) for k, read in _TF_FIELDS if read(sib) != read(rel)}
        others.append({"versions": spec_text(sib.versions), "releases": list(sib.releases), "differs": differs})
    out["other_entries"] = others
    out["note"] = rel.note
    out["confirmed"] = rel.confirmed
    out["checked"] = rel.checked.isoformat()
    out["sources"] = list(dict.fromkeys(list(rel.source) + (list(need.sources) if need else [])))
    return out


def _find_cuda(matrix: Matrix, query: str):
    _parse_version(query, "CUDA version")
    toolkit = matrix.cuda_toolkit(query)
    if toolkit is None:
        raise QueryError(f"CUDA {query} is not in the matrix {matrix.path} (NVIDIA's release notes list "
                         f"{matrix.cuda[0].version} ... {matrix.cuda[-1].version})" if matrix.cuda else
                         f"CUDA {query} is not in the matrix {matrix.path}")
    return toolkit


def cuda_answer(matrix: Matrix, query: str) -> Dict[str, Any]:
    """The drivers CUDA `query` needs (12.4 = 12.4 GA; 12.4.1 = 12.4 Update 1)."""
    toolkit = _find_cuda(matrix, query)
    major = matrix.cuda_major_info(toolkit.version.major)
    need = matrix.driver_need(str(toolkit.version))
    mm = toolkit.version.release[:2]
    out: Dict[str, Any] = {
        "query": query,
        "cuda": str(toolkit.version),
        "label": toolkit.name,
        "update": toolkit.update,
        "min_driver": toolkit.min_driver_text,
        "min_driver_windows": toolkit.min_driver_windows_text,
        "min_driver_compat": major.min_driver_text if major else None,
        "minor_version_compatibility": bool(major and major.minor_version_compatibility),
        "min_driver_floor": need.floor_text,
        "same_minor": [{"cuda": str(t.version), "label": t.name, "min_driver": t.min_driver_text}
                       for t in matrix.cuda if t.version.release[:2] == mm],
        "tensorflow": [r for rel in matrix.tensorflow if rel.cuda is not None and rel.cuda.release[:2] == mm
                       for r in rel.releases],
        "cudnn": [{"versions": spec_text(c.versions), "cuda": spec_text(c.cuda), "min_driver": c.min_driver_text,
                   "driver_branch": c.driver_branch}
                  for c in matrix.cudnn if c.cuda.contains(toolkit.version, prereleases=True)],
        "compute_capabilities": [cc for e in matrix.compute_capabilities if e.cuda_can_build(toolkit.version)
                                 for cc in e.capabilities],
        "forward_compatibility": matrix.forward_compatibility.statement if matrix.forward_compatibility else None,
        "note": toolkit.note or (major.note if major and not major.minor_version_compatibility else None),
        "sources": list(need.sources),
    }
    return out


_DRIVER_RE = re.compile(r"^\d{2,4}(\.\d{1,3}){0,2}$")


def driver_answer(matrix: Matrix, query: str) -> Dict[str, Any]:
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
    tf_full, tf_compat, tf_none = [], [], []
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
    bad = [{"versions": spec_text(k.versions), "reason": k.reason, "severity": k.severity, "source": list(k.source),
            "overlay": k.origin} for k in matrix.known_bad(query)]
    sources = [matrix.cuda[0].source] if matrix.cuda else []
    sources += [s for m in majors.values() for s in (m.sources or (m.source,))]
    if fc is not None and newer_majors:
        sources += list(fc.source)
    return {
        "driver": query,
        "cuda_full": full,
        "cuda_compat": compat,
        "cuda_none": none,
        "tensorflow_full": tf_full,
        "tensorflow_compat": tf_compat,
        "tensorflow_none": tf_none,
        "forward_compatibility": (f"CUDA {', '.join(map(str, newer_majors))}.x only with {fc.package} on: "
                                  f"{'; '.join(fc.gpus)} (not GeForce)") if fc is not None and newer_majors else None,
        "known_bad": bad,
        "sources": list(dict.fromkeys(sources)),
    }


def _parse_cc(query: str) -> str:
    q = query.strip()
    if re.fullmatch(r"(sm|compute)_\d{2,3}", q):
        major, minor = cc_tuple(q)
        return f"{major}.{minor}"
    if re.fullmatch(r"\d{1,2}\.\d", q):
        return q
    raise QueryError(f"compute capability {query!r} is not like 8.6 or sm_86")


def gpu_answer(matrix: Matrix, query: str) -> Dict[str, Any]:
    """Which TensorFlow releases run on compute capability `query`: natively (SASS of the same major, minor
    at or below the GPU's), only by JIT-compiling PTX (a compute_XY at or below it), or not at all."""
    cc = _parse_cc(query)
    entry = matrix.compute_capability(cc)
    if entry is None:
        raise QueryError(f"compute capability {cc} is not in the matrix {matrix.path}")
    want = cc_tuple(cc)
    native, ptx, none, by_entry = [], [], [], []
    for rel in matrix.tensorflow:
        if not rel.compute_capabilities:
            continue
        sass = [c for c in rel.compute_capabilities if cc_tuple(c)[0] == want[0] and cc_tuple(c)[1] <= want[1]]
        jit = [c for c in rel.compute_capabilities if c.startswith("compute_") and cc_tuple(c) <= want]
        if sass:
            mode, via = "native", max(sass, key=cc_tuple)
            native.extend(rel.releases)
        elif jit:
            mode, via = "ptx_jit", max(jit, key=cc_tuple)
            ptx.extend(rel.releases)
        else:
            mode, via = "none", None
            none.extend(rel.releases)
        by_entry.append({"versions": spec_text(rel.versions), "releases": list(rel.releases), "mode": mode, "via": via,
                         "compute_capabilities": list(rel.compute_capabilities)})
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
        "cudnn": [{"versions": spec_text(c.versions), "cuda": spec_text(c.cuda),
                   "supported": c.supports_cc(cc) and any(entry.cuda_can_build(t.version) for t in matrix.cuda
                                                          if c.cuda.contains(t.version, prereleases=True))}
                  for c in matrix.cudnn],
        "note": entry.note,
        "sources": list(dict.fromkeys(list(entry.source) + _build_list_sources(matrix))),
    }


def _build_list_sources(matrix: Matrix) -> List[str]:
    """One wheel per distinct compute-capability list: where the lists were read."""
    seen: Dict[Tuple[str, ...], str] = {}
    for rel in matrix.tensorflow:
        wheel = next((s for s in rel.source if "#files" in s), None)
        if wheel and rel.compute_capabilities not in seen:
            seen[rel.compute_capabilities] = wheel
    return list(seen.values())


def validate_answer(path: str) -> Dict[str, Any]:
    """Load FILE as what its [meta] kind says (matrix or overlay); for a matrix also the invariants."""
    kind = file_kind(Path(path))
    if kind == "overlay":
        ov = load_overlay(Path(path))
        return {"path": path, "valid": True, "kind": "overlay",
                "counts": {"known_bad_driver": len(ov.known_bad_drivers), "waiver": len(ov.waivers),
                           "thresholds": len(ov.thresholds)}}
    m = load_matrix(Path(path))
    problems = invariant_problems(m)
    if problems:
        raise MatrixError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    return {"path": path, "valid": True, "kind": "matrix",
            "counts": {"tensorflow": len(m.tensorflow), "releases": len(m.tf_releases()), "cuda": len(m.cuda),
                       "cuda_major": len(m.cuda_majors), "compute_capability": len(m.compute_capabilities),
                       "cudnn": len(m.cudnn), "tensorflow_rocm": len(m.tensorflow_rocm), "rocm": len(m.rocm),
                       "companion": len(m.companions), "known_bad_driver": len(m.known_bad_drivers)}}


# ---------------------------------------------------------------------------------------------- text


def _span(items: Sequence[str]) -> str:
    """Releases folded by minor: 2.4.0 2.4.1 2.5.0 -> '2.4.0-2.4.1, 2.5.0'; empty -> '(none)'."""
    if not items:
        return "(none)"
    groups: List[List[str]] = []
    for v in items:
        if groups and _minor(groups[-1][-1]) == _minor(v):
            groups[-1].append(v)
        else:
            groups.append([v])
    minors = [g[0] if len(g) == 1 else f"{g[0]}-{g[-1]}" for g in groups]
    if len(minors) > 4:
        return f"{items[0]} ... {items[-1]} ({len(items)} releases)"
    return ", ".join(minors)


def _run_span(items: Sequence[str]) -> str:
    return "(none)" if not items else (items[0] if len(items) == 1 else f"{items[0]} ... {items[-1]} ({len(items)})")


def render_tensorflow(a: Dict[str, Any]) -> str:
    lines = [f"TensorFlow {a['version']}" + ("" if a["listed_release"] else " (not a release the matrix lists)")
             + f"   entry {a['versions']}: {', '.join(a['releases'])}"]

    def row(key: str, value: Any) -> None:
        if value is not None:  # a fact the matrix does not state is left out, not printed as "None"
            lines.append(f"  {key:<22}{value}")

    row("Python", a["python"])
    row("CUDA (build)", a["cuda"])
    row("cuDNN (compiled)", f"{a['cudnn']}  (runtime: same major, minor >= {a['cudnn']})" if a["cudnn"] else None)
    row("compute capabilities", " ".join(a["compute_capabilities"]) + f"  (SASS {' '.join(a['sass'])}; "
        f"PTX {' '.join(a['ptx']) or 'none'})")
    if a["min_driver"]:
        row("Linux driver", f">= {a['min_driver']} (starts); >= {a['min_driver_full']} for every feature "
            f"({a['min_driver_cuda']})")
    row("NumPy ABI", a["numpy_abi"])
    for key in ("numpy", "protobuf", "keras", "ml_dtypes", "h5py"):
        if a[key]:
            row(key, a[key])
    if a["tensorrt"] is not None:
        row("TensorRT", ("yes" if a["tensorrt"] else "no") + (f" (dlopens {a['tensorrt_lib']})" if a["tensorrt_lib"] else ""))
    row("glibc", f">= {a['glibc']}" + (f", GLIBCXX {a['glibcxx']}, CXXABI {a['cxxabi']}" if a["glibcxx"] else ""))
    row("wheel", f"{a['manylinux']}, _GLIBCXX_USE_CXX11_ABI={a['cxx11_abi']}, {a['compiler']}")
    if a["and_cuda"]:
        pins = [f"{k}{v}" for k, v in a["and_cuda"].items()]
        row("[and-cuda]", pins[0])
        lines.extend(f"  {'':<22}{p}" for p in pins[1:])
    if a["companions"]:
        row("companions", ", ".join(f"{c['package']} {c['versions']}" for c in a["companions"]))
    for other in a["other_entries"]:
        diff = "; ".join(f"{k} {v if not isinstance(v, dict) else '(other pins)'}" for k, v in other["differs"].items())
        row("other releases", f"{', '.join(other['releases'])}: {diff or 'same facts'}")
    if a["note"]:
        row("note", a["note"])
    row("checked", a["checked"] + ("" if a["confirmed"] else "  (UNCONFIRMED)"))
    lines.append("  sources:")
    lines.extend(f"    {s}" for s in a["sources"])
    return "\n".join(lines) + "\n"


def render_cuda(a: Dict[str, Any]) -> str:
    lines = [f"{a['label']} ({a['cuda']})"]
    row = lambda k, v: lines.append(f"  {k:<22}{v}")  # noqa: E731
    row("Linux driver", f">= {a['min_driver']} (the toolkit's own driver: every feature)")
    if a["min_driver_windows"]:
        row("Windows driver", f">= {a['min_driver_windows']}")
    row("starts on", f">= {a['min_driver_floor']}")
    if a["minor_version_compatibility"]:
        row(f"CUDA {a['cuda'].split('.')[0]}.x floor", f">= {a['min_driver_compat']} (minor-version compatibility: "
            "any toolkit of the major starts, without PTX from a newer toolchain)")
    else:
        row("minor-version compat", "none before CUDA 11: each toolkit minor needs its own driver")
    row("same minor", ", ".join(f"{t['cuda']} ({t['min_driver']})" for t in a["same_minor"]))
    row("TensorFlow built with", _span(a["tensorflow"]))
    if a["cudnn"]:
        row("cuDNN for it", ", ".join(c["versions"] for c in a["cudnn"]))
    row("can build for CC", " ".join(a["compute_capabilities"]))
    if a["forward_compatibility"]:
        row("forward compat", a["forward_compatibility"])
    if a["note"]:
        row("note", a["note"])
    lines.append("  sources:")
    lines.extend(f"    {s}" for s in a["sources"])
    return "\n".join(lines) + "\n"


def render_driver(a: Dict[str, Any]) -> str:
    lines = [f"NVIDIA driver {a['driver']}"]
    row = lambda k, v: lines.append(f"  {k:<34}{v}")  # noqa: E731
    row("CUDA, every feature", _run_span(a["cuda_full"]))
    row("CUDA, minor-version compat", _run_span(a["cuda_compat"]))
    row("CUDA, not at all", _run_span(a["cuda_none"]))
    row("TensorFlow, every feature", _span(a["tensorflow_full"]))
    row("TensorFlow, minor-version compat", _span(a["tensorflow_compat"]))
    row("TensorFlow, not at all", _span(a["tensorflow_none"]))
    if a["forward_compatibility"]:
        row("newer CUDA", a["forward_compatibility"])
    for bad in a["known_bad"]:
        row(f"KNOWN BAD ({bad['severity']})", f"{bad['versions']}: {bad['reason']} ({bad['overlay']})")
    lines.append("  sources:")
    lines.extend(f"    {s}" for s in a["sources"])
    return "\n".join(lines) + "\n"


def render_gpu(a: Dict[str, Any]) -> str:
    head = f"Compute capability {a['compute_capability']} ({a['architecture']}" + (
        f": {a['examples']})" if a["examples"] else ")")
    lines = [head]
    row = lambda k, v: lines.append(f"  {k:<22}{v}")  # noqa: E731
    built = f"CUDA {a['cuda_first'] or '(any)'} ... {a['cuda_last'] or 'current'}"
    row("CUDA can build for it", built)
    row("TensorFlow native", _span(a["native"]))
    row("only via PTX JIT", _span(a["ptx_jit"]) + ("  (slow first start; fails under CUDA_FORCE_PTX_JIT=1 "
                                                   "elsewhere)" if a["ptx_jit"] else ""))
    row("not at all", _span(a["none"]))
    folded: List[Tuple[Tuple[str, Optional[str]], List[str]]] = []
    for e in a["by_entry"]:
        key = (e["mode"], e["via"])
        if folded and folded[-1][0] == key:
            folded[-1][1].extend(e["releases"])
        else:
            folded.append((key, list(e["releases"])))
    for (mode, via), releases in folded:
        span = releases[0] if len(releases) == 1 else f"{releases[0]} ... {releases[-1]}"
        lines.append(f"    {span:<28} {mode}" + (f" via {via}" if via else ""))
    supported = [f"{c['versions']} (CUDA {c['cuda']})" for c in a["cudnn"] if c["supported"]]
    unsupported = [f"{c['versions']} (CUDA {c['cuda']})" for c in a["cudnn"] if not c["supported"]]
    row("cuDNN supports it", supported[0] if supported else "(none)")
    lines.extend(f"  {'':<22}{x}" for x in supported[1:])
    if unsupported:
        row("cuDNN does not", unsupported[0])
        lines.extend(f"  {'':<22}{x}" for x in unsupported[1:])
    if a["note"]:
        row("note", a["note"])
    lines.append("  sources:")
    lines.extend(f"    {s}" for s in a["sources"])
    return "\n".join(lines) + "\n"


def render_validate(a: Dict[str, Any]) -> str:
    counts = ", ".join(f"{v} {k}" for k, v in a["counts"].items())
    return f"{a['path']}: valid {a['kind']} ({counts})\n"


# ---------------------------------------------------------------------------------------------- commands


def _answer(fmt: Format, build: Callable[[], Dict[str, Any]], render: Callable[[Dict[str, Any]], str]) -> None:
    try:
        answer = build()
    except ValueError as exc:  # MatrixError, QueryError: bad input, one line
        message = str(exc).replace("\n", " ")
        from tfcompat.render.formats import render_error  # JSON: every command's one error shape

        sys.stdout.write(render_error("matrix", fmt.value, message) or "")
        print(f"tfcompat: error: {message}", file=sys.stderr)
        raise typer.Exit(2)
    sys.stdout.write(json.dumps(answer, indent=2) + "\n" if fmt is Format.json else render(answer))


def _load(matrix: Optional[str], overlays: Optional[List[str]]) -> Matrix:
    return load_matrix(Path(matrix) if matrix else None, [Path(o) for o in overlays or ()])


@matrix_app.command("tensorflow")
def tensorflow_cmd(version: str = typer.Argument(..., help="2.15 (newest 2.15 release), 2.15.1, 2.15.0.post1"),
                   fmt: Format = FormatOpt, matrix: Optional[str] = MatrixOpt,
                   overlay: Optional[List[str]] = OverlayOpt) -> None:
    """What a TensorFlow release needs: Python, CUDA, cuDNN, GPUs, driver, packages, glibc."""
    _answer(fmt, lambda: tensorflow_answer(_load(matrix, overlay), version), render_tensorflow)


@matrix_app.command("cuda")
def cuda_cmd(version: str = typer.Argument(..., help="12.4 (GA) or 12.4.1 (Update 1)"),
             fmt: Format = FormatOpt, matrix: Optional[str] = MatrixOpt,
             overlay: Optional[List[str]] = OverlayOpt) -> None:
    """The Linux driver a CUDA toolkit needs: its own, and the minor-version-compatibility floor."""
    _answer(fmt, lambda: cuda_answer(_load(matrix, overlay), version), render_cuda)


@matrix_app.command("driver")
def driver_cmd(version: str = typer.Argument(..., help="NVIDIA driver version, e.g. 535.54.03"),
               fmt: Format = FormatOpt, matrix: Optional[str] = MatrixOpt,
               overlay: Optional[List[str]] = OverlayOpt) -> None:
    """Which CUDA toolkits and TensorFlow releases a driver runs, fully or under minor-version compatibility."""
    _answer(fmt, lambda: driver_answer(_load(matrix, overlay), version), render_driver)


@matrix_app.command("gpu")
def gpu_cmd(cc: str = typer.Argument(..., help="compute capability, e.g. 8.6 or sm_86"),
            fmt: Format = FormatOpt, matrix: Optional[str] = MatrixOpt,
            overlay: Optional[List[str]] = OverlayOpt) -> None:
    """Which TensorFlow releases run on a GPU of this compute capability: natively, by PTX JIT, or not."""
    _answer(fmt, lambda: gpu_answer(_load(matrix, overlay), cc), render_gpu)


@matrix_app.command("validate")
def validate_cmd(path: str = typer.Argument(..., help="a matrix file or a site overlay ([meta] kind = 'overlay')"),
                 fmt: Format = FormatOpt) -> None:
    """Check a matrix or site-overlay file: exit 0 if valid, 2 with a one-line error naming entry and field."""
    _answer(fmt, lambda: validate_answer(path), render_validate)


__all__ = ["matrix_app", "tensorflow_answer", "cuda_answer", "driver_answer", "gpu_answer", "validate_answer",
           "QueryError", "parse_matrix"]
