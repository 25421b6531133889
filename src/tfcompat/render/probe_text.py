"""The 'Probe' section of the text report (`--probe`): steps, devices, libraries loaded, classified lines."""

from __future__ import annotations

from typing import Optional

from tfcompat.model import Environment, ProbeResult
from tfcompat.probes.logpatterns import CLASS_ORDER, gpu_node, line_class, strip_prefix
from tfcompat.units import short_path

# Shared objects worth a line of their own (the rest is counted; -v lists them all).
_NOTABLE = (
    "libtensorflow",
    "_pywrap_tensorflow_internal",
    "lib_pywrap_tensorflow_common",
    "libcuda.",
    "libcudart",
    "libcudnn",
    "libcublas",
    "libcufft",
    "libcurand",
    "libcusolver",
    "libcusparse",
    "libnccl",
    "libnvJitLink",
    "libnvinfer",
    "libnvidia-",
    "libcupti",
    "libstdc++",
    "libamdhip",
    "librocm",
    "libMIOpen",
)


def probe_section(env: Environment, verbose: bool = False) -> list[str]:
    p: Optional[ProbeResult] = env.probe
    if p is None:
        reason = env.unknown("probe")
        return [f"Probe       {reason}"] if reason else []
    seconds = p.duration_ms / 1000
    what = {
        "ok": "imported TensorFlow",
        "error": f"FAILED in {p.failing_step}",
        "crash": f"CRASHED ({p.signal}) in {p.failing_step or 'start-up'}",
        "exit": f"DIED ({p.error})",
        "timeout": f"TIMED OUT after {p.timeout_s} s in {p.failing_step or 'start-up'}",
        "not-started": f"could not start: {p.error}",
    }.get(p.outcome, p.outcome)
    out = [f"Probe       {p.python}: {what} ({seconds:.1f} s)"]
    if p.outcome == "error" and p.error:
        out.append(f"  error     {p.error}")
    width = max((len(s.name) for s in p.steps), default=0)
    for s in p.steps:
        ms = f"{s.duration_ms} ms" if s.duration_ms is not None else ""
        detail = short_path(s.detail) if s.detail and s.detail.startswith("/") else (s.detail or "")
        if s.detail and " from /" in s.detail:
            head, _, path = s.detail.partition(" from ")
            detail = f"{head} from {short_path(path)}"
        out.append(f"  step      {s.name:<{width}}  {s.status:<7} {ms:>8}  {detail}".rstrip())
    if p.libraries:
        notable = [lib for lib in p.libraries if lib.name.startswith(_NOTABLE)]
        shown = p.libraries if verbose else notable
        out.append(
            f"  loaded    {len(p.libraries)} shared objects ({p.libraries_source})"
            + (":" if verbose else (", among them:" if notable else ""))
        )
        name_w = max((len(lib.name) for lib in shown), default=0)
        for lib in shown:
            out.append(f"            {lib.name:<{name_w}}  {short_path(lib.path)}")
    elif p.outcome != "not-started":
        out.append(f"  loaded    no list ({p.libraries_source})")
    gpu = gpu_node(env)  # the classes the 7xx rules judge by (line_class), shown as they are
    lines = sorted(p.log_lines, key=lambda ln: CLASS_ORDER.get(line_class(ln, gpu), 9))
    benign = [ln for ln in lines if line_class(ln, gpu) == "benign"]
    label = "log"
    for ln in lines:
        cls = line_class(ln, gpu)
        if cls == "benign" and not verbose:
            continue
        times = f" (x{ln.count})" if ln.count > 1 else ""
        out.append(
            f"  {label:<9} {cls.upper() if cls == 'fatal' else cls:<12} {ln.pattern}{times}: "
            f"{_cut(strip_prefix(ln.text))}"
        )
        label = ""
    if benign and not verbose:
        names = ", ".join(ln.pattern + (f" (x{ln.count})" if ln.count > 1 else "") for ln in benign)
        out.append(f"  {label:<9} {'benign':<12} {names}")
    return out


def _cut(text: str, n: int = 110) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
