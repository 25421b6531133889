"""data/tf_log_patterns.toml: the table is valid, each example is classified by its own line, and
the lines real TensorFlow wheels print are classified as they should be."""

from __future__ import annotations

import pytest

from tfcompat.model import LogLine
from tfcompat.probes.logpatterns import (
    CLASSES,
    LineClassifier,
    LogPatternError,
    classify,
    default_path,
    glog_level,
    line_class,
    line_why,
    load_patterns,
    pattern,
    patterns,
    strip_prefix,
)


def test_table_loads_from_the_data_folder():
    path = default_path()
    assert path.is_file() and path.parent.name == "data"  # the checkout's data/; the wheel's tfcompat/data/
    table = load_patterns()
    assert len(table) >= 40
    assert all(p.cls in CLASSES and (p.gpu_node is None or p.gpu_node in CLASSES) for p in table)
    assert len({p.id for p in table}) == len(table)


@pytest.mark.parametrize("p", patterns(), ids=lambda p: p.id)
def test_each_example_is_classified_by_its_own_pattern(p):
    """First match wins: a general pattern placed before a specific one would steal its example."""
    got = classify(p.example)
    assert got is not None and got.id == p.id, f"{p.example!r} -> {got.id if got else None}"


# Lines seen on this project's real wheels (tensorflow 2.21.0 and 2.15.1 + NumPy 2.1.3, CPU node).
REAL_LINES = [
    (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "absl-log-init",
        "benign",
    ),
    (
        "I0000 00:00:1795640038.174920    9332 port.cc:153] oneDNN custom operations are on. You may see slightly "
        "different numerical results due to floating-point round-off errors from different computation orders. To turn "
        "them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
        "onednn-on",
        "benign",
    ),
    (
        "I0000 00:00:1795640038.175247    9332 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
        "not be used.",
        "no-cuda-drivers",
        "informative",
    ),
    (
        "I0000 00:00:1795640038.593793    9332 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
        "available CPU instructions in performance-critical operations.",
        "cpu-feature-guard",
        "benign",
    ),
    (
        "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX512_FP16 AVX_VNNI AMX_TILE "
        "AMX_INT8 AMX_BF16 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.",
        "cpu-feature-guard-detail",
        "benign",
    ),
    (
        "E0000 00:00:1795640042.167989    9332 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
        "call to cuInit: UNKNOWN ERROR (303)",
        "cuinit-failed",
        "informative",
    ),
    (
        "2026-11-25 20:55:39.348359: E external/local_xla/xla/stream_executor/cuda/cuda_dnn.cc:9261] Unable to register "
        "cuDNN factory: Attempting to register factory for plugin cuDNN when one has already been registered",
        "duplicate-factory",
        "benign",
    ),
    (
        "2026-11-25 20:55:39.356791: E external/local_xla/xla/stream_executor/cuda/cuda_blas.cc:1515] Unable to register "
        "cuBLAS factory: Attempting to register factory for plugin cuBLAS when one has already been registered",
        "duplicate-factory",
        "benign",
    ),
    ("A module that was compiled using NumPy 1.x cannot be run in", "numpy2-abi-banner", "fatal"),
    ("AttributeError: _ARRAY_API not found", "numpy-array-api-missing", "fatal"),
    ("ImportError: numpy.core.umath failed to import", "numpy-core-import-failed", "fatal"),
    ("ImportError: numpy.core._multiarray_umath failed to import", "numpy-core-import-failed", "fatal"),
    # format strings found in libtensorflow_cc.so.2 (2.21.0), with values filled in
    (
        "W0000 00:00:1700000000.000000    1234 cuda_dnn.cc:1] Loaded runtime CuDNN library: 8.9.7 but source was "
        "compiled with: 9.3.0.  CuDNN library needs to have matching major version and equal or higher minor version.",
        "cudnn-runtime-mismatch",
        "fatal",
    ),
    (
        "E0000 00:00:1700000000.000000    1234 cuda_diagnostics.cc:1] kernel version 535.54.3 does not match DSO version "
        "550.54.15 -- cannot find working devices in this configuration",
        "kernel-dso-mismatch",
        "fatal",
    ),
    (
        "ImportError: /lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.29' not found (required by "
        "/venv/lib/python3.11/site-packages/tensorflow/libtensorflow_cc.so.2)",
        "symbol-version-not-found",
        "fatal",
    ),
]


@pytest.mark.parametrize("line,pid,cls", REAL_LINES, ids=[f"{i}-{x[1]}" for i, x in enumerate(REAL_LINES)])
def test_real_lines(line, pid, cls):
    p = classify(line)
    assert p is not None and (p.id, p.cls) == (pid, cls)


def test_lines_fatal_only_on_a_gpu_node():
    for pid in ("no-cuda-drivers", "cuinit-failed", "could-not-load-dynamic-library", "cannot-dlopen-gpu-libraries"):
        p = pattern(pid)
        assert p.class_on(gpu_node=False) == "informative" and p.class_on(gpu_node=True) == "fatal", pid
    assert pattern("onednn-on").class_on(gpu_node=True) == "benign"
    assert pattern("nope") is None


def test_glog_prefixes():
    assert glog_level("E0000 00:00:1795640042.167989    9332 cuda_platform.cc:52] x") == "E"
    assert glog_level("2026-11-25 20:55:39.348359: W tensorflow/core/x.cc:12] y") == "W"
    assert glog_level("Traceback (most recent call last):") is None
    assert strip_prefix("2026-11-25 20:55:39.348359: E a/b.cc:9261] Unable to register") == "Unable to register"
    assert (
        strip_prefix("I0000 00:00:1.0    1 port.cc:153] oneDNN custom operations are on.")
        == "oneDNN custom operations are on."
    )


def test_classifier_counts_orders_and_keeps_unknown_errors():
    c = LineClassifier()
    for line in [
        "I0000 00:00:1.0    1 port.cc:153] oneDNN custom operations are on.",
        "I0000 00:00:2.0    1 port.cc:153] oneDNN custom operations are on.",
        "I0000 00:00:3.0    1 somewhere.cc:1] an info line nobody classified",
        "W0000 00:00:3.0    1 somewhere.cc:1] a warning nobody classified",
        "E0000 00:00:4.0    1 brand_new.cc:7] a new error line",
        "E0000 00:00:5.0    1 brand_new.cc:7] a new error line",
        "ordinary output",
        "",
        "AttributeError: _ARRAY_API not found\r\n",
    ]:
        c.feed(line)
    got = [(ln.pattern, ln.classification, ln.count) for ln in c.lines()]
    assert got == [
        ("numpy-array-api-missing", "fatal", 1),
        ("unclassified", "unclassified", 2),
        ("onednn-on", "benign", 2),
    ]
    assert c.lines()[0].text == "AttributeError: _ARRAY_API not found"
    assert "tf_log_patterns.toml" in c.lines()[1].explanation


def test_unclassified_lines_are_capped():
    c = LineClassifier()
    for i in range(100):
        c.feed(f"E0000 00:00:4.0    1 x.cc:7] distinct error {i}")
    assert 0 < len(c.lines()) <= 20


@pytest.mark.parametrize(
    "text,error",
    [
        ("schema = 2\npatterns = []\n", "schema 2 is not supported"),
        ("schema = 1\n", "no 'patterns' list"),
        (
            'schema = 1\npatterns = [{ id = "a", class = "fatal", match = "x", why = "w", example = "x", extra = 1 }]\n',
            "pattern #1 'a': unknown key 'extra'",
        ),
        (
            'schema = 1\npatterns = [{ id = "a", class = "deadly", match = "x", why = "w", example = "x" }]\n',
            "class 'deadly' is not one of benign, informative, fatal",
        ),
        (
            'schema = 1\npatterns = [{ id = "a", class = "fatal", match = "(x", why = "w", example = "x" }]\n',
            "match is not a regular expression",
        ),
        (
            'schema = 1\npatterns = [{ id = "a", class = "fatal", match = "x", why = "w", example = "x" },\n'
            '{ id = "a", class = "fatal", match = "y", why = "w", example = "y" }]\n',
            "pattern #2 'a': id already used",
        ),
        (
            'schema = 1\npatterns = [{ id = "A b", class = "fatal", match = "x", why = "w", example = "x" }]\n',
            "id must be kebab-case",
        ),
        (
            'schema = 1\npatterns = [{ id = "a", class = "fatal", match = "x", example = "x" }]\n',
            "'why' must be a non-empty string",
        ),
        (
            'schema = 1\npatterns = [{ id = "a", class = "fatal", match = "\\S" }]\n',
            "",
        ),  # a TOML syntax error: the parser's message, with the file name
    ],
)
def test_loader_errors_name_the_entry(tmp_path, text, error):
    f = tmp_path / "p.toml"
    f.write_text(text)
    with pytest.raises(LogPatternError) as exc:
        load_patterns(f)
    assert error in str(exc.value) and str(f) in str(exc.value)


def test_a_recorded_line_is_judged_by_the_shipped_table():
    # recorded as the probe's table said at scan time; judged by this table, on this node
    old = LogLine("no-cuda-drivers", "benign", "Could not find cuda drivers", 1, "an older explanation")
    assert line_class(old, False) == "informative" and line_class(old, True) == "fatal"
    assert line_why(old) == pattern("no-cuda-drivers").why
    gone = LogLine("a-retired-pattern", "fatal", "x", 1, "what the old table said")
    assert line_class(gone, False) == "fatal" and line_why(gone) == "what the old table said"
