"""Shared helpers of the 7xx rules: the recorded probe, its evidence, its fatal lines.

The rules judge ``env.probe``, recorded by probes/importprobe.py in a sandboxed child process; what a
log line means on this node is ``probes.logpatterns.line_class`` (the one place lines are classified).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Optional

from tfcompat.engine.registry import NotApplicable
from tfcompat.model import Environment, Evidence, LogLine, ProbeResult, ProbeStep
from tfcompat.probes.logpatterns import gpu_node, line_class, line_why

__all__ = [
    "NUMPY_PATTERNS",
    "SIGNALS",
    "cut",
    "fatal_lines",
    "first_frames",
    "gpu_node",
    "innermost_frame",
    "line_class",
    "line_evidence",
    "line_why",
    "module_of",
    "outcome_evidence",
    "probe_source",
    "recorded_probe",
    "step_named",
]

SIGNALS = {
    "SIGSEGV": "segmentation fault: native code touched invalid memory, typically an ABI mismatch between "
    "native modules (a companion package or custom op built for another TensorFlow, two copies of "
    "a library, NumPy 2 under a NumPy-1 build)",
    "SIGABRT": "abort: a native library stopped the process (a failed CHECK, an uncaught C++ exception, "
    "glibc detecting heap corruption)",
    "SIGILL": "illegal instruction: the build uses CPU instructions (AVX, AVX2, AVX-512...) this CPU lacks",
    "SIGBUS": "bus error: a memory-mapped file changed or vanished underneath (a library replaced while in "
    "use, a network filesystem, a full /dev/shm)",
    "SIGFPE": "arithmetic exception in native code",
    "SIGKILL": "killed from outside (the kernel's OOM killer, a cgroup memory limit, or an operator)",
}

NUMPY_PATTERNS = ("numpy2-abi-banner", "numpy-array-api-missing", "numpy-core-import-failed")


def recorded_probe(env: Environment) -> Generator[NotApplicable, None, Optional[ProbeResult]]:
    """The probe's result (None without --probe). When --probe was asked for but could not run, it first
    yields why, as a skip: a rule writes ``probe = yield from recorded_probe(env)``."""
    if env.probe is None:
        reason = env.unknown("probe")
        if reason:
            yield NotApplicable(f"probe unknown: {reason}")
    return env.probe


def probe_source(probe: ProbeResult) -> str:
    return f"--probe: {probe.python} in a child process"


def fatal_lines(env: Environment, probe: ProbeResult) -> list[LogLine]:
    gpu = gpu_node(env)
    return [ln for ln in probe.log_lines if line_class(ln, gpu) == "fatal"]


def line_evidence(probe: ProbeResult, lines: Sequence[LogLine], limit: int = 6) -> tuple[Evidence, ...]:
    out = []
    for ln in lines[:limit]:
        times = f" (x{ln.count})" if ln.count > 1 else ""
        out.append(Evidence(f"log line [{ln.pattern}]", cut(ln.text) + times, probe_source(probe)))
    return tuple(out)


def cut(text: str, n: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def step_named(probe: ProbeResult, name: Optional[str]) -> Optional[ProbeStep]:
    return next((s for s in probe.steps if s.name == name), None) if name else None


def module_of(step_name: Optional[str]) -> Optional[str]:
    if step_name and step_name.startswith("import "):
        return step_name[len("import ") :]
    return None


def outcome_evidence(probe: ProbeResult) -> list[Evidence]:
    step = step_named(probe, probe.failing_step)
    how = {
        "crash": probe.signal,
        "exit": f"exit code {probe.exit_code}",
        "timeout": f"after {probe.timeout_s} s",
        "error": (step.error or "").split(":", 1)[0] if step and step.error else "a Python exception",
    }.get(probe.outcome)
    ev = [Evidence("probe.outcome", f"{probe.outcome} ({how})" if how else probe.outcome, probe_source(probe))]
    if probe.failing_step:
        ev.append(Evidence("probe.failing_step", probe.failing_step, probe_source(probe)))
    return ev


def first_frames(text: Optional[str], n: int = 3) -> Optional[str]:
    """The first lines of faulthandler's report: the fatal error and the innermost frames."""
    if not text:
        return None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines[:n]) if lines else None


def innermost_frame(traceback: Optional[str]) -> Optional[str]:
    """'File ".../x.py", line 3 in <module>' of the first thread in a faulthandler dump."""
    if not traceback:
        return None
    for line in traceback.splitlines():
        s = line.strip()
        if s.startswith("File "):
            return s
    return None
