"""The legacy rows of the matrix (issue 14: TF 1.5-1.15, 2.0-2.3) and `tfcompat matrix tensorflow` for them.

Every expected value below was read from a primary source on 2026-12-07: the wheels on PyPI (METADATA, build_info.py,
DT_NEEDED, the cuDNN version compiled into CudnnSupport::Init), tensorflow.org's tested-build table, NVIDIA's CUDA
release notes (driver table) and cuDNN support matrices; the row's `source` lists them.
"""

from __future__ import annotations

import json

import pytest

from tfcompat.cli import main
from tfcompat.matrix import spec_text


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


# version -> (cuda, cudnn compiled, cudnn_minor, numpy, protobuf, glibc, cxx11_abi, manylinux, compiler)
LEGACY = {
    "1.5.1": ("9.0", "7.0", "exact", ">=1.12.1", ">=3.4.0", "2.17", 0, "manylinux1_x86_64", "GCC 4.8.4"),
    "1.6.0": ("9.0", "7.0", "exact", ">=1.13.3", ">=3.4.0", "2.17", 0, "manylinux1_x86_64", "GCC 4.8.4"),
    # 1.7-1.12: read from the tensorflow_gpu cp36 wheels of 1.7.1, 1.8.0, 1.9.0, 1.10.1, 1.11.0, 1.12.0, 1.12.3
    "1.7.0": ("9.0", "7.0", None, ">=1.13.3", ">=3.4.0", "2.17", 0, "manylinux1_x86_64", "GCC 4.8.4"),
    "1.8.0": ("9.0", "7.0", None, ">=1.13.3", ">=3.4.0", "2.17", 0, "manylinux1_x86_64", "GCC 4.8.4"),
    "1.9.0": ("9.0", "7.0", None, ">=1.13.3", ">=3.4.0", "2.17", 0, "manylinux1_x86_64", "GCC 4.8.5"),
    "1.10.1": ("9.0", "7.0", None, ">=1.13.3,<=1.14.5", ">=3.6.0", "2.17", 0, "manylinux1_x86_64", "GCC 4.8.5"),
    "1.11.0": ("9.0", "7.2", None, ">=1.13.3", ">=3.6.0", "2.17", 0, "manylinux1_x86_64", "GCC 4.8.5"),
    "1.12.3": ("9.0", "7.1", None, ">=1.13.3", ">=3.6.1", "2.17", 0, "manylinux1_x86_64", "GCC 4.8.5"),
    "1.13.1": ("10.0", "7.3", None, ">=1.13.3", ">=3.6.1", "2.23", 1, "manylinux1_x86_64", "GCC 5.4.0"),
    "1.13.2": ("10.0", "7.3", None, ">=1.16.0,<2.0", ">=3.6.1", "2.23", 1, "manylinux1_x86_64", "GCC 5.4.0"),
    "1.14.0": ("10.0", "7.3", None, ">=1.14.5,<2.0", ">=3.6.1", "2.23", 1, "manylinux1_x86_64", "GCC 5.4.0"),
    "1.15.0": ("10.0", "7.6", None, ">=1.16.0,<2.0", ">=3.6.1", "2.12", 0, "manylinux2010_x86_64", "GCC 7.3.1"),
    "1.15.5": ("10.0", "7.6", None, ">=1.16.0,<1.19.0", ">=3.6.1", "2.12", 0, "manylinux2010_x86_64", "GCC 7.3.1"),
    "2.0.0": ("10.0", "7.6", None, ">=1.16.0,<2.0", ">=3.6.1", "2.12", 0, "manylinux2010_x86_64", "GCC 7.3.1"),
    "2.0.4": ("10.0", "7.6", None, ">=1.16.0,<1.19.0", ">=3.6.1", "2.12", 0, "manylinux2010_x86_64", "GCC 7.3.1"),
    "2.1.0": ("10.1", "7.6", None, ">=1.16.0,<2.0", ">=3.8.0", "2.12", 0, "manylinux2010_x86_64", "GCC 7.3.1"),
    "2.1.4": ("10.1", "7.6", None, ">=1.16.0,<1.19.0", ">=3.8.0", "2.12", 0, "manylinux2010_x86_64", "GCC 7.3.1"),
    "2.2.0": ("10.1", "7.6", None, ">=1.16.0,<2.0", ">=3.8.0", "2.12", 0, "manylinux2010_x86_64", "GCC 7.3.1"),
    "2.2.3": ("10.1", "7.6", None, ">=1.16.0,<1.19.0", ">=3.8.0", "2.12", 0, "manylinux2010_x86_64", "GCC 7.3.1"),
    "2.3.4": ("10.1", "7.6", None, ">=1.16.0,<1.19.0", ">=3.9.2", "2.12", 0, "manylinux2010_x86_64", "GCC 7.3.1"),
}


@pytest.mark.parametrize("version", sorted(LEGACY))
def test_legacy_build_facts(matrix, version):
    cuda, cudnn, exact, numpy, protobuf, glibc, abi, manylinux, compiler = LEGACY[version]
    rel = matrix.tf_release(version)
    assert (str(rel.cuda), str(rel.cudnn), rel.cudnn_minor) == (cuda, cudnn, exact)
    assert (spec_text(rel.numpy), spec_text(rel.protobuf)) == (numpy, protobuf)
    assert (str(rel.glibc), rel.cxx11_abi, rel.manylinux, rel.compiler) == (glibc, abi, manylinux, compiler)
    assert rel.numpy_abi == 1


def test_cudnn_compiled_into_1_11_is_newer_than_1_12s(matrix):
    """CudnnSupport::Init of the tensorflow_gpu 1.11.0 wheel stores the source version 7, 2, 1; of 1.12.0 and
    1.12.3 7, 1, 4 (the tested-build table says only cuDNN 7 for both)."""
    assert [str(matrix.tf_release(v).cudnn) for v in ("1.10.1", "1.11.0", "1.12.0", "1.12.3")] == [
        "7.0",
        "7.2",
        "7.1",
        "7.1",
    ]


def test_h5py_cap_from_the_last_patches(matrix):
    """Requires-Dist `h5py (<=2.10.0)` appears in 1.15.5, 2.0.4, 2.1.3 and 2.1.4, not in 1.15.4, 2.0.3, 2.1.2."""
    capped = {
        v: spec_text(matrix.tf_release(v).h5py) if matrix.tf_release(v).h5py is not None else None
        for v in ("1.15.4", "1.15.5", "2.0.3", "2.0.4", "2.1.2", "2.1.3", "2.1.4")
    }
    assert capped == {
        "1.15.4": None,
        "1.15.5": "<=2.10.0",
        "2.0.3": None,
        "2.0.4": "<=2.10.0",
        "2.1.2": None,
        "2.1.3": "<=2.10.0",
        "2.1.4": "<=2.10.0",
    }


def test_glibcxx_floor_of_2_0_is_higher_than_1_15s(matrix):
    """_pywrap_tensorflow_internal.so of the 2.0.4 wheel needs GLIBCXX_3.4.13, of 1.15.5 and 2.1.4 3.4.11."""
    assert [str(matrix.tf_release(v).glibcxx) for v in ("1.15.5", "2.0.4", "2.1.4")] == ["3.4.11", "3.4.13", "3.4.11"]


def test_compute_capabilities_are_stated_from_2_3_only(matrix):
    assert matrix.tf_release("2.2.3").compute_capabilities == ()
    assert matrix.tf_release("2.3.0").compute_capabilities == (
        "sm_35",
        "sm_37",
        "sm_52",
        "sm_60",
        "sm_61",
        "compute_70",
    )


def test_drivers_of_cuda_8_to_10(matrix):
    """CUDA release notes, "CUDA Toolkit and Corresponding Driver Versions"."""
    assert matrix.driver_need("9.0").full_text == "384.81"
    assert matrix.driver_need("9.2").full_text == "396.26"
    assert matrix.driver_need("9.2.148").full_text == "396.37"
    assert matrix.driver_need("10.0").full_text == "410.48"
    assert matrix.driver_need("10.1").full_text == "418.39"
    assert matrix.driver_need("8.0").full_text == "367.48"
    assert matrix.cuda_major(9) is None and matrix.cuda_major_info(9).minor_version_compatibility is False


@pytest.mark.parametrize(
    ("cuda", "tf", "cudart", "cublas"),
    [
        ("10", "1.15.5", "libcudart.so.10.0", "libcublas.so.10.0"),  # build_info.py says '10'
        ("10.0", "1.14.0", "libcudart.so.10.0", "libcublas.so.10.0"),
        ("10", "2.0.4", "libcudart.so.10.0", "libcublas.so.10.0"),
        ("10.1", "2.1.4", "libcudart.so.10.1", "libcublas.so.10"),
        ("10", "2.2.3", "libcudart.so.10.1", "libcublas.so.10"),  # build_info.py says '10'
        ("10.1", "1.15.0", "libcudart.so.10.1", "libcublas.so.10"),  # a source build: its CUDA minor decides
        ("9.0", "1.5.0", "libcudart.so.9.0", "libcublas.so.9.0"),
    ],
)
def test_sonames_of_cuda_9_and_10_builds(matrix, cuda, tf, cudart, cublas):
    names = {s.name: s.soname for s in matrix.facts.sonames(cuda, tf, 7)}
    assert (names["cudart"], names["cublas"], names["cudnn"]) == (cudart, cublas, "libcudnn.so.7")


def test_cudnn_7_is_one_library_and_7_6_has_support_rows(matrix):
    assert matrix.facts.cudnn_sublibraries(7) == ()
    assert any(c.cudnn_major == 7 for c in matrix.facts.cudnn)
    support = matrix.cudnn_support("7.6.5", 10)
    assert support.basis != "none"


def test_matrix_tensorflow_1_15_answers(capsys):
    code, out, err = run(capsys, "matrix", "tensorflow", "1.15")
    assert code == 0, err
    assert out.startswith("TensorFlow 1.15.5   entry >=1.15.5,<2.0.0: 1.15.5")
    assert "CUDA (build)          10.0" in out
    assert "cuDNN (compiled)      7.6  (runtime: same major, minor >= 7.6)" in out
    assert "not stated (build_info.py lists none before 2.3)" in out
    assert ">= 410.48" in out and "https://github.com/tensorflow/tensorflow/issues/35376" in out


def test_matrix_tensorflow_1_5_says_same_minor_only(capsys):
    code, out, _ = run(capsys, "matrix", "tensorflow", "1.5", "--format", "json")
    answer = json.loads(out)
    assert (code, answer["cudnn"], answer["cudnn_minor"], answer["cuda"]) == (0, "7.0", "exact", "9.0")
    code, out, _ = run(capsys, "matrix", "tensorflow", "1.6")
    assert "cuDNN (compiled)      7.0  (runtime: same minor only)" in out


@pytest.mark.parametrize(("query", "version", "cuda"), [("2.0", "2.0.4", "10.0"), ("2.3", "2.3.4", "10.1")])
def test_matrix_tensorflow_2_0_and_2_3_answer(capsys, query, version, cuda):
    code, out, _ = run(capsys, "matrix", "tensorflow", query, "--format", "json")
    answer = json.loads(out)
    assert (code, answer["version"], answer["cuda"], answer["cudnn"]) == (0, version, cuda, "7.6")
    assert answer["cudnn_minor"] is None
