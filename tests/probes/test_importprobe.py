"""The import probe (--probe) against fake `tensorflow` packages run by a REAL child interpreter.

Each fake does what a broken TensorFlow does (segfault, abort, hang, raise, print TF's error lines,
load a shared library); the parent (this pytest process) must report it and come back normally.
No TensorFlow is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jsonschema
import pytest

from tfcompat.model import ProbeResult, from_json_dict, to_json_dict
from tfcompat.probes import importprobe
from tfcompat.probes.importprobe import parse_maps, run_import_probe

# A tensorflow that imports fine: enough API for the child's device listing and GPU op.
FAKE_TF = """
__version__ = "2.21.0"
import contextlib


class _Dev(object):
    def __init__(self, name, device_type):
        self.name, self.device_type = name, device_type


GPUS = []


class _Experimental(object):
    @staticmethod
    def set_memory_growth(device, enable):
        pass


class config(object):
    experimental = _Experimental

    @staticmethod
    def list_physical_devices(device_type=None):
        return [_Dev("/physical_device:CPU:0", "CPU")] + [_Dev("/physical_device:GPU:%d" % i, "GPU") for i in GPUS]


@contextlib.contextmanager
def device(name):
    yield


class _T(object):
    def __init__(self, total, device="/job:localhost/replica:0/task:0/device:GPU:0"):
        self.total, self.device = total, device

    def numpy(self):
        return self.total


float32 = "float32"


def constant(value):
    return _T(None)


class linalg(object):
    @staticmethod
    def matmul(a, b):
        MATMUL_HOOK()
        return _T(54.0)


def MATMUL_HOOK():
    pass


def reshape(x, shape):
    return x


def range(n, dtype=None):
    return _T(None)


def ones(shape):
    return _T(None)


class nn(object):
    @staticmethod
    def conv2d(image, kernel, strides, padding):
        return _T(270.0)


def reduce_sum(x):
    return _T(x.total)
"""


def make_site(tmp_path: Path, tf_body: str = "", packages=None) -> Path:
    """A site dir with the fake tensorflow (FAKE_TF, then `tf_body`) and other packages {name: __init__ text}."""
    site = tmp_path / "site"
    (site / "tensorflow").mkdir(parents=True)
    (site / "tensorflow" / "__init__.py").write_text(FAKE_TF + textwrap.dedent(tf_body))
    for name, text in (packages or {}).items():
        (site / name).mkdir()
        (site / name / "__init__.py").write_text(textwrap.dedent(text))
    return site


def probe(site: Path, timeout: float = 60.0, **kw) -> ProbeResult:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(site)
    return run_import_probe(sys.executable, timeout=timeout, environ=env, **kw)


def step(result: ProbeResult, name: str):
    matches = [s for s in result.steps if s.name == name]
    assert matches, [s.name for s in result.steps]
    return matches[0]


def test_ok_import_reports_version_devices_and_mapped_libraries(tmp_path):
    site = make_site(tmp_path, "import ctypes  # maps _ctypes*.so and libffi\n")
    r = probe(site)
    assert r.outcome == "ok", r.output_tail
    assert r.exit_code == 0 and r.signal is None and r.failing_step is None and r.error is None
    assert r.tensorflow_version == "2.21.0"
    assert r.tensorflow_path == str(site / "tensorflow" / "__init__.py")
    assert [(s.name, s.status) for s in r.steps] == [("import tensorflow", "ok"), ("list physical devices", "ok")]
    assert [(d.name, d.device_type) for d in r.devices] == [("/physical_device:CPU:0", "CPU")]
    assert r.libraries_source.startswith("/proc/self/maps read by the child")
    names = [lib.name for lib in r.libraries]
    assert any(n.startswith("_ctypes") for n in names), names
    assert all(lib.path.startswith("/") and lib.path.endswith(lib.name) for lib in r.libraries)


def test_segfault_in_import_tensorflow_is_sigsegv_with_the_step(tmp_path):
    site = make_site(tmp_path, "import ctypes\nctypes.string_at(0)\n")
    r = probe(site)
    assert r.outcome == "crash" and r.signal == "SIGSEGV" and r.exit_code is None
    assert r.failing_step == "import tensorflow"
    assert step(r, "import tensorflow").status == "died"
    assert r.error == "killed by SIGSEGV in import tensorflow"
    # faulthandler's report: the fatal error and the Python frame of the crashing import
    assert r.traceback.startswith("Fatal Python error: Segmentation fault")
    assert str(site / "tensorflow" / "__init__.py") in r.traceback
    assert any(ln.pattern == "python-fatal-error" and ln.classification == "fatal" for ln in r.log_lines)
    # the libraries come from the parent's read of /proc/<pid>/maps when the step started
    assert "read by tfcompat when the child started 'import tensorflow'" in r.libraries_source
    assert r.libraries


def test_a_step_that_crashes_at_once_still_leaves_its_libraries(tmp_path, monkeypatch):
    # the child waits for the parent's read of its maps before the step runs: a slow read still sees them
    real = importprobe.read_maps
    monkeypatch.setattr(importprobe, "read_maps", lambda pid: (time.sleep(0.3), real(pid))[1])
    r = probe(make_site(tmp_path, "import ctypes\nctypes.string_at(0)\n"))
    assert r.outcome == "crash" and r.libraries
    assert "read by tfcompat when the child started 'import tensorflow'" in r.libraries_source


def test_abort_is_sigabrt(tmp_path):
    site = make_site(tmp_path, "import os\nos.abort()\n")
    r = probe(site)
    assert r.outcome == "crash" and r.signal == "SIGABRT" and r.failing_step == "import tensorflow"
    assert "Fatal Python error: Aborted" in r.traceback


def test_segfaulting_companion_is_named_as_the_faulting_import(tmp_path):
    site = make_site(tmp_path, packages={"tensorflow_text": "import ctypes\nctypes.string_at(0)\n"})
    r = probe(site)
    assert r.outcome == "crash" and r.signal == "SIGSEGV"
    assert r.failing_step == "import tensorflow_text"
    assert [(s.name, s.status) for s in r.steps] == [("import tensorflow", "ok"), ("import tensorflow_text", "died")]
    assert r.tensorflow_version == "2.21.0"
    assert str(site / "tensorflow_text" / "__init__.py") in r.traceback


def test_hang_is_killed_with_its_whole_process_group(tmp_path):
    marker = tmp_path / "pgid.json"
    site = make_site(
        tmp_path,
        f"""
        import json, os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        with open({str(marker)!r}, "w") as fh:
            json.dump({{"pgid": os.getpgrp(), "pid": os.getpid(), "grandchild": child.pid}}, fh)
        time.sleep(3600)
        """,
    )
    t0 = time.monotonic()
    r = probe(site, timeout=2)
    elapsed = time.monotonic() - t0
    assert elapsed < 60, elapsed  # generous: 2 s + the grace for faulthandler's dump + the kill
    assert r.outcome == "timeout" and r.timeout_s == 2
    assert r.failing_step == "import tensorflow" and step(r, "import tensorflow").status == "hung"
    assert "no answer within 2 s" in r.error
    # faulthandler's dump (SIGUSR1 before the kill) shows where it hung
    assert r.traceback is not None and str(site / "tensorflow" / "__init__.py") in r.traceback
    ids = json.loads(marker.read_text())
    assert ids["pgid"] == ids["pid"]  # the child leads its own session and group: not pytest's group
    assert ids["pgid"] != os.getpgrp()
    for _ in range(200):  # the kernel and init may take a moment to reap the killed grandchild
        try:
            os.killpg(ids["pgid"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"process group {ids['pgid']} is still alive")


def test_import_error_is_the_python_error(tmp_path):
    site = make_site(tmp_path, packages={"tensorflow_text": "pass\n"})
    (site / "tensorflow" / "__init__.py").write_text(
        "raise ImportError('/x/_pywrap_tensorflow_internal.so: undefined symbol: _ZN10tensorflow8internal15LogMessage')\n"
    )
    r = probe(site)
    assert r.outcome == "error" and r.exit_code == 0 and r.signal is None
    assert r.failing_step == "import tensorflow"
    assert r.error == (
        "ImportError: /x/_pywrap_tensorflow_internal.so: undefined symbol: _ZN10tensorflow8internal15LogMessage"
    )
    assert "Traceback (most recent call last)" in r.traceback
    # the companion is not imported without TensorFlow: skipped, with the reason
    companion = step(r, "import tensorflow_text")
    assert companion.status == "skipped" and companion.detail == "tensorflow did not import"
    # the traceback is printed where the job would print it, so its lines are classified too
    assert [ln.pattern for ln in r.log_lines if ln.classification == "fatal"] == ["undefined-symbol"]
    assert r.libraries_source.startswith("/proc/self/maps read by the child")


TF215_STDERR = (
    "2026-11-25 20:55:39.169213: I tensorflow/core/util/port.cc:113] oneDNN custom operations are on. You may see "
    "slightly different numerical results due to floating-point round-off errors from different computation orders. "
    "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n"
    "2026-11-25 20:55:39.348359: E external/local_xla/xla/stream_executor/cuda/cuda_dnn.cc:9261] Unable to register "
    "cuDNN factory: Attempting to register factory for plugin cuDNN when one has already been registered\n"
    "2026-11-25 20:55:39.348415: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:607] Unable to register "
    "cuFFT factory: Attempting to register factory for plugin cuFFT when one has already been registered\n"
    "2026-11-25 20:55:39.350000: E some/new/place.cc:1] A brand new error TF never printed before\n"
    "\n"
    "A module that was compiled using NumPy 1.x cannot be run in\n"
    "NumPy 2.1.3 as it may crash. To support both 1.x and 2.x\n"
    "versions of NumPy, modules must be compiled with NumPy 2.0.\n"
)


def test_tf_error_lines_on_stderr_are_classified(tmp_path):
    site = make_site(tmp_path)
    (site / "tensorflow" / "__init__.py").write_text(
        f"import sys\nsys.stderr.write({TF215_STDERR!r})\nraise AttributeError('_ARRAY_API not found')\n"
    )
    r = probe(site)
    assert r.outcome == "error" and r.error == "AttributeError: _ARRAY_API not found"
    by_id = {ln.pattern: ln for ln in r.log_lines}
    assert by_id["numpy2-abi-banner"].classification == "fatal"
    assert by_id["numpy-array-api-missing"].classification == "fatal"
    assert by_id["duplicate-factory"].classification == "benign" and by_id["duplicate-factory"].count == 2
    assert by_id["onednn-on"].classification == "benign"
    assert by_id["unclassified"].text.endswith("A brand new error TF never printed before")
    # fatal lines first in the report
    assert r.log_lines[0].classification == "fatal"
    assert "NumPy 2.1.3 as it may crash" in r.output_tail


def test_exit_before_done_is_reported_with_the_code_and_step(tmp_path):
    site = make_site(
        tmp_path,
        packages={
            "tensorflow_io": """
        import os, sys
        sys.stderr.write("python: symbol lookup error: /x/libtensorflow_io.so: undefined symbol: _ZN3tsl6StatusC1Ev\\n")
        sys.stderr.flush()
        os._exit(127)
        """
        },
    )
    r = probe(site)
    assert r.outcome == "exit" and r.exit_code == 127 and r.signal is None
    assert r.failing_step == "import tensorflow_io"
    assert r.error == "exited with code 127 before it finished in import tensorflow_io"
    assert r.log_lines[0].pattern == "symbol-lookup-error"


@pytest.fixture(scope="module")
def shared_library(tmp_path_factory):
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        from conftest import missing_tool  # skipped locally, failed under CI=true

        missing_tool("no C compiler (gcc) to build a test shared library")
    d = tmp_path_factory.mktemp("lib")
    src = d / "tfcprobe.c"
    src.write_text("int tfcprobe_answer(void) { return 42; }\n")
    lib = d / "libtfcprobe.so.1"
    subprocess.run([gcc, "-shared", "-fPIC", "-Wl,-soname,libtfcprobe.so.1", "-o", str(lib), str(src)], check=True)
    return lib


def test_a_loaded_shared_library_appears_in_the_maps(tmp_path, shared_library):
    site = make_site(tmp_path, f"import ctypes\nassert ctypes.CDLL({str(shared_library)!r}).tfcprobe_answer() == 42\n")
    r = probe(site)
    assert r.outcome == "ok", r.output_tail
    loaded = {lib.path: lib.name for lib in r.libraries}
    assert loaded.get(str(shared_library)) == "libtfcprobe.so.1"


def test_gpu_devices_get_one_tiny_op_each(tmp_path):
    site = make_site(tmp_path, "GPUS[:] = [0, 1]\n")
    r = probe(site)
    assert r.outcome == "ok", r.output_tail
    assert [d.device_type for d in r.devices] == ["CPU", "GPU", "GPU"]
    assert [(s.name, s.status) for s in r.steps][-2:] == [("op on /GPU:0", "ok"), ("op on /GPU:1", "ok")]


def test_failing_gpu_op_is_an_error_of_that_step(tmp_path):
    site = make_site(
        tmp_path,
        """
        GPUS[:] = [0]
        def MATMUL_HOOK():
            raise RuntimeError("Blas GEMM launch failed: CUBLAS_STATUS_NOT_INITIALIZED")
        """,
    )
    r = probe(site)
    assert r.outcome == "error" and r.failing_step == "op on /GPU:0"
    assert r.error == "RuntimeError: Blas GEMM launch failed: CUBLAS_STATUS_NOT_INITIALIZED"
    assert r.libraries  # the child still finished and reported its maps


def test_output_is_capped_but_every_line_is_classified(tmp_path):
    site = make_site(
        tmp_path,
        """
        import builtins, sys
        sys.stderr.write("Loaded runtime CuDNN library: 8.1.0 but source was compiled with: 8.6.0.\\n")
        for i in builtins.range(20000):  # the fake tensorflow defines its own range()
            sys.stderr.write("noise line %06d ...................................................\\n" % i)
        sys.stderr.write("x" * 100000)  # a line without end
        """,
    )
    r = probe(site)
    assert r.outcome == "ok"
    assert r.output_bytes > 1_000_000
    assert len(r.output_tail.encode()) <= importprobe.OUTPUT_TAIL
    assert r.log_lines[0].pattern == "cudnn-runtime-mismatch"


def test_an_interpreter_that_does_not_exist_is_not_started(tmp_path):
    r = run_import_probe(str(tmp_path / "nope" / "python"), timeout=5)
    assert r.outcome == "not-started" and r.error.startswith("cannot start")
    assert r.steps == () and r.libraries == ()


def test_the_child_runs_without_tfcompat_and_ignores_the_working_directory(tmp_path, monkeypatch):
    # a `tensorflow` directory in the working directory must not shadow the environment's
    site = make_site(tmp_path)
    decoy = tmp_path / "cwd" / "tensorflow"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise SystemExit('the decoy was imported')\n")
    monkeypatch.chdir(decoy.parent)
    r = probe(site)
    assert r.outcome == "ok" and r.tensorflow_path == str(site / "tensorflow" / "__init__.py")


def test_parse_maps():
    text = (
        "7f00-7f01 r--p 00000000 08:01 123 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
        "7f01-7f02 r-xp 00001000 08:01 123 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
        "7f02-7f03 rw-p 00000000 00:00 0 \n"
        "7f03-7f04 rw-p 00000000 00:00 0 [heap]\n"
        "7f04-7f05 r--p 00000000 08:01 124 /opt/x/libold.so.2 (deleted)\n"
        "7f05-7f06 r--p 00000000 08:01 125 /usr/lib/locale/locale-archive\n"
        "7f06-7f07 r--p 00000000 08:01 126 /venv/tensorflow/python/_pywrap_tfe.so\n"
    )
    assert parse_maps(text) == [
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/opt/x/libold.so.2",
        "/venv/tensorflow/python/_pywrap_tfe.so",
    ]


def test_probe_result_round_trips_through_json(tmp_path):
    site = make_site(tmp_path, "import sys\nsys.stderr.write('oneDNN custom operations are on.\\n')\n")
    r = probe(site)
    data = json.loads(json.dumps(to_json_dict(r)))
    assert from_json_dict(ProbeResult, data) == r


# -- through scan() and the command line, with a real venv ----------------------------------------------


BUILD_INFO = (
    "import collections\nbuild_info = collections.OrderedDict([('cuda_version', '12.5.1'), "
    "('cudnn_version', '9'), ('is_cuda_build', True), ('is_rocm_build', False)])\n"
)


def _dist(site: Path, name: str, version: str, requires=()):
    d = site / f"{name.replace('-', '_')}-{version}.dist-info"
    d.mkdir(parents=True)
    d.joinpath("METADATA").write_text(
        "\n".join(
            ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
            + [f"Requires-Dist: {r}" for r in requires]
        )
        + "\n"
    )


@pytest.fixture
def venv(tmp_path):
    """A real venv (no pip) whose site-packages holds a fake TF 2.21.0 and a tensorflow-text for TF 2.15."""
    root = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "tensorflow" / "python" / "platform").mkdir(parents=True)
    (site / "tensorflow" / "__init__.py").write_text(FAKE_TF)
    (site / "tensorflow" / "python" / "platform" / "build_info.py").write_text(BUILD_INFO)
    _dist(site, "tensorflow", "2.21.0")
    (site / "tensorflow_text").mkdir()
    (site / "tensorflow_text" / "__init__.py").write_text("import ctypes\nctypes.string_at(0)\n")
    _dist(site, "tensorflow-text", "2.15.0", ["tensorflow<2.16,>=2.15.0"])
    return python, site


def test_scan_with_probe_records_it_and_rules_judge_it(venv, matrix):
    from tfcompat.model import environment_from_json
    from tfcompat.probes.target import TargetSpec
    from tfcompat.rules import evaluate
    from tfcompat.scan import scan

    python, _site = venv
    env = scan(TargetSpec(python=str(python)), node_name="n1", nvml=False, probe=True, probe_timeout=60)
    assert env.probe is not None and env.probe.python == str(python)
    assert env.probe.signal == "SIGSEGV" and env.probe.failing_step == "import tensorflow_text"
    # the snapshot carries the probe
    assert environment_from_json(json.loads(json.dumps(to_json_dict(env)))) == env
    report = evaluate(env, matrix, select=["TFC7"])
    (crash,) = [f for f in report.findings if f.rule == "TFC701"]
    assert "`import tensorflow_text` killed the process with SIGSEGV" in crash.message
    assert "TFC104" in crash.message  # tied to the static finding that explains it


def test_scan_without_probe_runs_none(venv):
    from tfcompat.probes.target import TargetSpec
    from tfcompat.scan import scan

    python, _ = venv
    env = scan(TargetSpec(python=str(python)), node_name="n1", nvml=False)
    assert env.probe is None and env.unknown("probe") is None


def test_scan_under_root_does_not_run_the_image(tmp_path, matrix):
    from tfcompat.probes.target import TargetSpec
    from tfcompat.rules import evaluate
    from tfcompat.scan import scan

    site = tmp_path / "img" / "usr" / "lib" / "python3.11" / "site-packages"
    (site / "tensorflow").mkdir(parents=True)
    (site / "tensorflow" / "__init__.py").write_text("raise SystemExit('must never run')\n")
    _dist(site, "tensorflow", "2.21.0")
    env = scan(TargetSpec(root=str(tmp_path / "img")), node_name="n1", nvml=False, probe=True)
    assert env.probe is None and env.unknown("probe").startswith("not run: --root")
    report = evaluate(env, matrix, select=["TFC7"])
    assert report.findings == ()
    assert {s.rule for s in report.skipped} == {"TFC701", "TFC702", "TFC703", "TFC704", "TFC705", "TFC706"}
    assert all(s.reason.startswith("probe unknown: not run: --root") for s in report.skipped)


def test_cli_check_probe_json_and_text(venv, capsys):
    from tfcompat.cli import main
    from tfcompat.render.json import schema_text

    python, _ = venv

    def run(*argv):
        with pytest.raises(SystemExit) as exc:
            main(list(argv))
        out, err = capsys.readouterr()
        return exc.value.code, out, err

    code, out, err = run(
        "check",
        "--python",
        str(python),
        "--no-nvml",
        "--probe",
        "--probe-timeout",
        "60",
        "-f",
        "json",
        "--select",
        "TFC1,TFC7",
    )
    report = json.loads(out)
    jsonschema.validate(report, json.loads(schema_text()))
    assert code == report["exit_code"] == 1
    assert report["environment"]["probe"]["signal"] == "SIGSEGV"
    assert {f["rule"] for f in report["findings"]} >= {"TFC104", "TFC701"}
    code, out, err = run("check", "--python", str(python), "--no-nvml", "--probe", "--select", "TFC7")
    assert code == 1
    assert f"Probe       {python}: CRASHED (SIGSEGV) in import tensorflow_text" in out
    assert "ERROR TFC701 import-crashed" in out
    # without --probe: no probe, and the JSON still validates
    code, out, _ = run("check", "--python", str(python), "--no-nvml", "-f", "json", "--select", "TFC7")
    report = json.loads(out)
    jsonschema.validate(report, json.loads(schema_text()))
    assert report["environment"]["probe"] is None and code == 0 and report["skipped"] == []
    code, _, err = run("check", "--from", "x.json", "--probe")
    assert code == 2 and "--probe" in err


# -- opt-in: a real TensorFlow venv ------------------------------------------------------------------------


@pytest.mark.realwheel
@pytest.mark.skipif(
    not os.environ.get("TFCOMPAT_TF_PYTHON"),
    reason="set TFCOMPAT_TF_PYTHON to a venv's python with TensorFlow installed",
)
def test_real_tensorflow_import(matrix):
    """The probe against a real wheel: TF's own libraries are in the maps, its start-up lines classified."""
    from tfcompat.probes.target import TargetSpec
    from tfcompat.rules import evaluate
    from tfcompat.scan import scan

    env = scan(TargetSpec(python=os.environ["TFCOMPAT_TF_PYTHON"]), nvml=False, probe=True, probe_timeout=300)
    r = env.probe
    assert r is not None and r.outcome in ("ok", "error"), (r.outcome, r.error, r.output_tail[-2000:])
    if r.outcome == "ok":
        assert r.tensorflow_version == env.tensorflow.version
        names = {lib.name for lib in r.libraries}
        assert "libtensorflow_framework.so.2" in names
        assert r.libraries_source.startswith("/proc/self/maps read by the child")
        # every TF start-up line is known to the table (nothing unclassified)
        assert r.log_lines and all(ln.classification != "unclassified" for ln in r.log_lines), r.log_lines
        report = evaluate(env, matrix, select=["TFC705"])
        assert report.findings == (), report.findings  # the static scan found the TF that was imported
    else:  # a broken venv (e.g. NumPy 2 under TF <= 2.17): the failure is reported and explained
        report = evaluate(env, matrix, select=["TFC702"])
        assert [f.rule for f in report.findings] == ["TFC702"]
