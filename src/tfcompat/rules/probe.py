"""7xx: what happened when TensorFlow was really imported (`tfcompat check --probe`).

These rules judge ``env.probe``, recorded by probes/importprobe.py in a sandboxed child process.
Without --probe they stay silent: the probe is opt-in and the static verdict never needs it. Where a
static rule explains a failure (NumPy 2 under a NumPy-1 build, a companion built for another TF),
the message says so, by checking the same facts that rule checks.
"""

from __future__ import annotations

import os
from typing import Iterator, List, Optional, Sequence, Tuple, Union

from packaging.utils import canonicalize_name

from tfcompat.engine import Hit, NotApplicable, rule
from tfcompat.matrix import Matrix
from tfcompat.model import Environment, Evidence, LogLine, ProbeResult, ProbeStep, Severity
from tfcompat.probes.logpatterns import pattern as log_pattern
from tfcompat.rules._common import requirements, tf_label, version_of
from tfcompat.rules.tensorflow import _numpy_abi_conflict

Result = Iterator[Union[Hit, NotApplicable]]

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

# Python module the probe imports -> the distribution that installs it.
COMPANION_DISTRIBUTIONS = {
    "tensorflow_text": "tensorflow-text",
    "tensorflow_io": "tensorflow-io",
    "tensorflow_addons": "tensorflow-addons",
    "tensorflow_decision_forests": "tensorflow-decision-forests",
    "tensorflow_recommenders_addons": "tensorflow-recommenders-addons",
}
NUMPY_PATTERNS = ("numpy2-abi-banner", "numpy-array-api-missing", "numpy-core-import-failed")
_TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly", "tf-nightly-cpu",
                     "tf-nightly-gpu", "tensorflow-intel", "tensorflow-rocm", "intel-tensorflow")


# -- helpers -------------------------------------------------------------------------------------------


def _probe(env: Environment) -> Tuple[Optional[ProbeResult], Optional[NotApplicable]]:
    """The probe's result; or, when --probe was asked for but could not run, why (a skip)."""
    if env.probe is not None:
        return env.probe, None
    reason = env.unknown("probe")
    return None, (NotApplicable(f"probe unknown: {reason}") if reason else None)


def _source(probe: ProbeResult) -> str:
    return f"--probe: {probe.python} in a child process"


def _has_gpus(env: Environment) -> bool:
    d = env.host.driver
    return bool(env.host.gpus) or bool(d is not None and d.kernel_module_version)


def effective_class(line: LogLine, gpu_node: bool) -> str:
    """A line's class on this node: some lines are harmless on a CPU node and fatal on a GPU node."""
    p = log_pattern(line.pattern)
    return p.class_on(gpu_node) if p is not None else line.classification


def _why(line: LogLine) -> str:
    """The explanation of the table this tfcompat ships (a snapshot may have been taken with an older one)."""
    p = log_pattern(line.pattern)
    return p.why if p is not None else line.explanation


def fatal_lines(env: Environment, probe: ProbeResult) -> List[LogLine]:
    gpu = _has_gpus(env)
    return [ln for ln in probe.log_lines if effective_class(ln, gpu) == "fatal"]


def _line_evidence(probe: ProbeResult, lines: Sequence[LogLine], limit: int = 6) -> Tuple[Evidence, ...]:
    out = []
    for ln in lines[:limit]:
        times = f" (x{ln.count})" if ln.count > 1 else ""
        out.append(Evidence(f"log line [{ln.pattern}]", _cut(ln.text) + times, _source(probe)))
    return tuple(out)


def _cut(text: str, n: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _step(probe: ProbeResult, name: Optional[str]) -> Optional[ProbeStep]:
    return next((s for s in probe.steps if s.name == name), None) if name else None


def _module_of(step_name: Optional[str]) -> Optional[str]:
    if step_name and step_name.startswith("import "):
        return step_name[len("import "):]
    return None


def _numpy_tie(env: Environment, matrix: Matrix, probe: ProbeResult) -> Optional[Tuple[str, str, Evidence]]:
    """(explanation, remediation, evidence) when NumPy's ABI explains the failure, as TFC105 judges it."""
    numpy_said = any(ln.pattern in NUMPY_PATTERNS for ln in probe.log_lines) or any(
        s in (probe.error or "") + (probe.traceback or "")
        for s in ("_ARRAY_API not found", "numpy.core.multiarray failed to import", "numpy.core.umath failed to import",
                  "numpy.core._multiarray_umath failed to import", "compiled using NumPy 1.x"))
    if not numpy_said:
        return None
    numpy = env.package("numpy")
    if numpy is None:
        return None
    ev = Evidence(f"package {numpy.name}", numpy.version, numpy.metadata_path)
    tf = env.tensorflow
    if tf is not None and _numpy_abi_conflict(env, matrix) is not None:
        return (f"explained by TFC105 numpy2-with-numpy1-build: NumPy {numpy.version} is installed and "
                f"{tf_label(tf)} was built against NumPy 1",
                'pip install "numpy<2"  (or upgrade to TensorFlow >= 2.18, built for NumPy 2)', ev)
    v = version_of(numpy.version)
    if v is not None and v.major >= 2:
        return (f"NumPy {numpy.version} is installed and a native module on the import path was built "
                "against NumPy 1 (NumPy's own banner says so)",
                'pip install "numpy<2", or upgrade the package named in the traceback to a NumPy-2 build', ev)
    return None


def _companion_tie(env: Environment, module: Optional[str]) -> Optional[Tuple[str, str, Evidence]]:
    """(explanation, remediation, evidence) when the failing companion declares another TF, as TFC104 judges."""
    dist = COMPANION_DISTRIBUTIONS.get(module or "")
    tf = env.tensorflow
    if dist is None or tf is None:
        return None
    pkg = env.package(dist)
    tf_v = version_of(tf.version)
    if pkg is None or tf_v is None:
        return None
    for req in requirements(env, pkg):
        if canonicalize_name(req.name) in _TF_DISTRIBUTIONS and not req.specifier.contains(tf_v, prereleases=True):
            return (f"explained by TFC104 companion-package-mismatch: {pkg.display_name or pkg.name} "
                    f"{pkg.version} requires {req}, but {tf_label(tf)} is installed",
                    f'pip install "{pkg.name}=={tf_v.major}.{tf_v.minor}.*"  (the release built for TensorFlow '
                    f"{tf_v.major}.{tf_v.minor}), or the TensorFlow it pins",
                    Evidence(f"{pkg.name} Requires-Dist", str(req), pkg.metadata_path))
    pv = version_of(pkg.version)
    if dist == "tensorflow-text" and pv is not None and (pv.major, pv.minor) != (tf_v.major, tf_v.minor):
        return (f"{pkg.name} {pkg.version} follows TensorFlow's numbering and is not the release for "
                f"{tf_label(tf)}",
                f'pip install "tensorflow-text=={tf_v.major}.{tf_v.minor}.*"',
                Evidence(f"package {pkg.name}", pkg.version, pkg.metadata_path))
    return None


def _line_tie(env: Environment, lines: Sequence[LogLine]) -> Optional[Tuple[str, str]]:
    """A tie from the kind of fatal line, where no package fact pins it down."""
    ids = {ln.pattern for ln in lines}
    if "protobuf-descriptors" in ids:
        pb = env.package("protobuf")
        have = f"protobuf {pb.version} is installed; " if pb else ""
        return (f"{have}TensorFlow's generated _pb2 modules need the protobuf range it declares (TFC103 "
                "tensorflow-requirement-unmet checks it)", "pip install the protobuf range TensorFlow declares")
    if "symbol-version-not-found" in ids:
        return ("a native library needs a newer glibc/libstdc++ than the loader found (TFC306 "
                "symbol-version-not-found checks TF's own objects)",
                "Put a libstdc++ at least as new as the one TF was built with first on the loader's path "
                "(e.g. remove an old conda libstdc++ from LD_LIBRARY_PATH), or use a newer OS image")
    if "undefined-symbol" in ids or "symbol-lookup-error" in ids:
        return ("a native module was built against another release of a library it links to",
                "Reinstall the package named in the error for the installed TensorFlow release")
    if "cpu-instructions-missing" in ids:
        return ("the CPU lacks instructions the build needs (TFC307 cpu-instructions-missing checks it)",
                "Run on a CPU with the instructions, or use a build without them")
    return None


def _probe_evidence(probe: ProbeResult) -> List[Evidence]:
    step = _step(probe, probe.failing_step)
    how = {"crash": probe.signal, "exit": f"exit code {probe.exit_code}", "timeout": f"after {probe.timeout_s} s",
           "error": (step.error or "").split(":", 1)[0] if step and step.error else "a Python exception"
           }.get(probe.outcome)
    ev = [Evidence("probe.outcome", f"{probe.outcome} ({how})" if how else probe.outcome, _source(probe))]
    if probe.failing_step:
        ev.append(Evidence("probe.failing_step", probe.failing_step, _source(probe)))
    return ev


def _first_frames(text: Optional[str], n: int = 3) -> Optional[str]:
    """The first lines of faulthandler's report: the fatal error and the innermost frames."""
    if not text:
        return None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines[:n]) if lines else None


# -- rules -----------------------------------------------------------------------------------------------


def _tie(env: Environment, matrix: Matrix, probe: ProbeResult, module: Optional[str], lines,
         ev: List[Evidence]) -> Tuple[Optional[str], Optional[str]]:
    """(message suffix, fix) from the static finding or the fatal log line that explains a failed import;
    appends the tie's evidence to `ev`. (None, None) when nothing explains it."""
    tie = _numpy_tie(env, matrix, probe) or _companion_tie(env, module)
    if tie is not None:
        explanation, fix, tie_ev = tie
        ev.append(tie_ev)
        return f"; {explanation}", fix
    line_tie = _line_tie(env, lines)
    if line_tie is not None:
        return f"; {line_tie[0]}", line_tie[1]
    return None, None


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
    probe, skip = _probe(env)
    if probe is None:
        if skip:
            yield skip
        return
    if probe.outcome == "not-started":
        # asked for and not run: say so (as an info), never a silent pass
        yield Hit(message=f"the import probe could not start: {probe.error or 'unknown reason'}",
                  evidence=tuple(_probe_evidence(probe)),
                  remediation="Check that the target interpreter runs (--python PATH), then re-run with --probe.",
                  severity=Severity.WARNING)
        return
    if probe.outcome not in ("crash", "exit"):
        return
    step = probe.failing_step
    module = _module_of(step)
    what = f"`{step}`" if step and step.startswith("import ") else (f"the step '{step}'" if step else
                                                                     "the child process")
    if probe.signal:
        meaning = SIGNALS.get(probe.signal, "")
        message = f"{what} killed the process with {probe.signal}" + (f" ({meaning.split(':')[0]})" if meaning else "")
    else:
        message = f"{what} ended the process with exit code {probe.exit_code} before the probe finished"
    lines = fatal_lines(env, probe)
    ev = _probe_evidence(probe)
    frames = _first_frames(probe.traceback)
    if frames:
        ev.append(Evidence("faulthandler", _cut(frames, 300), _source(probe)))
    suffix, fix = _tie(env, matrix, probe, module, lines, ev)
    if suffix is None and probe.signal in SIGNALS:
        suffix = f": {SIGNALS[probe.signal]}"
    message += suffix or ""
    if fix is None:
        dist = COMPANION_DISTRIBUTIONS.get(module or "")
        fix = (f"Reinstall {dist} for the installed TensorFlow release (pip install \"{dist}==<TF major.minor>.*\"), "
               "or uninstall it" if dist else
               "Read faulthandler's stack (JSON: environment.probe.traceback) for the native module that "
               "crashed; reinstall TensorFlow and its companions from one consistent set of wheels")
    ev += _line_evidence(probe, lines)
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
    probe, skip = _probe(env)
    if probe is None:
        if skip:
            yield skip
        return
    if probe.outcome != "error":
        return
    step = _step(probe, probe.failing_step)
    if step is None or not step.name.startswith("import "):
        return  # a device or GPU-op step: TFC704
    module = _module_of(step.name)
    message = f"`{step.name}` failed: {_cut(probe.error or step.error or 'an exception', 300)}"
    lines = fatal_lines(env, probe)
    ev = _probe_evidence(probe)
    suffix, fix = _tie(env, matrix, probe, module, lines, ev)
    message += suffix or ""
    if fix is None:
        fix = ("Read the traceback (JSON: environment.probe.traceback): it names the module that failed; "
               "reinstall it for this TensorFlow and Python")
    ev += _line_evidence(probe, lines)
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
    probe, skip = _probe(env)
    if probe is None:
        if skip:
            yield skip
        return
    if probe.outcome != "timeout":
        return
    where = f"`{probe.failing_step}`" if probe.failing_step else "the child process"
    message = f"{where} did not finish within {probe.timeout_s} s; the child's process group was killed"
    if probe.error and "did not die" in probe.error:
        message += f" ({probe.error.split(', but ', 1)[-1]})"
    ev = _probe_evidence(probe)
    frames = _innermost(probe.traceback)
    if frames:
        message += f"; it was in {frames}"
        ev.append(Evidence("faulthandler", _cut(probe.traceback or "", 300), _source(probe)))
    ev += _line_evidence(probe, fatal_lines(env, probe))
    yield Hit(message=message, evidence=tuple(ev),
              remediation="Check the GPUs (nvidia-smi, `dmesg | grep -i xid`) and the filesystems on the import "
                          "path; if the node is only slow, raise --probe-timeout.")


def _innermost(traceback: Optional[str]) -> Optional[str]:
    """'File ".../x.py", line 3 in <module>' of the first thread in a faulthandler dump."""
    if not traceback:
        return None
    for line in traceback.splitlines():
        s = line.strip()
        if s.startswith("File "):
            return s
    return None


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
    probe, skip = _probe(env)
    if probe is None:
        if skip:
            yield skip
        return
    tf = env.tensorflow
    if not _has_gpus(env):
        yield NotApplicable("no NVIDIA GPU on this node")
        return
    if tf is not None and tf.is_cuda_build is False:
        yield NotApplicable(f"{tf_label(tf)} is a CPU-only build")
        return
    listed = _step(probe, "list physical devices")
    if listed is None or listed.status != "ok":
        if probe.outcome in ("ok", "error") and listed is not None:
            yield Hit(message=f"TensorFlow could not list its devices: {listed.error or listed.status}",
                      evidence=tuple(_probe_evidence(probe)) + _line_evidence(probe, fatal_lines(env, probe)),
                      remediation="See the error; the 3xx findings name the libraries the loader picks.")
        return
    lines = fatal_lines(env, probe)
    tf_gpus = [d for d in probe.devices if d.device_type == "GPU"]
    node = f"{len(env.host.gpus)} GPU{'s' if len(env.host.gpus) != 1 else ''}" if env.host.gpus else \
        "an NVIDIA driver loaded"
    if not tf_gpus:
        yield Hit(
            message=f"TensorFlow lists no GPU although this node has {node}: it will run on the CPU only"
                    + (f" ({_why(lines[0])})" if lines else ""),
            evidence=tuple(_probe_evidence(probe))
            + (Evidence("probe.devices", ", ".join(d.name for d in probe.devices) or "none", _source(probe)),)
            + _line_evidence(probe, lines),
            remediation="Make the driver and the CUDA libraries visible to the job (the lines in the evidence "
                        "name the one missing); `pip install \"tensorflow[and-cuda]\"` brings the CUDA libraries; "
                        "check CUDA_VISIBLE_DEVICES and the container runtime's GPU options.",
        )
        return
    for s in probe.steps:
        if s.name.startswith("op on ") and s.status in ("error", "died", "hung"):
            yield Hit(
                message=f"the tiny {s.name} (matmul, conv2d) failed: {_cut(s.error or s.status, 300)}",
                evidence=tuple(_probe_evidence(probe)) + _line_evidence(probe, lines),
                remediation="The lines in the evidence name the failing library (cuBLAS, cuDNN); compare it "
                            "with the build's CUDA/cuDNN (the 3xx findings).",
            )


def _norm(path: Optional[str]) -> Optional[str]:
    return os.path.normpath(path) if path else None


def _predictions(env: Environment) -> List[Tuple[str, Optional[str], str]]:
    """(soname, predicted real path or None for 'not found', who predicted) from the static model.

    Read defensively: the loader model (issue 4) may be absent from older snapshots.
    """
    out: List[Tuple[str, Optional[str], str]] = []
    native = getattr(env.target, "native", None)
    for lib in tuple(getattr(native, "libraries", ()) or ()):
        soname = getattr(lib, "soname", None)
        if not soname:
            continue
        found = getattr(lib, "found", None)
        path = getattr(found, "real_path", None) or getattr(found, "path", None) if found is not None else \
            getattr(lib, "real_path", None) or getattr(lib, "path", None)
        out.append((soname, _norm(path), "the loader model (static)"))
    d = env.host.driver
    for lib in (d.libraries if d is not None else ()):
        out.append((lib.soname, _norm(lib.path), "the driver library search (static)"))
    return out


def _stem(soname: str) -> str:
    return soname.split(".so", 1)[0] + ".so"


@rule("TFC705", "loaded-libraries-disagree", Severity.WARNING)
def loaded_libraries_disagree(env: Environment, matrix: Matrix) -> Result:
    """What the import really loaded differs from what tfcompat's static model predicted.

    What: with `--probe`, the child reports the TensorFlow it imported (version, path) and every
    shared object mapped in the process (/proc/<pid>/maps). This rule compares them with the static
    scan: the TensorFlow distribution found on the search path, the CUDA/cuDNN libraries the loader
    model resolved, the driver libraries (libcuda.so.1) found on the library path.

    Why it crashes: a disagreement means the environment is not what it looks like (a TensorFlow
    imported from another directory, PYTHONPATH or a .pth file in front of the venv, LD_PRELOAD, a
    library loaded from an unexpected copy), or tfcompat's model is wrong; either way the static
    findings may not hold for this job.

    How to fix: check the paths in the message; remove the stray copy or the variable that brings
    it; report a model error to tfcompat with the JSON report.
    """
    probe, skip = _probe(env)
    if probe is None:
        if skip:
            yield skip
        return
    if probe.outcome == "not-started":
        return
    tf = env.tensorflow
    src = _source(probe)
    if tf is not None and probe.tensorflow_path and tf.package_dir:
        imported_dir = os.path.dirname(_norm(probe.tensorflow_path) or "")
        if _norm(tf.package_dir) != imported_dir:
            yield Hit(
                message=f"the import loaded TensorFlow from {imported_dir}, the static scan found {tf_label(tf)} "
                        f"in {tf.package_dir}: the job does not import the TensorFlow tfcompat judged",
                evidence=(Evidence("probe tensorflow.__file__", probe.tensorflow_path, src),
                          Evidence("tensorflow package", tf.package_dir, tf.metadata_path or tf.location)),
                remediation="Find what puts the other copy first (PYTHONPATH, a .pth file, the working directory) "
                            "and remove it, or point tfcompat at the environment that owns it.",
            )
        elif probe.tensorflow_version and version_of(probe.tensorflow_version) != version_of(tf.version):
            yield Hit(
                message=f"the imported TensorFlow says it is {probe.tensorflow_version}, its metadata says "
                        f"{tf.version}: files of two releases are mixed in {tf.package_dir}",
                evidence=(Evidence("probe tf.__version__", probe.tensorflow_version, src),
                          Evidence("tensorflow", f"{tf.distribution} {tf.version}", tf.metadata_path or tf.location)),
                remediation=f"pip uninstall every TensorFlow distribution, then install {tf.distribution} once.",
            )
    if probe.outcome not in ("ok", "error") or not probe.libraries:
        return  # a crash or a hang leaves a partial list: nothing to compare
    loaded = [(_norm(lib.path) or lib.path, lib.name) for lib in probe.libraries]
    seen = set()
    for soname, predicted, who in _predictions(env):
        if soname in seen:
            continue
        seen.add(soname)
        same = [path for path, name in loaded if name == soname or name.startswith(_stem(soname) + ".")
                or name == _stem(soname)]
        if not same:
            continue  # not loaded: without a GPU, TF only tries libcudart and libcuda (not a disagreement)
        if predicted is not None and predicted in same:
            continue
        if predicted is None:
            msg = f"{soname}: {who} found no copy, but the import loaded {same[0]}"
        else:
            msg = f"{soname}: {who} predicted {predicted}, but the import loaded {same[0]}"
        yield Hit(
            message=msg,
            evidence=(Evidence(f"loaded {soname}", same[0], f"{src} ({probe.libraries_source})"),
                      Evidence(f"predicted {soname}", predicted or "not found", who)),
            remediation="Check LD_LIBRARY_PATH, LD_PRELOAD and the RUNPATH of TensorFlow's libraries: the copy "
                        "the job loads is not the one the static checks judged.",
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
    probe, skip = _probe(env)
    if probe is None:
        if skip:
            yield skip
        return
    if probe.outcome != "ok":
        return
    for ln in fatal_lines(env, probe):
        times = f" ({ln.count} times)" if ln.count > 1 else ""
        yield Hit(
            message=f"TensorFlow printed a fatal line [{ln.pattern}]{times}: {_why(ln)}",
            evidence=_line_evidence(probe, [ln]),
            remediation="Fix the cause the line names; rerun `tfcompat check --probe` to confirm it is gone.",
        )
