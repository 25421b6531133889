"""7xx rules: a probe result in, findings out (no child process here; test_importprobe.py runs real ones)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from envs import SITE, make_env, pkg, run_rule

from tfcompat.model import (
    DriverLibrary,
    Gpu,
    LoadedLibrary,
    LogLine,
    ProbeDevice,
    ProbeResult,
    ProbeStep,
    Severity,
    Unknown,
)
from tfcompat.rules import catalog, evaluate

PY = "/venv/bin/python"
TF_INIT = f"{SITE}/tensorflow/__init__.py"
PROBE_RULES = {"TFC701", "TFC702", "TFC703", "TFC704", "TFC705", "TFC706"}


def line(pid: str, cls: str, text: str, count: int = 1) -> LogLine:
    return LogLine(pid, cls, text, count, f"explanation of {pid}")


def result(
    outcome="ok",
    steps=None,
    signal=None,
    exit_code=0,
    failing=None,
    error=None,
    traceback=None,
    devices=(("/physical_device:CPU:0", "CPU"),),
    libraries=(),
    log_lines=(),
    tf_path=TF_INIT,
    tf_version="2.21.0",
) -> ProbeResult:
    if steps is None:
        steps = [("import tensorflow", "ok"), ("list physical devices", "ok")]
    return ProbeResult(
        python=PY,
        outcome=outcome,
        exit_code=exit_code,
        signal=signal,
        failing_step=failing,
        error=error,
        traceback=traceback,
        steps=tuple(ProbeStep(n, s, None, error if n == failing and s == "error" else None, 5) for n, s in steps),
        tensorflow_version=tf_version,
        tensorflow_path=tf_path,
        devices=tuple(ProbeDevice(n, t) for n, t in devices),
        libraries=tuple(LoadedLibrary(p, p.rsplit("/", 1)[-1]) for p in libraries),
        libraries_source="/proc/self/maps read by the child just before it finished",
        log_lines=tuple(log_lines),
        output_tail="",
        output_bytes=0,
        timeout_s=120,
        duration_ms=2000,
    )


def with_probe(env, probe):
    return dataclasses.replace(env, probe=probe)


def probe_findings(env, matrix):
    report = evaluate(env, matrix, select=["TFC7"])
    return report.findings, report.skipped


def test_every_probe_rule_is_documented():
    rules = {r.id: r for r in catalog()}
    assert set(rules) >= PROBE_RULES
    for rid in PROBE_RULES:
        for section in ("What:", "Why it crashes:", "How to fix:"):
            assert section in rules[rid].doc, (rid, section)


def test_without_probe_the_rules_are_silent(matrix):
    findings, skipped = probe_findings(make_env("2.21.0"), matrix)
    assert findings == () and skipped == ()


def test_probe_asked_for_but_not_run_is_a_skip_with_the_reason(matrix):
    env = make_env("2.21.0", unknowns=[Unknown("probe", "not run: --root /img is an image")])
    findings, skipped = probe_findings(env, matrix)
    assert findings == ()
    assert {s.rule for s in skipped} == PROBE_RULES
    assert {s.reason for s in skipped} == {"probe unknown: not run: --root /img is an image"}


def test_clean_probe_has_no_findings(matrix):
    env = with_probe(
        make_env("2.21.0"),
        result(
            log_lines=[
                line(
                    "no-cuda-drivers",
                    "informative",
                    "Could not find cuda drivers on your machine, GPU will not be used.",
                ),
                line("onednn-on", "benign", "oneDNN custom operations are on."),
            ]
        ),
    )
    findings, skipped = probe_findings(env, matrix)
    assert findings == ()
    assert [(s.rule, s.reason) for s in skipped] == [("TFC704", "no NVIDIA GPU on this node")]


def test_segfaulting_companion_is_tied_to_the_companion_mismatch(matrix):
    text = pkg("tensorflow-text", "2.15.0", ['tensorflow<2.16,>=2.15.0; platform_machine != "arm64"'])
    env = with_probe(
        make_env("2.21.0", extra=[text]),
        result(
            outcome="crash",
            signal="SIGSEGV",
            exit_code=None,
            failing="import tensorflow_text",
            steps=[("import tensorflow", "ok"), ("import tensorflow_text", "died")],
            error="killed by SIGSEGV in import tensorflow_text",
            traceback="Fatal Python error: Segmentation fault\n\nCurrent thread 0x00007f (most recent call first):\n"
            f'  File "{SITE}/tensorflow_text/__init__.py", line 2 in <module>\n',
        ),
    )
    (f,), _ = run_rule(env, matrix, "TFC701")
    assert f.severity is Severity.ERROR
    assert f.message.startswith(
        "`import tensorflow_text` killed the process with SIGSEGV (segmentation fault); "
        "explained by TFC104 companion-package-mismatch: tensorflow-text 2.15.0 requires "
    )
    assert "tensorflow 2.21.0 is installed" in f.message
    assert 'pip install "tensorflow-text==2.21.*"' in f.remediation
    ev = {e.fact: e.value for e in f.evidence}
    assert ev["probe.outcome"] == "crash (SIGSEGV)" and ev["probe.failing_step"] == "import tensorflow_text"
    assert ev["faulthandler"].startswith("Fatal Python error: Segmentation fault | Current thread")
    # the static rule says the same, from the metadata alone
    (static,), _ = run_rule(env, matrix, "TFC104")
    assert "tensorflow-text 2.15.0" in static.message


def test_crash_without_a_static_explanation_explains_the_signal(matrix):
    env = with_probe(
        make_env("2.21.0"),
        result(
            outcome="crash",
            signal="SIGILL",
            exit_code=None,
            failing="import tensorflow",
            steps=[("import tensorflow", "died")],
            error="killed by SIGILL in import tensorflow",
        ),
    )
    (f,), _ = run_rule(env, matrix, "TFC701")
    assert f.message == (
        "`import tensorflow` killed the process with SIGILL (illegal instruction): illegal "
        "instruction: the build uses CPU instructions (AVX, AVX2, AVX-512...) this CPU lacks"
    )
    assert "faulthandler" in f.remediation


def test_exit_code_before_done_is_a_crash_finding_with_the_fatal_line(matrix):
    env = with_probe(
        make_env("2.21.0"),
        result(
            outcome="exit",
            exit_code=127,
            failing="import tensorflow_io",
            steps=[("import tensorflow", "ok"), ("import tensorflow_io", "died")],
            log_lines=[
                line(
                    "symbol-lookup-error",
                    "fatal",
                    "python: symbol lookup error: /x/libtensorflow_io.so: undefined symbol: _ZN3tsl6StatusC1Ev",
                )
            ],
        ),
    )
    (f,), _ = run_rule(env, matrix, "TFC701")
    assert f.message.startswith("`import tensorflow_io` ended the process with exit code 127")
    assert "built against another release" in f.message
    assert any(e.fact == "log line [symbol-lookup-error]" for e in f.evidence)


NUMPY_LINES = [
    line("numpy2-abi-banner", "fatal", "A module that was compiled using NumPy 1.x cannot be run in", 3),
    line("numpy-array-api-missing", "fatal", "AttributeError: _ARRAY_API not found", 3),
    line("duplicate-factory", "benign", "Unable to register cuDNN factory: ...", 3),
]


def tf215_failure():
    return result(
        outcome="error",
        failing="import tensorflow",
        steps=[("import tensorflow", "error")],
        error="ImportError: numpy.core.umath failed to import",
        tf_path=None,
        tf_version=None,
        devices=(),
        log_lines=NUMPY_LINES,
        traceback="Traceback ...\nImportError: numpy.core.umath failed",
    )


def test_numpy2_import_failure_is_tied_to_tfc105(matrix):
    env = with_probe(make_env("2.15.1", packages={"numpy": "2.1.3"}), tf215_failure())
    findings, _ = probe_findings(env, matrix)
    assert [f.rule for f in findings] == ["TFC702"]  # TFC706 leaves a failed import to TFC702
    (f,) = findings
    assert f.message == (
        "`import tensorflow` failed: ImportError: numpy.core.umath failed to import; explained by "
        "TFC105 numpy2-with-numpy1-build: NumPy 2.1.3 is installed and tensorflow 2.15.1 was built "
        "against NumPy 1"
    )
    assert f.remediation.startswith('pip install "numpy<2"')
    facts = [e.fact for e in f.evidence]
    assert facts == [
        "probe.outcome",
        "probe.failing_step",
        "package numpy",
        "log line [numpy2-abi-banner]",
        "log line [numpy-array-api-missing]",
    ]  # benign lines are not evidence
    assert f.evidence[0].value == "error (ImportError)"
    (static,), _ = run_rule(env, matrix, "TFC105")  # and the static rule fires on the same facts
    assert "NumPy 2.1.3" in static.message


def test_import_failure_without_numpy2_is_not_blamed_on_numpy(matrix):
    env = with_probe(make_env("2.15.1"), tf215_failure())  # numpy 1.26.4
    (f,), _ = run_rule(env, matrix, "TFC702")
    assert "TFC105" not in f.message and "NumPy" not in f.message
    assert f.remediation.startswith("Read the traceback")


def test_protobuf_failure_points_at_the_requirement(matrix):
    env = with_probe(
        make_env("2.21.0"),
        result(
            outcome="error",
            failing="import tensorflow",
            steps=[("import tensorflow", "error")],
            error="TypeError: Descriptors cannot be created directly.",
            log_lines=[line("protobuf-descriptors", "fatal", "TypeError: Descriptors cannot be created directly.")],
        ),
    )
    (f,), _ = run_rule(env, matrix, "TFC702")
    assert "protobuf 6.31.1 is installed" in f.message and "TFC103" in f.message


def test_timeout_names_the_step_and_where_it_hung(matrix):
    env = with_probe(
        make_env("2.21.0"),
        result(
            outcome="timeout",
            exit_code=None,
            signal=None,
            failing="import tensorflow",
            steps=[("import tensorflow", "hung")],
            error="no answer within 120 s; the process group was killed",
            traceback='Thread 0x00007f (most recent call first):\n  File "/venv/x/cuda_init.py", line 7 in _wait\n'
            f'  File "{TF_INIT}", line 3 in <module>\n',
        ),
    )
    (f,), _ = run_rule(env, matrix, "TFC703")
    assert f.message == (
        "`import tensorflow` did not finish within 120 s; the child's process group was killed; "
        'it was in File "/venv/x/cuda_init.py", line 7 in _wait'
    )
    assert "--probe-timeout" in f.remediation


H100 = Gpu(0, "NVIDIA H100 80GB HBM3", "GPU-1", "00000000:19:00.0", "9.0", 81559)


def test_gpu_node_where_tf_lists_no_gpu(matrix):
    lines = [
        line("no-cuda-drivers", "informative", "Could not find cuda drivers on your machine, GPU will not be used.")
    ]
    env = with_probe(make_env("2.21.0", driver="550.54.15", gpus=[H100]), result(log_lines=lines))
    (f,), _ = run_rule(env, matrix, "TFC704")
    assert f.message.startswith("TensorFlow lists no GPU although this node has 1 GPU: it will run on the CPU only")
    assert any(e.fact == "log line [no-cuda-drivers]" for e in f.evidence)  # fatal on a GPU node
    # the same line is a fatal line on a GPU node for TFC706 too, harmless on a CPU node
    (g,), _ = run_rule(env, matrix, "TFC706")
    assert "[no-cuda-drivers]" in g.message
    assert run_rule(with_probe(make_env("2.21.0"), result(log_lines=lines)), matrix, "TFC706")[0] == []
    # the text report shows the class the rules judged by: FATAL on the GPU node, informative without GPUs
    from tfcompat.render.probe_text import probe_section

    assert any("FATAL" in s and "no-cuda-drivers" in s for s in probe_section(env))
    assert any(
        "informative  no-cuda-drivers" in s
        for s in probe_section(with_probe(make_env("2.21.0"), result(log_lines=lines)))
    )


def test_gpu_op_failure(matrix):
    env = with_probe(
        make_env("2.21.0", driver="550.54.15", gpus=[H100]),
        result(
            outcome="error",
            failing="op on /GPU:0",
            steps=[("import tensorflow", "ok"), ("list physical devices", "ok"), ("op on /GPU:0", "error")],
            error="RuntimeError: DNN library is not found.",
            devices=(("/physical_device:CPU:0", "CPU"), ("/physical_device:GPU:0", "GPU")),
        ),
    )
    (f,), _ = run_rule(env, matrix, "TFC704")
    assert f.message == "the tiny op on /GPU:0 (matmul, conv2d) failed: RuntimeError: DNN library is not found."
    assert run_rule(env, matrix, "TFC702")[0] == []  # not an import failure


def test_gpus_listed_and_ops_ok_is_clean(matrix):
    env = with_probe(
        make_env("2.21.0", driver="550.54.15", gpus=[H100]),
        result(
            steps=[("import tensorflow", "ok"), ("list physical devices", "ok"), ("op on /GPU:0", "ok")],
            devices=(("/physical_device:CPU:0", "CPU"), ("/physical_device:GPU:0", "GPU")),
        ),
    )
    assert run_rule(env, matrix, "TFC704") == ([], [])


def test_tensorflow_imported_from_elsewhere(matrix):
    env = with_probe(
        make_env("2.21.0"), result(tf_path="/home/u/.local/lib/python3.11/site-packages/tensorflow/__init__.py")
    )
    (f,), _ = run_rule(env, matrix, "TFC705")
    assert f.severity is Severity.WARNING
    assert f.message.startswith(
        "the import loaded TensorFlow from /home/u/.local/lib/python3.11/site-packages/"
        "tensorflow, the static scan found tensorflow 2.21.0 in " + SITE + "/tensorflow"
    )


def test_tensorflow_version_differs_from_metadata(matrix):
    env = with_probe(make_env("2.21.0"), result(tf_version="2.20.0"))
    (f,), _ = run_rule(env, matrix, "TFC705")
    assert "says it is 2.20.0, its metadata says 2.21.0" in f.message


def _driver_env(path):
    env = make_env("2.21.0", driver="550.54.15")
    d = env.host.driver
    lib = DriverLibrary("libcuda.so.1", path, "550.54.15")
    return dataclasses.replace(env, host=dataclasses.replace(env.host, driver=dataclasses.replace(d, libraries=(lib,))))


def test_loaded_library_differs_from_the_static_prediction(matrix):
    env = with_probe(
        _driver_env("/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15"),
        result(libraries=["/usr/local/cuda/compat/libcuda.so.560.28.03", "/usr/lib/libc.so.6"]),
    )
    (f,), _ = run_rule(env, matrix, "TFC705")
    assert f.message == (
        "libcuda.so.1: the driver library search (static) predicted "
        "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15, but the import loaded "
        "/usr/local/cuda/compat/libcuda.so.560.28.03"
    )


def test_loaded_library_agrees_or_was_not_loaded(matrix):
    agree = with_probe(
        _driver_env("/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15"),
        result(libraries=["/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15"]),
    )
    assert run_rule(agree, matrix, "TFC705")[0] == []
    not_loaded = with_probe(
        _driver_env("/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15"), result(libraries=["/usr/lib/libc.so.6"])
    )
    assert run_rule(not_loaded, matrix, "TFC705")[0] == []


def test_loader_model_predictions_are_read_defensively(matrix):
    """The loader model (issue 4) is read with getattr: any object with soname/found.real_path works."""
    native = SimpleNamespace(
        libraries=(
            SimpleNamespace(
                soname="libcudnn.so.9", found=SimpleNamespace(real_path=f"{SITE}/nvidia/cudnn/lib/libcudnn.so.9")
            ),
            SimpleNamespace(soname="libcudart.so.12", found=None),
            SimpleNamespace(
                soname="libcublas.so.12", found=SimpleNamespace(real_path=f"{SITE}/nvidia/cublas/lib/libcublas.so.12")
            ),
        )
    )
    env = make_env("2.21.0")
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, native=native))
    env = with_probe(
        env,
        result(
            libraries=[
                "/usr/local/cuda-12.2/lib64/libcudnn.so.9.1.0",  # another copy than predicted
                "/usr/local/cuda-12.2/lib64/libcudart.so.12.2.140",  # predicted missing
                f"{SITE}/nvidia/cublas/lib/libcublas.so.12",  # as predicted
                f"{SITE}/nvidia/cudnn/lib/libcudnn_ops.so.9",  # a sub-library: not libcudnn.so
            ]
        ),
    )
    findings, _ = run_rule(env, matrix, "TFC705")
    assert [f.message.split(":")[0] for f in findings] == ["libcudnn.so.9", "libcudart.so.12"]
    assert (
        "found no copy, but the import loaded /usr/local/cuda-12.2/lib64/libcudart.so.12.2.140" in findings[1].message
    )
    # a snapshot without the model at all
    bare = with_probe(make_env("2.21.0"), result(libraries=["/usr/local/cuda/lib64/libcudart.so.12"]))
    assert run_rule(bare, matrix, "TFC705")[0] == []


def test_fatal_line_after_a_successful_import(matrix):
    env = with_probe(
        make_env("2.21.0"),
        result(
            log_lines=[
                line(
                    "cudnn-runtime-mismatch",
                    "fatal",
                    "Loaded runtime CuDNN library: 8.9.7 but source was compiled with: 9.3.0.",
                ),
                line("onednn-on", "benign", "oneDNN custom operations are on.", 2),
            ]
        ),
    )
    (f,), _ = run_rule(env, matrix, "TFC706")
    assert f.severity is Severity.ERROR
    assert f.message == (
        "TensorFlow printed a fatal line [cudnn-runtime-mismatch]: the cuDNN the loader found is "
        "another major, or an older minor, than the one TensorFlow was built with: GPU convolutions "
        "fail"
    )
    assert f.evidence[0].value.startswith("Loaded runtime CuDNN library: 8.9.7")


def test_a_crash_is_not_also_an_import_error_or_a_fatal_line(matrix):
    env = with_probe(
        make_env("2.21.0"),
        result(
            outcome="crash",
            signal="SIGABRT",
            exit_code=None,
            failing="import tensorflow",
            steps=[("import tensorflow", "died")],
            log_lines=[line("check-failed", "fatal", "F0000 x.cc:1] Check failed: ok")],
        ),
    )
    findings, _ = probe_findings(env, matrix)
    assert [f.rule for f in findings] == ["TFC701"]


def test_a_probe_that_could_not_start_is_not_a_silent_pass(matrix):
    import dataclasses

    from tfcompat.probes.importprobe import run_import_probe

    result = run_import_probe("/nonexistent/bin/python", timeout=5)
    env = dataclasses.replace(make_env("2.21.0"), probe=result)
    (f,), _ = run_rule(env, matrix, "TFC701")
    assert f.severity is Severity.WARNING and "could not start" in f.message


def test_child_environment_asks_for_the_dso_loader_lines():
    from tfcompat.probes.importprobe import child_environment

    env = child_environment({"TF_CPP_VMODULE": "gpu_device=2,dso_loader=0"})
    assert env["TF_CPP_VMODULE"] == "gpu_device=2,dso_loader=1" and env["TF_CPP_MIN_LOG_LEVEL"] == "0"
