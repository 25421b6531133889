"""The TensorRT sonames the probe resolves ([[tensorrt_dlopen]]) and the matrix's [[tensorflow]] rows agree
(issue 14, small defects: the probe's table covered 2.15 only while the matrix knew 2.16/2.17).

Each [[tensorrt_dlopen]] row was observed on the release's own wheel, on a machine without TensorRT: under
LD_DEBUG=libs, `tensorflow.compiler.tf2tensorrt._pywrap_py_utils.is_tensorrt_enabled()` prints
`find library=libnvinfer.so.N` (TF-TRT's GetNvInferDsoHandle), then "TF-TRT Warning: Could not find TensorRT" /
"Cannot dlopen some TensorRT libraries" (tensorflow/tensorflow#57679 for 2.10/2.11, #64809 for 2.16)."""

import pytest
from packaging.version import Version

from tfcompat.matrix import shipped_facts
from tfcompat.model import TensorFlowBuild
from tfcompat.probes.library_specs import tf_library_specs

# TensorRT builds (build_info is_tensorrt_build = True) whose TensorRT soname nobody has observed yet: the probe
# says "unknown" for them rather than guess. Remove a release from here once its row is in the matrix.
UNOBSERVED: dict = {}


def trt_rows(matrix):
    return [r for r in matrix.tensorflow if r.tensorrt]


def _minor(release: str) -> Version:
    v = Version(release)
    return Version(f"{v.major}.{v.minor}")


def _row_for(matrix, release):
    v = _minor(release)
    rows = [t for t in matrix.facts.tensorrt if t.tensorflow is not None and t.tensorflow.contains(v, prereleases=True)]
    assert len(rows) <= 1, f"{release} is matched by {len(rows)} [[tensorrt_dlopen]] rows"
    return rows[0] if rows else None


def test_every_tensorrt_build_has_a_soname_row_or_a_reason(matrix):
    missing = []
    for row in trt_rows(matrix):
        for release in row.releases:
            if _row_for(matrix, release) is None and release not in UNOBSERVED:
                missing.append(release)
    assert missing == [], f"TensorRT builds without a [[tensorrt_dlopen]] row: {missing}"
    assert all(reason for reason in UNOBSERVED.values())


def test_stated_tensorrt_lib_is_what_the_probe_resolves(matrix):
    """A [[tensorflow]] row's `tensorrt_lib` (the wheel's observed soname) is the probe's nvinfer soname."""
    checked = 0
    for row in matrix.tensorflow:
        if row.tensorrt_lib is None:
            continue
        for release in row.releases:
            table = _row_for(matrix, release)
            assert table is not None, release
            nvinfer = {lib.name: lib.soname for lib in table.libraries}["nvinfer"]
            assert nvinfer == row.tensorrt_lib, (release, nvinfer, row.tensorrt_lib)
            checked += 1
    assert checked >= 8  # 2.10.x, 2.11.x, 2.16.x, 2.17.x


def test_no_soname_row_for_builds_without_tensorrt(matrix):
    """2.18+: "TensorRT support is disabled in CUDA builds" (is_tensorrt_build False): no row may claim them."""
    for row in matrix.tensorflow:
        if row.tensorrt is False:
            assert all(_row_for(matrix, r) is None for r in row.releases), row.label


@pytest.mark.parametrize(
    "release, cuda, nvinfer",
    [
        ("2.5.3", "11.2", "libnvinfer.so.7"),
        ("2.9.3", "11.2", "libnvinfer.so.7"),
        ("2.10.1", "11.2", "libnvinfer.so.7"),
        ("2.11.1", "11.2", "libnvinfer.so.7"),
        ("2.12.1", "11.8", "libnvinfer.so.8"),
        ("2.13.0", "11.8", "libnvinfer.so.8"),
        ("2.14.1", "11.8", "libnvinfer.so.8"),
        ("2.15.1", "12.2", "libnvinfer.so.8.6.1"),
        ("2.16.2", "12.3", "libnvinfer.so.8.6.1"),
        ("2.17.1", "12.3", "libnvinfer.so.8.6.1"),
    ],
)
def test_probe_resolves_the_release_tensorrt(release, cuda, nvinfer):
    tf = TensorFlowBuild("tensorflow", release, "/s", "/s/tensorflow", None, cuda, "8", (), True, False, True)
    specs, unknowns = tf_library_specs(tf, shipped_facts())
    names = {s.soname for s in specs}
    assert nvinfer in names and nvinfer.replace("nvinfer", "nvinfer_plugin") in names
    assert not any(u.fact == "libraries.tensorrt" for u in unknowns)
