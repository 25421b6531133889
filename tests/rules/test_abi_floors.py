"""TFC110 (protobuf too new for TF's generated code) and TFC111 (NumPy older than TF's build): floors the
build sets that TF's metadata does not state. The build's own files decide (probe), the matrix stands in."""

import dataclasses

import pytest
from envs import SITE, make_env, pkg, run_rule, tf_build
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tfcompat.matrix.abi_floors import c_api, numpy_floor
from tfcompat.matrix.load import parse_matrix
from tfcompat.model import Severity

PB2 = f"{SITE}/tensorflow/core/framework/graph_pb2.py"
NPY = f"{SITE}/tensorflow/include/external/local_config_python/numpy_include/numpy/_numpyconfig.h"


def legacy_env(tf: str, requires: tuple[str, ...], packages: dict, python: str = "3.8.12", **build):
    """TF `tf` (a release the default fixtures do not describe) with its own Requires-Dist."""
    b = dataclasses.replace(tf_build(tf, tags=()), **build)
    env = make_env(tf_builds=[b], packages=packages, python=python)
    tf_pkg = pkg("tensorflow", tf, requires)
    others = tuple(p for p in env.target.packages if p.name != "tensorflow")
    return dataclasses.replace(env, target=dataclasses.replace(env.target, packages=(tf_pkg, *others)))


TF_271 = ("numpy>=1.14.5", "protobuf>=3.9.2", "keras<2.8,>=2.7.0rc0")
TF_2110 = ("numpy>=1.20", "protobuf<3.20,>=3.9.2")


# -- TFC110 -----------------------------------------------------------------------------------------------


def test_tf_271_with_protobuf_4210_fails(matrix):
    """tensorflow/tensorflow#56266: TF 2.7.1 (Python 3.8), `import tensorflow` after protobuf 4.21.0 came out:
    "TypeError: Descriptors cannot not be created directly ... regenerated with protoc >= 3.19.0"; 2.7.3 (which
    pins protobuf<3.20) works. TF 2.7.1 states only protobuf>=3.9.2; its _pb2.py files come from protoc 3.9.2."""
    env = legacy_env("2.7.1", TF_271, {"protobuf": "4.21.0", "numpy": "1.21.6"})
    (f,), _ = run_rule(env, matrix, "TFC110")
    assert f.severity is Severity.ERROR
    assert "protobuf 4.21.0" in f.message and "tensorflow 2.7.1" in f.message and "protoc 3.9.2" in f.message
    assert "Descriptors cannot be created directly" in f.message and "protobuf>=3.9.2" in f.message
    ev = {e.fact: e for e in f.evidence}
    assert ev["package protobuf"].source.endswith("protobuf-4.21.0.dist-info/METADATA")
    matrix_ev = next(e for e in f.evidence if e.fact.startswith("matrix protoc"))
    assert matrix_ev.value == "3.9.2" and "pypi.org/project/tensorflow/2.7.1/" in matrix_ev.source
    assert 'pip install "protobuf<3.20"' in f.remediation and "TensorFlow >= 2.12.0" in f.remediation
    assert "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python" in f.remediation


@pytest.mark.parametrize(("protobuf", "hits"), [("3.19.6", 0), ("3.20.3", 0), ("4.21.0", 1), ("5.29.3", 1)])
def test_protobuf_boundary(matrix, protobuf, hits):
    """3.20.x still imports protoc-3.9 code (its C++ backend allows calls from _pb2 files); 4.21.0 is the first
    release whose upb backend refuses them (protocolbuffers/protobuf#10051)."""
    findings, _ = run_rule(legacy_env("2.7.1", TF_271, {"protobuf": protobuf}), matrix, "TFC110")
    assert len(findings) == hits


def test_the_builds_own_generated_code_decides(matrix):
    # a rebuilt 2.7.1 (conda, source) whose graph_pb2.py uses the descriptor pool imports under protobuf 4.x
    env = legacy_env("2.7.1", TF_271, {"protobuf": "4.21.0"}, pb2_path=PB2, pb2_gencode="pool")
    assert run_rule(env, matrix, "TFC110")[0] == []
    # and old generated code in a release the matrix says was regenerated is judged from the file
    env = legacy_env("2.12.0", ("protobuf>=3.20.3",), {"protobuf": "4.21.12"}, pb2_path=PB2, pb2_gencode="descriptors")
    (f,), _ = run_rule(env, matrix, "TFC110")
    assert any(e.source == PB2 and "protoc < 3.19" in e.value for e in f.evidence)


def test_tf_2110_capped_metadata_is_left_to_tfc103(matrix):
    """tensorflow/tensorflow#60460: TF 2.11 with a protobuf 4.x that another package pulled in, "Descriptors
    cannot not be created directly". TF 2.11 pins protobuf<3.20 itself, so TFC103 says it; TFC110 stays quiet."""
    env = legacy_env("2.11.0", TF_2110, {"protobuf": "4.22.1", "numpy": "1.23.5"}, python="3.10.9")
    findings, skips = run_rule(env, matrix, "TFC110")
    assert findings == [] and "TFC103 reports it" in skips[0].reason
    (f103,), _ = run_rule(env, matrix, "TFC103")
    assert "protobuf" in f103.message and "4.22.1" in f103.message


def test_tfc110_unknown_generated_code_is_skipped(matrix):
    env = legacy_env("2.3.0", ("protobuf>=3.9.2",), {"protobuf": "4.21.0"})  # not in the matrix, no file read
    findings, skips = run_rule(env, matrix, "TFC110")
    assert findings == [] and "is unknown" in skips[0].reason


# -- TFC111 -----------------------------------------------------------------------------------------------


def test_tf_15_built_with_numpy_114_on_numpy_113(matrix):
    """tensorflow/tensorflow#16488: TF 1.5.0 (Python 3.6) on Travis' Ubuntu 14.04 with NumPy 1.13: "RuntimeError:
    module compiled against API version 0xc but this version of numpy is 0xb", "numpy.core.multiarray failed to
    import", then an abort. TF 1.5.0 states numpy>=1.12.1; its modules need the 1.14 C API (0xc). A legacy
    matrix row states it (the 1.5 wheels ship no NumPy headers)."""
    legacy = parse_matrix(
        '[meta]\nschema = 1\nupdated = "2026-12-07"\n\n[[tensorflow]]\nversions = "==1.5.0"\nreleases = ["1.5.0"]\n'
        'python = ">=3.6,<3.7"\nnumpy_built_with = "1.14"\n'
        'source = ["https://github.com/tensorflow/tensorflow/issues/16488"]\nchecked = "2026-12-07"\n',
        "legacy.toml",
    )
    env = legacy_env("1.5.0", ("numpy>=1.12.1", "protobuf>=3.4.0"), {"numpy": "1.13.3"}, python="3.6.3")
    (f,), _ = run_rule(env, legacy, "TFC111")
    assert f.severity is Severity.ERROR
    assert "NumPy 1.13.3" in f.message and "NumPy >= 1.14" in f.message
    assert "API version 0xc but this version of numpy is 0xb" in f.message
    assert f.remediation.startswith('pip install "numpy>=1.14,<2"')


def test_tf_27_on_numpy_115_matrix_floor(matrix):
    """TF 2.7 states numpy>=1.14.5 but its wheels ship NumPy 1.19 headers (C API 0xd, NumPy >= 1.16): the same
    gap as tensorflow/tensorflow#12185 ("numpy >= 1.11.0 is not sufficient", a TF whose declared floor is below
    the C API it was compiled against). One minor below the floor fails, the floor itself imports."""
    env = legacy_env("2.7.0", TF_271, {"numpy": "1.15.4", "protobuf": "3.19.6"}, python="3.7.16")
    (f,), _ = run_rule(env, matrix, "TFC111")
    assert "need NumPy >= 1.16" in f.message
    # NumPy 1.15 has no numpy.core._multiarray_umath, which 1.16+ headers import (seen on the real 2.7.1 wheel)
    assert "No module named 'numpy.core._multiarray_umath'" in f.message
    assert any(e.fact.startswith("matrix numpy_built_with") and e.value == "1.19" for e in f.evidence)
    assert f.remediation.startswith('pip install "numpy>=1.16,<2"')
    env = legacy_env("2.7.0", TF_271, {"numpy": "1.16.0", "protobuf": "3.19.6"}, python="3.7.16")
    assert run_rule(env, matrix, "TFC111")[0] == []


def test_source_build_headers_beat_the_matrix(matrix):
    """tensorflow/tensorflow#55377: TF 2.4.4 built from source (Debian 10, Python 3.7) next to NumPy 1.19.x:
    "module compiled against API version 0xe but this version of numpy is 0xd". The official 2.4 wheels are
    built with NumPy 1.19 (the matrix); this build's own headers say 1.21 (0xe), and they decide."""
    build = {"numpy_headers_path": NPY, "numpy_built_with": "1.21", "numpy_c_api": "0xe"}
    env = legacy_env("2.4.4", ("numpy~=1.19.2",), {"numpy": "1.19.5", "protobuf": "3.19.6"}, python="3.7.3", **build)
    (f,), _ = run_rule(env, matrix, "TFC111")
    assert "NumPy 1.21 headers" in f.message and "0xe but this version of numpy is 0xd" in f.message
    assert any(e.source == NPY and "0xe" in e.value for e in f.evidence)
    assert "numpy~=1.19.2" in f.message or any("numpy~=1.19.2" in e.value for e in f.evidence)
    # no NumPy is both ~=1.19.2 and >= 1.20: the fix says so instead of an unsatisfiable pip command
    assert f.remediation.startswith("No NumPy meets both: tensorflow's own requirement numpy~=1.19.2 admits no NumPy")
    assert "pip install" not in f.remediation
    # the official wheel (no headers read: the matrix's 1.19) is fine with 1.19.5
    env = legacy_env("2.4.4", ("numpy~=1.19.2",), {"numpy": "1.19.5", "protobuf": "3.19.6"}, python="3.7.3")
    assert run_rule(env, matrix, "TFC111")[0] == []


def test_numpy2_build_floor_is_its_target_not_2_0(matrix):
    # TF 2.18 is built with NumPy 2.0 headers, whose default target is 1.19's C API: NumPy 1.26 imports it
    assert numpy_floor(Version("2.0")) == (Version("1.16"), 0xD)
    assert numpy_floor(Version("2.1")) == (Version("1.20"), 0xE)
    assert numpy_floor(Version("1.21")) == (Version("1.20"), 0xE)
    env = make_env(tf_builds=[tf_build("2.18.0")], packages={"numpy": "1.26.4", "protobuf": "5.29.3"})
    assert run_rule(env, matrix, "TFC111")[0] == []


def test_numpy_below_tf_metadata_is_left_to_tfc103(matrix):
    env = legacy_env("2.11.0", TF_2110, {"numpy": "1.19.5", "protobuf": "3.19.6"}, python="3.9.18")
    findings, skips = run_rule(env, matrix, "TFC111")
    assert findings == [] and "TFC103 reports it" in skips[0].reason
    (f103,), _ = run_rule(env, matrix, "TFC103")
    assert "numpy>=1.20" in f103.message


def test_tfc111_unknown_build_is_skipped(matrix):
    env = legacy_env("2.3.0", ("numpy<1.19.0,>=1.16.0",), {"numpy": "1.16.0"})
    findings, skips = run_rule(env, matrix, "TFC111")
    assert findings == [] and "is unknown" in skips[0].reason


# -- every row of the matrix ------------------------------------------------------------------------------

NUMPYS = ("1.19.5", "1.20.3", "1.21.6", "1.22.4", "1.23.5", "1.24.3", "1.26.4", "2.0.2", "2.1.3")


def _healthy(row):
    """protobuf and NumPy a healthy install of `row` has: the oldest NumPy its metadata allows at or above the build's
    floor; a protobuf its metadata allows that imports its generated code."""
    floor = numpy_floor(row.numpy_built_with)[0]
    numpy = next(n for n in NUMPYS if Version(n) >= floor and (row.numpy is None or row.numpy.contains(n)))
    protobuf = "3.19.6" if row.protoc < Version("3.19") else str(row.protoc).replace("3.21.9", "4.21.9")
    if row.protobuf is not None and not row.protobuf.contains(protobuf):
        protobuf = next(p for p in ("3.20.3", "4.25.3", "5.29.3", "6.31.1") if row.protobuf.contains(p))
    return numpy, protobuf


def test_every_row_states_both_facts_and_healthy_rows_give_nothing(matrix):
    rows = [r for r in matrix.tensorflow if r.releases and Version(r.releases[0]) >= Version("2.4")]
    assert len(rows) == 28
    for row in rows:
        assert row.protoc is not None and row.numpy_built_with is not None, row.label
        numpy, protobuf = _healthy(row)
        requires = tuple(f"{n}{spec}" for n, spec in (("numpy", row.numpy), ("protobuf", row.protobuf)) if spec)
        env = legacy_env(row.releases[-1], requires, {"numpy": numpy, "protobuf": protobuf})
        for rule_id in ("TFC110", "TFC111"):
            assert run_rule(env, matrix, rule_id)[0] == [], (row.label, rule_id, numpy, protobuf)


def test_where_metadata_leaves_the_floor_open(matrix):
    """The matrix's own view of the gaps TFC110/TFC111 close: the rows with protoc-3.9 code and no protobuf cap,
    and the one NumPy range that reaches below its build's C API (2.7.x: numpy>=1.14.5, built with 1.19)."""
    protobuf_gap = [
        r.releases[0]
        for r in matrix.tensorflow
        if r.protoc is not None
        and r.protoc < Version("3.19")
        and r.protobuf is not None
        and r.protobuf.contains("4.21.0")
    ]
    assert protobuf_gap == ["2.4.0", "2.5.0", "2.6.0", "2.6.2", "2.7.0", "2.8.0", "2.9.0"]
    numpy_gap = [
        r.releases[0]
        for r in matrix.tensorflow
        if r.numpy_built_with is not None
        and r.numpy is not None
        and any(r.numpy.contains(n) and Version(n) < numpy_floor(r.numpy_built_with)[0] for n in ("1.14.5", "1.15.4"))
    ]
    assert numpy_gap == ["2.7.0", "2.7.3"]
    assert c_api(Version("1.15.4")) == 0xC and SpecifierSet(">=1.14.5").contains("1.15.4")


# -- the import probe names the static cause (TFC702's tie) ----------------------------------------------------


def _failed_import(error: str, pattern: str):
    from tfcompat.model import LogLine, ProbeResult, ProbeStep

    return ProbeResult(
        python="/venv/bin/python",
        outcome="error",
        exit_code=1,
        signal=None,
        failing_step="import tensorflow",
        error=error,
        traceback=f"Traceback ...\n{error}",
        steps=(ProbeStep("import tensorflow", "error", None, error, 5),),
        tensorflow_version=None,
        tensorflow_path=None,
        devices=(),
        libraries=(),
        libraries_source="",
        log_lines=(LogLine(pattern, "fatal", error, 1, "test"),),
        output_tail="",
        output_bytes=0,
        timeout_s=120,
        duration_ms=2000,
    )


def test_probe_ties_a_descriptors_failure_to_tfc110(matrix):
    """The real tensorflow-cpu 2.7.1 + protobuf 4.21.0 import (2026-12-07), as --probe records it."""
    env = legacy_env("2.7.1", TF_271, {"protobuf": "4.21.0"})
    error = "TypeError: Descriptors cannot not be created directly."
    env = dataclasses.replace(env, probe=_failed_import(error, "protobuf-descriptors"))
    (f,), _ = run_rule(env, matrix, "TFC702")
    assert "explained by TFC110 protobuf-too-new-for-generated-code" in f.message and "protoc 3.9.2" in f.message
    assert f.remediation.startswith('pip install "protobuf<3.20"')


def test_probe_ties_a_numpy_api_failure_to_tfc111(matrix):
    """The real tensorflow-cpu 2.7.1 + NumPy 1.15.4 import (2026-12-07): the C API check fails first."""
    env = legacy_env("2.7.1", TF_271, {"protobuf": "3.20.3", "numpy": "1.15.4"}, python="3.7.16")
    error = "ModuleNotFoundError: No module named 'numpy.core._multiarray_umath'"
    env = dataclasses.replace(env, probe=_failed_import(error, "numpy-core-import-failed"))
    (f,), _ = run_rule(env, matrix, "TFC702")
    assert "explained by TFC111 numpy-older-than-build" in f.message and "NumPy >= 1.16" in f.message
    assert f.remediation.startswith('pip install "numpy>=1.16"')


# -- the skip and fallback branches (mutation run, 2026-12-07) ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version"), [("protobuf", None), ("protobuf", "3.x"), ("numpy", None), ("numpy", "1.x")]
)
def test_missing_or_unparsable_package_is_skipped(matrix, name, version):
    """protobuf / NumPy absent or with a version that is not a version: TFC110 / TFC111 say they cannot judge
    (rather than compare None with a floor and crash)."""
    env = legacy_env("2.7.1", TF_271, {"protobuf": "4.21.0", "numpy": "1.15.4", name: version})
    rule_id = "TFC110" if name == "protobuf" else "TFC111"
    findings, skips = run_rule(env, matrix, rule_id)
    assert findings == [] and "is not installed, or its version is not a version" in skips[0].reason


def test_tf_without_dist_info_metadata_still_gets_tfc110(matrix):
    """A TF tree with no METADATA of its own (copied in, or a conda build without dist-info): nothing states a
    protobuf range, and TFC110 still reports protoc-3.9 code under protobuf 4.21 (tensorflow/tensorflow#56266)."""
    env = legacy_env("2.7.1", TF_271, {"protobuf": "4.21.0"})
    others = tuple(p for p in env.target.packages if p.name != "tensorflow")
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, packages=others))
    (f,), _ = run_rule(env, matrix, "TFC110")
    assert "its metadata states no protobuf range" in f.message
    assert not any("Requires-Dist" in e.fact for e in f.evidence)


def test_numpy2_build_on_numpy_119_names_the_numpy2_symptom(matrix):
    """A TF built with NumPy 2.1 headers (target: 1.21's C API 0xe) whose metadata states no NumPy range, on
    NumPy 1.19.5 (C API 0xd): NumPy 2's import_array() wording, and no `<2` cap (a NumPy-2 build runs on 2.x)."""
    build = {"numpy_headers_path": NPY, "numpy_built_with": "2.1", "numpy_c_api": "0x13"}
    env = legacy_env(
        "2.19.0", ("protobuf>=3.20.3",), {"numpy": "1.19.5", "protobuf": "4.25.3"}, python="3.9.18", **build
    )
    (f,), _ = run_rule(env, matrix, "TFC111")
    assert "need NumPy >= 1.20" in f.message
    assert "compiled against NumPy C-API version 0xe ... but the running NumPy has C-API version 0xd" in f.message
    assert f.remediation.startswith('pip install "numpy>=1.20"  ')


def test_c_api_beyond_the_table_is_skipped(matrix):
    """Headers that state only NPY_API_VERSION 0x12 (NumPy >= 1.25 targets an older API that the version decides):
    no floor can be derived, and TFC111 says so instead of reporting."""
    build = {"numpy_headers_path": NPY, "numpy_built_with": None, "numpy_c_api": "0x12"}
    env = legacy_env("2.16.1", (), {"numpy": "1.19.5", "protobuf": "4.25.3"}, python="3.11.7", **build)
    findings, skips = run_rule(env, matrix, "TFC111")
    assert findings == [] and "beyond tfcompat's NumPy table" in skips[0].reason


def test_probe_ties_stay_silent_on_a_healthy_install(matrix):
    """TFC702's static causes: a protobuf below 4.21 imports protoc-3.9 code, a NumPy at the floor imports the
    modules, so neither names a cause (an import failure there has another one)."""
    from tfcompat.rules.abi_floors import numpy_below_build, protobuf_gencode_conflict

    env = legacy_env("2.7.1", TF_271, {"protobuf": "3.20.3", "numpy": "1.16.0"}, python="3.7.16")
    assert protobuf_gencode_conflict(env, matrix) is None and numpy_below_build(env, matrix) is None
    env = legacy_env("2.7.1", TF_271, {"protobuf": "4.21.0", "numpy": "1.15.4"}, python="3.7.16")
    assert protobuf_gencode_conflict(env, matrix) == "protoc 3.9.2"
    assert numpy_below_build(env, matrix) == Version("1.16")


def test_numpy_116_is_past_the_multiarray_umath_symptom(matrix):
    """NumPy 1.16 introduced numpy.core._multiarray_umath: a build with NumPy 1.21 headers (C API 0xe) on exactly
    1.16.0 fails the C API check ("0xe but this version of numpy is 0xd", as tensorflow/tensorflow#55377 shows for
    1.19), not the missing-module error NumPy 1.15 gives."""
    build = {"numpy_headers_path": NPY, "numpy_built_with": "1.21", "numpy_c_api": "0xe"}
    env = legacy_env("2.7.0", TF_271, {"numpy": "1.16.0", "protobuf": "3.19.6"}, python="3.7.16", **build)
    (f,), _ = run_rule(env, matrix, "TFC111")
    assert "module compiled against API version 0xe but this version of numpy is 0xd" in f.message
    assert "_multiarray_umath" not in f.message


def test_matrix_numpy2_build_without_metadata(matrix):
    """TF 2.19.0 (matrix: NumPy 2.1 headers, C API target 0xe) without a METADATA of its own on NumPy 1.19.5:
    NumPy 2's wording, and no `<2` cap in the fix (a NumPy-2 build runs on 2.x too)."""
    env = legacy_env("2.19.0", (), {"numpy": "1.19.5", "protobuf": "4.25.3"}, python="3.9.18")
    others = tuple(p for p in env.target.packages if p.name != "tensorflow")
    env = dataclasses.replace(env, target=dataclasses.replace(env.target, packages=others))
    (f,), _ = run_rule(env, matrix, "TFC111")
    assert "need NumPy >= 1.20" in f.message and "but the running NumPy has C-API version 0xd" in f.message
    assert f.remediation.startswith('pip install "numpy>=1.20"  ')


@pytest.mark.parametrize(
    ("c_api_hex", "numpy", "floor"),
    [("0x10", "1.22.4", "1.23"), ("0x11", "1.22.4", None)],
)
def test_headers_with_only_the_c_api_version(matrix, c_api_hex, numpy, floor):
    """_numpyconfig.h read, numpy version not: NPY_API_VERSION 0x10 (NumPy 1.23/1.24 headers) sets the floor 1.23;
    0x11 (1.25 headers) targets an older API chosen at build time, which the API version alone does not say."""
    build = {"numpy_headers_path": NPY, "numpy_built_with": None, "numpy_c_api": c_api_hex}
    env = legacy_env("2.16.1", (), {"numpy": numpy, "protobuf": "4.25.3"}, python="3.11.7", **build)
    findings, skips = run_rule(env, matrix, "TFC111")
    if floor is None:
        assert findings == [] and "C API 0x11 headers" in skips[0].reason
        return
    (f,) = findings
    assert f"need NumPy >= {floor}" in f.message and f.remediation.startswith(f'pip install "numpy>={floor},<2"')
    ev = next(e for e in f.evidence if e.fact == "numpy headers")
    assert (ev.value, ev.source) == (f"NumPy ? (NPY_API_VERSION {c_api_hex})", NPY)
