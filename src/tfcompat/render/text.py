"""Human-readable report: a header that names what was checked, findings by severity, skips, summary."""

from __future__ import annotations

from typing import List

from tfcompat.model import Environment, Finding, Report, Severity
from tfcompat.units import human

_COLOURS = {Severity.ERROR: "\033[1;31m", Severity.WARNING: "\033[1;33m", Severity.INFO: "\033[1;36m"}
_RESET = "\033[0m"


def _header(env: Environment) -> List[str]:
    t, h = env.target, env.host
    py = t.python
    lines = [f"Node        {h.node_name or '?'} ({h.node_name_source or '?'})"]
    if t.root:
        lines.append(f"Root        {t.root}")
    py_where = py.executable or (", ".join(t.site_packages[:1]) or "?")
    lines.append(f"Python      {py.version or 'unknown'}  {py_where}")
    tf = env.tensorflow
    if tf is None:
        lines.append(f"TensorFlow  not found: {env.unknown('tensorflow') or '?'}")
    else:
        if tf.is_cuda_build:
            build = f"CUDA {tf.cuda_version or '?'}, cuDNN {tf.cudnn_version or '?'}, " \
                    f"{' '.join(tf.compute_capabilities) or 'compute capabilities ?'}"
        elif tf.is_rocm_build:
            build = "ROCm build"
        elif tf.is_cuda_build is False:
            build = "CPU-only build"
        else:
            build = f"build unknown: {env.unknown('tensorflow.build') or '?'}"
        lines.append(f"TensorFlow  {tf.distribution} {tf.version} ({build})")
        lines.append(f"            {tf.location}")
    d = h.driver
    if d is None:
        lines.append(f"Driver      unknown: {env.unknown('driver') or '?'}")
    else:
        cuda = f", supports CUDA <= {d.cuda_driver_version}" if d.cuda_driver_version else ""
        lines.append(f"Driver      NVIDIA {d.version or '?'}{cuda} ({d.version_source})")
        for lib in d.libraries:
            compat = ", forward compatibility" if lib.forward_compat else ""
            lines.append(f"            {lib.soname} {lib.version or '?'}{compat}  {lib.path}")
    if h.gpus:
        for g in h.gpus:
            lines.append(f"GPU {g.index:<7} {g.name or '?'}, compute capability {g.compute_capability or '?'}, "
                         f"{g.uuid or '?'}")
    elif env.unknown("gpus") and env.unknown("gpus") != env.unknown("driver"):
        lines.append(f"GPUs        unknown: {env.unknown('gpus')}")
    if h.rocm is not None:
        gfx = " ".join(g.gfx_target for g in h.rocm.gpus) or "no AMD GPUs"
        lines.append(f"ROCm        {h.rocm.version or 'version unknown'}, {gfx}")
    r = h.resources
    if r is not None:
        parts = []
        if r.shm_bytes is not None:
            parts.append(f"/dev/shm {human(r.shm_bytes)}")
        if r.rlimit_source:
            parts.append(f"memlock {human(r.memlock_soft)}")
        if r.cgroup_version:
            parts.append(f"cgroup v{r.cgroup_version} memory {human(r.cgroup_memory_limit)}")
        if r.mem_total:
            parts.append(f"RAM {human(r.mem_total)}")
        if parts:
            lines.append(f"Limits      {', '.join(parts)}")
    p = h.platform
    plat = ", ".join(x for x in (p.os_release, p.arch, f"glibc {p.glibc}" if p.glibc else None) if x)
    lines.append(f"Platform    {plat or 'unknown'}")
    return lines


def _finding(f: Finding, colour: bool) -> List[str]:
    label = f.severity.value.upper()
    if colour:
        label = _COLOURS[f.severity] + label + _RESET
    waived = f" [waived: {f.waived}]" if f.waived else ""
    out = [f"{label} {f.rule} {f.name}{waived}", f"  {f.message}"]
    for e in f.evidence:
        out.append(f"  evidence: {e.fact} = {e.value}  ({e.source})")
    out.append(f"  fix: {f.remediation}")
    return out


def render_text(report: Report, colour: bool = False, verbose: bool = False) -> str:
    lines: List[str] = [f"tfcompat {report.tool_version}"]
    if report.environment is not None:
        lines += _header(report.environment)
    active = [f for f in report.findings if not f.waived]
    waived = [f for f in report.findings if f.waived]
    for f in active:
        lines.append("")
        lines += _finding(f, colour)
    if waived:
        lines.append("")
        lines.append(f"Waived ({len(waived)}):")
        for f in waived:
            lines.append(f"  {f.rule} {f.name}: {f.message} [{f.waived}]")
    if report.skipped:
        lines.append("")
        # Skips that share a reason (e.g. "no NVIDIA driver") are folded onto one line.
        by_reason = {}
        for s in report.skipped:
            by_reason.setdefault(s.reason, []).append(s.rule)
        lines.append("Skipped:")
        for reason, rules in by_reason.items():
            lines.append(f"  {', '.join(rules)}: {reason}")
    for e in report.errors:
        if report.environment is None:
            lines.append(f"error: {e}")
    counts = {s: sum(1 for f in active if f.severity is s) for s in Severity}
    summary = ", ".join(f"{counts[s]} {s.value}{'s' if counts[s] != 1 and s is not Severity.INFO else ''}"
                        for s in (Severity.ERROR, Severity.WARNING, Severity.INFO))
    verdict = {"pass": "PASS", "fail": "FAIL", "error": "UNDECIDED"}[report.status]
    lines.append("")
    lines.append(f"Result: {verdict} ({summary}; fail-on {report.fail_on.value}; exit {report.exit_code})")
    return "\n".join(lines) + "\n"
