"""7xx: what happened when TensorFlow was really imported (`tfcompat check --probe`).

These rules judge ``env.probe``, recorded by probes/importprobe.py in a sandboxed child process.
Without --probe they stay silent: the probe is opt-in and the static verdict never needs it. Where a
static rule explains a failure (NumPy 2 under a NumPy-1 build, a companion built for another TF),
the message says so, by checking the same facts that rule checks (probe_ties.py). TFC705 (what was
loaded against what the static model predicted) is in probe_libraries.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Union

from tfcompat.engine.registry import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, Severity
from tfcompat.rules._common import tf_label
from tfcompat.rules._probe import (  # noqa: F401  (SIGNALS, ...: their old import path)
    NUMPY_PATTERNS,
    SIGNALS,
    cut,
    fatal_lines,
    first_frames,
    gpu_node,
    innermost_frame,
    line_class,
    line_evidence,
    line_why,
    module_of,
    outcome_evidence,
    probe_source,
    recorded_probe,
    step_named,
)
from tfcompat.rules.probe_ties import tie

Result = Iterator[Union[Hit, NotApplicable]]

effective_class = line_class  # the old name


@rule("TFC701", "import-crashed", Severity.ERROR)
def import_crashed(env: Environment, matrix: Matrix) -> Result:
    """`import tensorflow` (or a companion package, or a GPU op) killed the process.

    What: with `--probe`, tfcompat runs the target interpreter in a child process that imports
    TensorFlow, the installed companion packages with native code (tensorflow-text, -io, -addons,
    -decision-forests, -recommenders-addons), lists the devices and runs one tiny op per GPU. This
    rule fires when that process died: a signal (SIGSEGV, SIGABRT, SIGILL, SIGBUS) or an exit
    before it finished (the loader's "symbol lookup error" exits with 127). The step that was
    running names the import that crashed.

    Why it crashes: a crash at import is native code disagreeing with its neighbours: a companion or
    custom op compiled for another TensorFlow, NumPy 2 under a NumPy-1 build, two copies of a
    library, a CPU without the instructions the build uses (SIGILL).

    How to fix: the message ties the crash to the static finding that explains it where there is
    one (TFC104, TFC105, ...); otherwise reinstall the package of the failing step for the installed
    TensorFlow release. faulthandler's stack is in the JSON report (`environment.probe.traceback`).
    """
    probe = yield from recorded_probe(env)
    if probe is None:
        return
    if probe.outcome == "not-started":
        # asked for and not run: say so (as an info), never a silent pass
        yield Hit(
            message=f"the import probe could not start: {probe.error or 'unknown reason'}",
            evidence=tuple(outcome_evidence(probe)),
            remediation="Check that the target interpreter runs (--python PATH), then re-run with --probe.",
            severity=Severity.WARNING,
        )
        return
    if probe.outcome not in ("crash", "exit"):
        return
    step = probe.failing_step
    module = module_of(step)
    what = (
        f"`{step}`" if step and step.startswith("import ") else (f"the step '{step}'" if step else "the child process")
    )
    if probe.signal:
        meaning = SIGNALS.get(probe.signal, "")
        message = f"{what} killed the process with {probe.signal}" + (f" ({meaning.split(':')[0]})" if meaning else "")
    else:
        message = f"{what} ended the process with exit code {probe.exit_code} before the probe finished"
    lines = fatal_lines(env, probe)
    ev = outcome_evidence(probe)
    frames = first_frames(probe.traceback)
    if frames:
        ev.append(Evidence("faulthandler", cut(frames, 300), probe_source(probe)))
    suffix, fix = tie(env, matrix, probe, module, lines, ev)
    if suffix is None and probe.signal in SIGNALS:
        suffix = f": {SIGNALS[probe.signal]}"
    message += suffix or ""
    if fix is None:
        dist = matrix.facts.companion_distribution(module)
        fix = (
            f'Reinstall {dist} for the installed TensorFlow release (pip install "{dist}==<TF major.minor>.*"), '
            "or uninstall it"
            if dist
            else "Read faulthandler's stack (JSON: environment.probe.traceback) for the native module that "
            "crashed; reinstall TensorFlow and its companions from one consistent set of wheels"
        )
    ev += line_evidence(probe, lines)
    yield Hit(message=message, evidence=tuple(ev), remediation=fix)


@rule("TFC702", "import-failed", Severity.ERROR)
def import_failed(env: Environment, matrix: Matrix) -> Result:
    """`import tensorflow` (or an installed companion package) raised an exception.

    What: the probe's child process (see TFC701) imported TensorFlow and the companion packages with
    native code; one of the imports raised (ImportError, AttributeError, TypeError, ...). The message
    names the import, the exception, and the static finding that explains it where there is one
    (NumPy 2 under a NumPy-1 build is TFC105; a companion built for another TF is TFC104).

    Why it crashes: the job fails at its first line; worse, some failures only warn and leave a
    half-initialised TensorFlow that crashes later.

    How to fix: follow the tie in the message; otherwise the exception and its traceback
    (JSON: `environment.probe.traceback`) name the module to repair.
    """
    probe = yield from recorded_probe(env)
    if probe is None:
        return
    if probe.outcome != "error":
        return
    step = step_named(probe, probe.failing_step)
    if step is None or not step.name.startswith("import "):
        return  # a device or GPU-op step: TFC704
    module = module_of(step.name)
    message = f"`{step.name}` failed: {cut(probe.error or step.error or 'an exception', 300)}"
    lines = fatal_lines(env, probe)
    ev = outcome_evidence(probe)
    suffix, fix = tie(env, matrix, probe, module, lines, ev)
    message += suffix or ""
    if fix is None:
        fix = (
            "Read the traceback (JSON: environment.probe.traceback): it names the module that failed; "
            "reinstall it for this TensorFlow and Python"
        )
    ev += line_evidence(probe, lines)
    yield Hit(message=message, evidence=tuple(ev), remediation=fix)


@rule("TFC703", "import-timed-out", Severity.ERROR)
def import_timed_out(env: Environment, matrix: Matrix) -> Result:
    """`import tensorflow` (or a GPU op) did not finish within the probe's time limit.

    What: the probe's child process (see TFC701) was still running at `--probe-timeout` (120 s by
    default); tfcompat asked faulthandler for its Python stack, then killed its whole process group.

    Why it crashes: a job that hangs at start-up holds its GPUs and its allocation until the
    scheduler kills it. Usual causes: a GPU in a bad state (Xid errors in `dmesg`, a hung
    `nvidia-smi`), kernels JIT-compiled from PTX for a GPU the build has no SASS for (TFC205), a
    stale network filesystem, a lock held by another process.

    How to fix: read the stack in the message (JSON: `environment.probe.traceback`); check the GPUs
    (`nvidia-smi`, `dmesg | grep -i xid`); raise `--probe-timeout` if the node is only slow.
    """
    probe = yield from recorded_probe(env)
    if probe is None:
        return
    if probe.outcome != "timeout":
        return
    where = f"`{probe.failing_step}`" if probe.failing_step else "the child process"
    message = f"{where} did not finish within {probe.timeout_s} s; the child's process group was killed"
    if probe.error and "did not die" in probe.error:
        message += f" ({probe.error.split(', but ', 1)[-1]})"
    ev = outcome_evidence(probe)
    frames = innermost_frame(probe.traceback)
    if frames:
        message += f"; it was in {frames}"
        ev.append(Evidence("faulthandler", cut(probe.traceback or "", 300), probe_source(probe)))
    ev += line_evidence(probe, fatal_lines(env, probe))
    yield Hit(
        message=message,
        evidence=tuple(ev),
        remediation="Check the GPUs (nvidia-smi, `dmesg | grep -i xid`) and the filesystems on the import "
        "path; if the node is only slow, raise --probe-timeout.",
    )


@rule("TFC704", "gpu-unusable", Severity.ERROR)
def gpu_unusable(env: Environment, matrix: Matrix) -> Result:
    """The node has NVIDIA GPUs, but TensorFlow, imported for real, cannot use them.

    What: with `--probe`, on a node with GPUs (NVML or the loaded kernel module) and a CUDA build of
    TensorFlow: `tf.config.list_physical_devices()` lists no GPU, or the tiny op the probe runs on a
    GPU (a matmul through cuBLAS and a conv2d through cuDNN) fails.

    Why it crashes: TensorFlow falls back to the CPU silently: the job runs 10-100x slower or runs
    out of memory, or fails at its first convolution ("DNN library is not found").

    How to fix: the classified log lines in the evidence say which library or driver call failed
    (cuInit, a missing libcudnn, a cuDNN older than the build); the 3xx findings (static) name the
    file the loader picks.
    """
    probe = yield from recorded_probe(env)
    if probe is None:
        return
    tf = env.tensorflow
    if not gpu_node(env):
        yield NotApplicable("no NVIDIA GPU on this node")
        return
    if tf is not None and tf.is_cuda_build is False:
        yield NotApplicable(f"{tf_label(tf)} is a CPU-only build")
        return
    listed = step_named(probe, "list physical devices")
    if listed is None or listed.status != "ok":
        if probe.outcome in ("ok", "error") and listed is not None:
            yield Hit(
                message=f"TensorFlow could not list its devices: {listed.error or listed.status}",
                evidence=tuple(outcome_evidence(probe)) + line_evidence(probe, fatal_lines(env, probe)),
                remediation="See the error; the 3xx findings name the libraries the loader picks.",
            )
        return
    lines = fatal_lines(env, probe)
    tf_gpus = [d for d in probe.devices if d.device_type == "GPU"]
    node = (
        f"{len(env.host.gpus)} GPU{'s' if len(env.host.gpus) != 1 else ''}"
        if env.host.gpus
        else "an NVIDIA driver loaded"
    )
    if not tf_gpus:
        yield Hit(
            message=f"TensorFlow lists no GPU although this node has {node}: it will run on the CPU only"
            + (f" ({line_why(lines[0])})" if lines else ""),
            evidence=tuple(outcome_evidence(probe))
            + (Evidence("probe.devices", ", ".join(d.name for d in probe.devices) or "none", probe_source(probe)),)
            + line_evidence(probe, lines),
            remediation="Make the driver and the CUDA libraries visible to the job (the lines in the evidence "
            'name the one missing); `pip install "tensorflow[and-cuda]"` brings the CUDA libraries; '
            "check CUDA_VISIBLE_DEVICES and the container runtime's GPU options.",
        )
        return
    for s in probe.steps:
        if s.name.startswith("op on ") and s.status in ("error", "died", "hung"):
            yield Hit(
                message=f"the tiny {s.name} (matmul, conv2d) failed: {cut(s.error or s.status, 300)}",
                evidence=tuple(outcome_evidence(probe)) + line_evidence(probe, lines),
                remediation="The lines in the evidence name the failing library (cuBLAS, cuDNN); compare it "
                "with the build's CUDA/cuDNN (the 3xx findings).",
            )


@rule("TFC706", "fatal-log-line", Severity.ERROR)
def fatal_log_line(env: Environment, matrix: Matrix) -> Result:
    """TensorFlow imported, but printed a line that means a failure ahead.

    What: the probe's child (see TFC701) imported TensorFlow without an exception, but its output
    holds lines that data/tf_log_patterns.toml classifies as fatal: "Loaded runtime CuDNN library:
    X but source was compiled with: Y", "kernel version ... does not match DSO version", on a GPU
    node "Could not find cuda drivers" or "Cannot dlopen some GPU libraries", ... When the import
    itself failed, TFC701/TFC702 list these lines instead.

    Why it crashes: these failures surface later: at the first convolution, at the first op placed
    on a GPU, or as a job that silently runs on the CPU.

    How to fix: each line's explanation is in the message; `tfcompat explain` of the 3xx rules
    (libraries) and 2xx rules (driver) covers most causes.
    """
    probe = yield from recorded_probe(env)
    if probe is None:
        return
    if probe.outcome != "ok":
        return
    for ln in fatal_lines(env, probe):
        times = f" ({ln.count} times)" if ln.count > 1 else ""
        yield Hit(
            message=f"TensorFlow printed a fatal line [{ln.pattern}]{times}: {line_why(ln)}",
            evidence=line_evidence(probe, [ln]),
            remediation="Fix the cause the line names; rerun `tfcompat check --probe` to confirm it is gone.",
        )
