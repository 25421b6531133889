"""Human-readable report: a header that names what was checked, findings by severity, skips, summary."""

from __future__ import annotations

from tfcompat.model import CustomOp, Environment, Finding, Report, Scope, Severity
from tfcompat.render.escape import visible
from tfcompat.render.probe_text import probe_section
from tfcompat.units import human, short_path

_COLOURS = {Severity.ERROR: "\033[1;31m", Severity.WARNING: "\033[1;33m", Severity.INFO: "\033[1;36m"}
_RESET = "\033[0m"


def _header(env: Environment) -> list[str]:
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
            build = (
                f"CUDA {tf.cuda_version or '?'}, cuDNN {tf.cudnn_version or '?'}, "
                f"{' '.join(tf.compute_capabilities) or 'compute capabilities ?'}"
            )
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
        if d.version:
            lines.append(f"Driver      NVIDIA {d.version}{cuda} ({d.version_source})")
        else:
            lines.append(f"Driver      unknown: {env.unknown('driver') or 'not read'}")
        for lib in d.libraries:
            compat = ", forward compatibility" if lib.forward_compat else ""
            lines.append(f"            {lib.soname} {lib.version or '?'}{compat}  {lib.path}")
    if h.gpus:
        for g in h.gpus:
            lines.append(
                f"GPU {g.index:<7} {g.name or '?'}, compute capability {g.compute_capability or '?'}, {g.uuid or '?'}"
            )
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
    if t.custom_ops:
        owners: dict[str, list[CustomOp]] = {}
        for op in t.custom_ops:
            owners.setdefault(op.owner, []).append(op)
        parts = [
            f"{o} {sum(not op.ok for op in ops)}/{len(ops)} failing"
            if any(not op.ok for op in ops)
            else f"{o} {len(ops)} ok"
            for o, ops in sorted(owners.items())
        ]
        lines.append(f"Custom ops  {len(t.custom_ops)} objects linking TensorFlow checked: {'; '.join(parts)}")
    p = h.platform
    plat = ", ".join(x for x in (p.os_release, p.arch, f"glibc {p.glibc}" if p.glibc else None) if x)
    lines.append(f"Platform    {plat or 'unknown'}")
    return lines


def _libraries(env: Environment, verbose: bool = False) -> list[str]:
    """Compact table of the native libraries TF will load: soname, version, found via, path (issue 4)."""
    native = env.target.native
    tf = env.tensorflow
    if tf is None:
        return []
    if native is None:
        reason = env.unknown("libraries")
        return [f"Libraries   unknown: {reason}"] if reason else []
    if not native.libraries:
        if tf.is_rocm_build:
            return ["Libraries   no CUDA libraries: ROCm build"]
        if tf.is_cuda_build is False:
            return ["Libraries   none to load: CPU-only build"]
        reason = env.unknown("libraries")
        return [f"Libraries   unknown: {reason}"] if reason else []
    out = [f"Libraries   dlopen()ed by {short_path(native.caller or '?')}"]
    if native.ld_library_path:
        out.append(f"            LD_LIBRARY_PATH={native.ld_library_path}")
    rows = []
    subs = [lib for lib in native.libraries if lib.role == "cudnn-sublibrary"]
    found = [lib.found for lib in subs if lib.found is not None and not lib.found.problem]
    # the sub-libraries fold onto one row when all are found alike (same version, step and directory)
    fold = (
        bool(subs)
        and len(found) == len(subs)
        and len({(c.version, c.found_via, c.real_path.rsplit("/", 1)[0]) for c in found}) == 1
    )
    for lib in native.libraries:
        if fold and lib.role == "cudnn-sublibrary":
            continue
        rows.append(_library_row(lib))
    if fold:
        f = found[0]
        major = subs[0].soname.rsplit(".", 1)[-1]
        rows.append(
            (
                f"libcudnn_*.so.{major} ({len(subs)})",
                f.version or "?",
                f.found_via,
                short_path(f.real_path.rsplit("/", 1)[0]) + "/",
                "",
            )
        )
    width = max(len(r[0]) for r in rows)
    for name, version, via, path, extra in rows:
        out.append(f"  {name:<{width}}  {version:<12} {via:<16} {path}{extra}")
        if verbose:
            res = next((x for x in native.libraries if x.soname == name), None)
            for c in res.others if res else ():
                out.append(
                    f"  {'':<{width}}  {c.version or '?':<12} {c.found_via:<16} {short_path(c.real_path)}"
                    f"{'  (' + c.problem + ')' if c.problem else ''}"
                )
    return out


def _library_row(lib) -> tuple:
    f = lib.found
    others = list(lib.others)
    extra = f"  (+{len(others)} other cop{'ies' if len(others) != 1 else 'y'})" if others else ""
    if f is None:
        off = [c for c in lib.others if c.found_via == "installed, not on the search path"]
        where = (
            f"installed off the search path: {short_path(off[0].real_path)}"
            if off
            else ("" if lib.role != "driver" else "installed with the NVIDIA driver")
        )
        if lib.missing_deps:
            where = (where + "; " if where else "") + "missing " + lib.missing_deps[0].split(" ", 1)[0]
        if not where and lib.other_sonames:
            where = f"(other version: {lib.other_sonames[0]})"
        return lib.soname, "-", "NOT FOUND", where, ""
    if f.problem:
        return lib.soname, f.version or "?", "UNUSABLE", f"{short_path(f.real_path)} ({f.problem})", extra
    deps = [d for d in lib.missing_deps if not d.startswith(("libcuda.so", "libnvidia-"))]
    if deps:
        extra += f"  (missing dependency {deps[0].split(' ', 1)[0]})"
    asked = f.path.rsplit("/", 1)[-1]
    if asked not in (lib.soname, f.real_path.rsplit("/", 1)[-1]):
        extra = f"  (as {asked})" + extra
    return lib.soname, f.version or "?", f.found_via, short_path(f.real_path), extra


def _finding(f: Finding) -> list[str]:
    label = f.severity.value.upper()  # coloured by render_text, after escaping
    waived = f" [waived: {f.waived}]" if f.waived else ""
    out = [f"{label} {f.rule} {f.name}{waived}", f"  {f.message}"]
    for e in f.evidence:
        out.append(f"  evidence: {e.fact} = {e.value}  ({e.source})")
    out.append(f"  fix: {f.remediation}")
    return out


def _scope_line(report: Report) -> str:
    """Which limits were judged (--scope), and the scope the snapshot was recorded with where it differs."""
    if report.judged_as is Scope.NODE:
        what = "node (a node agent: /dev/shm, memlock, cgroup and CUDA_VISIBLE_DEVICES are its own: information only)"
    else:
        what = "job (the limits this check runs under are judged as the job's)"
    env = report.environment
    if env is not None and env.scope is not report.judged_as:
        what += f"; the snapshot was recorded with --scope {env.scope.value}"
    return f"Scope       {what}"


def render_text(report: Report, colour: bool = False, verbose: bool = False) -> str:
    lines: list[str] = [f"tfcompat {report.tool_version}"]
    if report.environment is not None:
        lines += _header(report.environment)
        lines.insert(2, _scope_line(report))  # under "Node"
        lines += _libraries(report.environment, verbose)
        lines += probe_section(report.environment, verbose)
    active = [f for f in report.findings if not f.waived]
    waived = [f for f in report.findings if f.waived]
    labels: dict[int, Severity] = {}  # line index -> the severity whose label starts it (coloured last)
    for f in active:
        lines.append("")
        labels[len(lines)] = f.severity
        lines += _finding(f)
    if waived:
        lines.append("")
        lines.append(f"Waived ({len(waived)}):")
        for f in waived:
            lines.append(f"  {f.rule} {f.name}: {f.message} [{f.waived}]")
    if report.skipped:
        lines.append("")
        # Skips that share a reason (e.g. "no NVIDIA driver") are folded onto one line.
        by_reason: dict[str, list[str]] = {}
        for s in report.skipped:
            by_reason.setdefault(s.reason, []).append(s.rule)
        lines.append("Skipped:")
        for reason, rules in by_reason.items():
            lines.append(f"  {', '.join(rules)}: {reason}")
    shown = {f.message for f in report.findings}
    errors = [e for e in report.errors if e not in shown]
    if errors:
        lines.append("")
        lines += [f"error: {e}" for e in errors]
    counts = {s: sum(1 for f in active if f.severity is s) for s in Severity}
    summary = ", ".join(
        f"{counts[s]} {s.value}{'s' if counts[s] != 1 and s is not Severity.INFO else ''}"
        for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)
    )
    verdict = {"pass": "PASS", "fail": "FAIL", "error": "UNDECIDED"}[report.status]
    lines.append("")
    lines.append(f"Result: {verdict} ({summary}; fail-on {report.fail_on.value}; exit {report.exit_code})")
    # Paths, sonames, symbols, versions and messages come from the scanned environment (or a snapshot): one
    # line each, control characters shown as escapes; then the renderer's own colour.
    lines = [visible(line) for line in lines]
    if colour:
        for i, severity in labels.items():
            label = severity.value.upper()
            lines[i] = _COLOURS[severity] + label + _RESET + lines[i][len(label) :]
    return "\n".join(lines) + "\n"
