"""`tfcompat matrix ...` output: the answer dicts of tfcompat.matrix.answers as text tables or JSON.

Renderers return strings; the CLI prints them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Optional

from packaging.version import Version

from tfcompat.matrix.abi_floors import PROTOBUF_UPB, legacy_gencode, numpy_floor
from tfcompat.matrix.answers import minor as _minor


def render_answer_json(answer: dict[str, Any]) -> str:
    return json.dumps(answer, indent=2) + "\n"


def _span(items: Sequence[str]) -> str:
    """Releases folded by minor: 2.4.0 2.4.1 2.5.0 -> '2.4.0-2.4.1, 2.5.0'; empty -> '(none)'."""
    if not items:
        return "(none)"
    groups: list[list[str]] = []
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


def render_tensorflow_rocm(a: dict[str, Any]) -> str:
    lines = [f"tensorflow-rocm {a['version']} (TensorFlow {a['tensorflow']} for ROCm {a['rocm']}; not a CUDA build)"]
    facts = (
        ("ROCm (build)", a["rocm"]),
        ("gfx targets", " ".join(a["gfx"]) or None),
        ("Python", a["python"]),
        ("glibc", f">= {a['glibc']}" if a["glibc"] else None),
        ("NumPy ABI", a["numpy_abi"]),
        ("wheel", a["manylinux"]),
        ("ROCm lines for it", ", ".join(r["rocm"] for r in a["rocm_lines"]) or None),
        ("note", a["note"]),
        ("checked", a["checked"]),
    )
    lines.extend(f"  {k:<22}{v}" for k, v in facts if v is not None)
    lines.append("  sources:")
    lines.extend(f"    {s}" for s in a["sources"])
    return "\n".join(lines) + "\n"


def render_tensorflow(a: dict[str, Any]) -> str:
    if a.get("distribution") == "tensorflow-rocm":
        return render_tensorflow_rocm(a)
    lines = [
        f"TensorFlow {a['version']}"
        + ("" if a["listed_release"] else " (not a release the matrix lists)")
        + f"   entry {a['versions']}: {', '.join(a['releases'])}"
    ]

    def row(key: str, value: Any) -> None:
        if value is not None:  # a fact the matrix does not state is left out, not printed as "None"
            lines.append(f"  {key:<22}{value}")

    row("Python", a["python"])
    row("CUDA (build)", a["cuda"])
    runtime = "same minor only" if a.get("cudnn_minor") == "exact" else f"same major, minor >= {a['cudnn']}"
    row("cuDNN (compiled)", f"{a['cudnn']}  (runtime: {runtime})" if a["cudnn"] else None)
    row(
        "compute capabilities",
        " ".join(a["compute_capabilities"]) + f"  (SASS {' '.join(a['sass'])}; PTX {' '.join(a['ptx']) or 'none'})"
        if a["compute_capabilities"]
        else "not stated (build_info.py lists none before 2.3)",
    )
    if a["min_driver"]:
        row(
            "Linux driver",
            f">= {a['min_driver']} (starts); >= {a['min_driver_full']} for every feature ({a['min_driver_cuda']})",
        )
    row("NumPy ABI", a["numpy_abi"])
    for key in ("numpy", "protobuf", "keras", "ml_dtypes", "h5py"):
        if a[key]:
            row(key, a[key])
    row("NumPy (built with)", _numpy_built_with(a.get("numpy_built_with")))
    row("protoc (_pb2.py)", _protoc(a.get("protoc")))
    if a["tensorrt"] is not None:
        row(
            "TensorRT",
            ("yes" if a["tensorrt"] else "no") + (f" (dlopens {a['tensorrt_lib']})" if a["tensorrt_lib"] else ""),
        )
    row("glibc", f">= {a['glibc']}" + (f", GLIBCXX {a['glibcxx']}, CXXABI {a['cxxabi']}" if a["glibcxx"] else ""))
    row("wheel", f"{a['manylinux']}, _GLIBCXX_USE_CXX11_ABI={a['cxx11_abi']}, {a['compiler']}")
    if a["and_cuda"]:
        pins = [f"{k}{v}" for k, v in a["and_cuda"].items()]
        row("[and-cuda]", pins[0])
        lines.extend(f"  {'':<22}{p}" for p in pins[1:])
    if a.get("and_cuda_min_driver"):
        row(
            "[and-cuda] driver",
            f">= {a['and_cuda_min_driver']} for every feature of its CUDA {a['and_cuda_cuda']} libraries "
            f"({a['and_cuda_driver_row']})",
        )
    if a["companions"]:
        row("companions", ", ".join(f"{c['package']} {c['versions']}" for c in a["companions"]))
    for other in a["other_entries"]:
        diff = "; ".join(f"{k} {v if not isinstance(v, dict) else '(other pins)'}" for k, v in other["differs"].items())
        row("other releases", f"{', '.join(other['releases'])}: {diff or 'same facts'}")
    for p in a.get("platforms", []):
        row(f"Linux {p['platform']}", _platform_text(p))
    if a["note"]:
        row("note", a["note"])
    row("checked", a["checked"] + ("" if a["confirmed"] else "  (UNCONFIRMED)"))
    lines.append("  sources:")
    lines.extend(f"    {s}" for s in a["sources"])
    return "\n".join(lines) + "\n"


def _numpy_built_with(text: Optional[str]) -> Optional[str]:
    """`1.21 headers: needs NumPy >= 1.20 (C API 0xe)`: the floor its extension modules set."""
    if not text:
        return None
    floor = numpy_floor(Version(text))
    return f"{text} headers" + (f": needs NumPy >= {floor[0]} (C API {floor[1]:#x})" if floor else "")


def _protoc(text: Optional[str]) -> Optional[str]:
    """`3.9.2: descriptors built directly, fails under protobuf >= 4.21`."""
    if not text:
        return None
    if legacy_gencode(Version(text)):
        return f"{text}: builds descriptors directly, fails under protobuf >= {PROTOBUF_UPB} (upb)"
    return text


def _platform_text(p: dict[str, Any]) -> str:
    """One [[tensorflow_platform]] entry: `tensorflow` aarch64 wheels (manylinux2014, CPU only)."""
    if p["wrapper"]:
        what = f"{p['package']} {p['versions']}: a ~2 KB wrapper wheel (no TensorFlow in it)"
    else:
        kind = {True: "CUDA build", False: "CPU only (build_info is_cuda_build False)", None: None}[p["cuda_build"]]
        glibc = f"glibc >= {p['glibc']}" if p["glibc"] else None
        what = f"{p['package']} {p['versions']}: " + ", ".join(x for x in (p["manylinux"], glibc, kind) if x)
    if p["note"]:
        what += f"; {p['note']}"
    return what + ("" if p["confirmed"] else "  (UNCONFIRMED)")


def render_cuda(a: dict[str, Any]) -> str:
    lines = [f"{a['label']} ({a['cuda']})"]
    row = lambda k, v: lines.append(f"  {k:<22}{v}")  # noqa: E731
    if a["min_driver"]:
        row("Linux driver", f">= {a['min_driver']} (the toolkit's own driver: every feature)")
    else:
        row("Linux driver", "not recorded (the toolkit's own driver: every feature)")
    if a["min_driver_windows"]:
        row("Windows driver", f">= {a['min_driver_windows']}")
    row("starts on", f">= {a['min_driver_floor']}")
    if a["minor_version_compatibility"]:
        row(
            f"CUDA {a['cuda'].split('.')[0]}.x floor",
            f">= {a['min_driver_compat']} (minor-version compatibility: "
            "any toolkit of the major starts, without PTX from a newer toolchain)",
        )
    else:
        row("minor-version compat", "none before CUDA 11: each toolkit minor needs its own driver")
    if a["same_minor"]:
        row("same minor", ", ".join(f"{t['cuda']} ({t['min_driver']})" for t in a["same_minor"]))
    row("TensorFlow built with", _span(a["tensorflow"]))
    if a["cudnn"]:
        row("cuDNN for it", ", ".join(c["versions"] for c in a["cudnn"]))
    if a["compute_capabilities"]:
        row("can build for CC", " ".join(a["compute_capabilities"]))
    if a["forward_compatibility"]:
        row("forward compat", a["forward_compatibility"])
    if a["note"]:
        row("note", a["note"])
    lines.append("  sources:")
    lines.extend(f"    {s}" for s in a["sources"])
    return "\n".join(lines) + "\n"


_DESIGNATION = {
    "lts": "Long Term Support Branch",
    "production": "Production Branch",
    "new-feature": "New Feature Branch",
}


def _branch_text(b: dict[str, Any]) -> str:
    """R580, Long Term Support Branch, end of life 2028-06 (NVIDIA's data-center driver lifecycle)."""
    eol = f"end of life {b['end_of_life']}" if b["end_of_life"] else "no end-of-life date stated"
    return f"{b['branch']}, {_DESIGNATION[b['designation']]}, {eol}" + ("" if b["confirmed"] else " (UNCONFIRMED)")


def render_driver(a: dict[str, Any]) -> str:
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
    if a.get("branch"):
        row("branch (info)", _branch_text(a["branch"]))
    lines.append("  sources:")
    lines.extend(f"    {s}" for s in a["sources"])
    return "\n".join(lines) + "\n"


def render_gpu(a: dict[str, Any]) -> str:
    head = f"Compute capability {a['compute_capability']} ({a['architecture']}" + (
        f": {a['examples']})" if a["examples"] else ")"
    )
    lines = [head]
    row = lambda k, v: lines.append(f"  {k:<22}{v}")  # noqa: E731
    built = f"CUDA {a['cuda_first'] or '(any)'} ... {a['cuda_last'] or 'current'}"
    row("CUDA can build for it", built)
    row("TensorFlow native", _span(a["native"]))
    row(
        "only via PTX JIT",
        _span(a["ptx_jit"])
        + ("  (slow first start; fails under CUDA_FORCE_PTX_JIT=1 elsewhere)" if a["ptx_jit"] else ""),
    )
    row("not at all", _span(a["none"]))
    folded: list[tuple[tuple[str, Optional[str]], list[str]]] = []
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


def render_validate(a: dict[str, Any]) -> str:
    counts = ", ".join(f"{v} {k}" for k, v in a["counts"].items())
    return f"{a['path']}: valid {a['kind']} ({counts})\n"


def render_what_runs(a: dict[str, Any]) -> str:
    gpus = ", ".join(f"{g['compute_capability']} ({g['architecture']})" for g in a["gpus"]) or "(none given)"
    source = "" if a["driver_source"] == "--driver" else f"  (from {a['driver_source']})"
    lines = [f"What runs here: NVIDIA driver {a['driver']}{source}; GPUs {gpus}"]
    row = lambda k, v: lines.append(f"  {k:<22}{v}")  # noqa: E731

    def tf_line(t: dict[str, Any]) -> str:
        how = (
            f"every feature: driver >= {t['min_driver_full']}"
            if t["driver"] == "full"
            else f"minor-version compatibility: driver >= {t['min_driver']}; "
            f"every feature needs >= {t['min_driver_full']}"
        )
        return f"{t['version']}  (CUDA {t['cuda']}, cuDNN {t['cudnn']}; {how})"

    tf = a["tensorflow"]
    if tf is None:
        row("TensorFlow", "(none in the matrix runs here)")
    else:
        row("TensorFlow", tf_line(tf))
        row(
            "kernels",
            "; ".join(f"{k['compute_capability']} {k['mode']} via {k['via']}" for k in tf["kernels"])
            or "(not checked)",
        )
        row("Python", tf["python"])
        row("pip", tf["pip"])
        here = tf["cudnn_here"]
        row(
            "cuDNN for it",
            f"{here['versions']} (CUDA {here['cuda_major']} build)" if here else "(not judged by the matrix)",
        )
        if tf["cudnn_pin"]:
            row("[and-cuda] cuDNN", tf["cudnn_pin"])
    full = a["tensorflow_full"]
    if full is not None and (tf is None or full["version"] != tf["version"]):
        row("with every feature", tf_line(full))
    blocked = a["newer_blocked"]
    if blocked is not None:
        row(f"not {blocked['version']}", blocked["why"][0])
        lines.extend(f"  {'':<22}{w}" for w in blocked["why"][1:])
    cudnn = a["cudnn"]
    row("newest cuDNN here", f"{cudnn['versions']} (CUDA {cudnn['cuda_major']} build)" if cudnn else "(none)")
    row(
        "newest CUDA here",
        f"{a['cuda_full'] or '(none)'} every feature; {a['cuda_compat'] or '(none)'} minor-version compat",
    )
    for bad in a["known_bad"]:
        row(f"KNOWN BAD ({bad['severity']})", f"{bad['versions']}: {bad['reason']} ({bad['overlay']})")
    if a.get("driver_branch"):
        row("driver branch (info)", _branch_text(a["driver_branch"]))
    for note in a["notes"]:
        row("note", note)
    lines.append("  sources:")
    lines.extend(f"    {s}" for s in a["sources"])
    return "\n".join(lines) + "\n"
