"""The shipped matrix: loader errors, invariants, and facts checked against the fact sheet's sources."""

import dataclasses
import datetime
import itertools

import pytest
from packaging.version import Version

from tfcompat.matrix import (
    MatrixError,
    default_matrix_path,
    invariant_problems,
    load_matrix,
    load_overlay,
    parse_matrix,
    parse_overlay,
    spec_text,
)

# The legacy rows (issue 14): every Linux x86-64 tensorflow-gpu / tensorflow release of 1.5-1.15 and 2.0-2.3 on
# PyPI (1.12.1, 1.13.0 and 1.15.1 were never published).
LEGACY_RELEASES = [
    "1.5.0",
    "1.5.1",
    "1.6.0",
    "1.7.0",
    "1.7.1",
    "1.8.0",
    "1.9.0",
    "1.10.0",
    "1.10.1",
    "1.11.0",
    "1.12.0",
    "1.12.2",
    "1.12.3",
    "1.13.1",
    "1.13.2",
    "1.14.0",
    "1.15.0",
    "1.15.2",
    "1.15.3",
    "1.15.4",
    "1.15.5",
    "2.0.0",
    "2.0.1",
    "2.0.2",
    "2.0.3",
    "2.0.4",
    "2.1.0",
    "2.1.1",
    "2.1.2",
    "2.1.3",
    "2.1.4",
    "2.2.0",
    "2.2.1",
    "2.2.2",
    "2.2.3",
    "2.3.0",
    "2.3.1",
    "2.3.2",
    "2.3.3",
    "2.3.4",
]
# Every Linux x86-64 tensorflow release on PyPI from 2.4.0 to 2.21.0 (pypi.org/project/tensorflow/#history;
# 2.16.0 was never published).
RELEASES = LEGACY_RELEASES + [
    "2.4.0",
    "2.4.1",
    "2.4.2",
    "2.4.3",
    "2.4.4",
    "2.5.0",
    "2.5.1",
    "2.5.2",
    "2.5.3",
    "2.6.0",
    "2.6.1",
    "2.6.2",
    "2.6.3",
    "2.6.4",
    "2.6.5",
    "2.7.0",
    "2.7.1",
    "2.7.2",
    "2.7.3",
    "2.7.4",
    "2.8.0",
    "2.8.1",
    "2.8.2",
    "2.8.3",
    "2.8.4",
    "2.9.0",
    "2.9.1",
    "2.9.2",
    "2.9.3",
    "2.10.0",
    "2.10.1",
    "2.11.0",
    "2.11.1",
    "2.12.0",
    "2.12.1",
    "2.13.0",
    "2.13.1",
    "2.14.0",
    "2.14.1",
    "2.15.0",
    "2.15.0.post1",
    "2.15.1",
    "2.16.1",
    "2.16.2",
    "2.17.0",
    "2.17.1",
    "2.18.0",
    "2.18.1",
    "2.19.0",
    "2.19.1",
    "2.20.0",
    "2.21.0",
]
FACT_SHEET_NAMES = ("compat_facts", "facts/", "shared/")


def all_entries(m):
    singles = [e for e in (m.forward_compatibility, m.cudnn_runtime) if e is not None]
    return list(
        itertools.chain(
            m.tensorflow,
            m.cuda,
            m.cuda_majors,
            m.compute_capabilities,
            m.cudnn,
            m.tensorflow_rocm,
            m.rocm,
            m.companions,
            singles,
        )
    )


def sources_of(entry):
    return entry.source if isinstance(entry.source, tuple) else (entry.source,)


# ---------------------------------------------------------------------------------------------- invariants


def test_every_release_matched_exactly_once(matrix):
    for v in RELEASES:
        hits = [r.label for r in matrix.tensorflow if r.matches(v)]
        assert len(hits) == 1, (v, hits)


def test_entries_list_exactly_the_real_releases(matrix):
    assert matrix.tf_releases() == RELEASES


def test_every_tf_minor_2_4_to_2_21_covered(matrix):
    minors = {Version(r).release[:2] for rel in matrix.tensorflow for r in rel.releases}
    legacy = {(1, m) for m in range(5, 16)} | {(2, 0), (2, 1), (2, 2), (2, 3)}
    assert minors == {(2, m) for m in range(4, 22)} | legacy


def test_every_entry_has_an_original_source_and_a_past_date(matrix):
    today = datetime.date.today()
    entries = all_entries(matrix)
    assert len(entries) > 200
    for entry in entries:
        sources = sources_of(entry)
        assert sources, entry
        for s in sources:
            assert s.startswith("https://") or ("/" in s and ":" in s), (entry, s)  # URL or owner/repo:path
            assert not any(n in s for n in FACT_SHEET_NAMES), (entry, s)  # never the fact sheet itself
        assert entry.checked <= today
    assert matrix.updated <= today


def test_invariant_checker_finds_nothing(matrix):
    assert invariant_problems(matrix) == []


def test_every_cuda_named_has_driver_facts(matrix):
    for rel in matrix.tensorflow:
        assert rel.cuda is not None, rel.label
        assert matrix.cuda_toolkit(str(rel.cuda)) is not None, rel.label
        # CUDA 9 and 10 have no minor-version-compatibility floor: each minor needs its own driver
        assert matrix.cuda_major_info(rel.cuda.major) is not None, rel.label
        assert (matrix.cuda_major(rel.cuda.major) is not None) == (rel.cuda.major >= 11), rel.label


def test_tf_entries_sorted_and_non_overlapping(matrix):
    firsts = [Version(rel.releases[0]) for rel in matrix.tensorflow]
    assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts)
    # boundaries: the version just past each entry's last release falls in the next entry or none
    for a, b in zip(matrix.tensorflow, matrix.tensorflow[1:]):
        assert not any(a.matches(r) for r in b.releases), (a.label, b.label)
        assert not any(b.matches(r) for r in a.releases), (a.label, b.label)


def test_cuda_sorted_and_driver_floors_monotonic(matrix):
    cuda = [t.version for t in matrix.cuda]
    assert cuda == sorted(cuda) and len(set(cuda)) == len(cuda)
    drivers = [t.min_driver for t in matrix.cuda]
    assert drivers == sorted(drivers)
    windows = [t.min_driver_windows for t in matrix.cuda if t.min_driver_windows is not None]
    assert windows == sorted(windows)


def test_companion_ranges_disjoint_per_package(matrix):
    by_pkg = {}
    for c in matrix.companions:
        by_pkg.setdefault(c.package, []).append(c)
    assert set(by_pkg) == {
        "tensorflow-text",
        "tensorflow-io",
        "tensorflow-addons",
        "tensorflow-decision-forests",
        "tensorflow-recommenders-addons",
        "tf-keras",
        "tensorflow-probability",
    }
    probes = [f"0.{a}.{b}" for a in range(10, 40) for b in range(3)] + [
        f"1.{a}.{b}" for a in range(13) for b in range(3)
    ]
    probes += [f"2.{a}.{b}" for a in range(4, 22) for b in range(3)]
    for pkg, entries in by_pkg.items():
        for v in probes:
            assert sum(c.versions.contains(v) for c in entries) <= 1, (pkg, v)


def test_unconfirmed_entries_say_why(matrix):
    flagged = [e for e in all_entries(matrix) if getattr(e, "confirmed", True) is False]
    assert flagged, "the ROCm 5.5-5.7 rows disagree between AMD's pages"
    assert all(e.note for e in flagged)


# ---------------------------------------------------------------------------------------------- facts


@pytest.mark.parametrize(
    "version, cuda, cudnn, ccs",
    [
        ("2.21.0", "12.5.1", "9.3", ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"]),
        ("2.16.2", "12.3", "8.9", ["sm_50", "sm_60", "sm_70", "sm_80", "compute_90"]),
        ("2.15.0.post1", "12.2", "8.9", ["sm_50", "sm_60", "sm_70", "sm_75", "compute_80"]),
        ("2.12.1", "11.8", "8.6", ["sm_35", "sm_50", "sm_60", "sm_70", "sm_75", "compute_80"]),
        ("2.4.4", "11.0", "8.0", ["sm_35", "sm_50", "sm_60", "sm_70", "sm_75", "compute_80"]),
        ("2.9.3", "11.2", "8.1", ["sm_35", "sm_50", "sm_60", "sm_70", "sm_75", "compute_80"]),
    ],
)
def test_build_facts(matrix, version, cuda, cudnn, ccs):
    rel = matrix.tf_release(version)
    assert str(rel.cuda) == cuda and str(rel.cudnn) == cudnn and list(rel.compute_capabilities) == ccs


@pytest.mark.parametrize(
    "version, field, expected",
    [
        ("2.7.2", "protobuf", ">=3.9.2"),  # no cap before 2.7.3
        ("2.7.3", "protobuf", ">=3.9.2,<3.20"),
        ("2.8.1", "protobuf", ">=3.9.2"),
        ("2.8.2", "protobuf", ">=3.9.2,<3.20"),
        ("2.9.0", "protobuf", ">=3.9.2"),
        ("2.9.1", "protobuf", ">=3.9.2,<3.20"),
        ("2.6.1", "keras", "~=2.6"),
        ("2.6.2", "keras", ">=2.6.0,<2.7"),
        ("2.12.0", "numpy", ">=1.22,<1.24"),
        ("2.12.1", "numpy", ">=1.22,<=1.24.3"),
        ("2.14.0", "numpy", ">=1.23.5"),
        ("2.14.1", "numpy", ">=1.23.5,<2.0.0"),
        ("2.15.0", "ml_dtypes", "~=0.2.0"),
        ("2.15.1", "ml_dtypes", "~=0.3.1"),
        ("2.18.0", "ml_dtypes", ">=0.4.0,<0.5.0"),
        ("2.18.1", "ml_dtypes", ">=0.4.0,<1.0.0"),
        ("2.21.0", "protobuf", ">=6.31.1,<8.0.0"),
        ("2.21.0", "h5py", ">=3.11.0,<3.15.0"),
    ],
)
def test_requires_dist_splits_between_patch_releases(matrix, version, field, expected):
    assert spec_text(getattr(matrix.tf_release(version), field)) == expected


def test_abi_and_platform_facts(matrix):
    old, new, last = matrix.tf_release("2.8.4"), matrix.tf_release("2.9.0"), matrix.tf_release("2.21.0")
    assert (old.cxx11_abi, str(old.glibc), old.manylinux) == (0, "2.12", "manylinux2010_x86_64")
    assert (new.cxx11_abi, str(new.glibc), new.manylinux) == (1, "2.17", "manylinux_2_17_x86_64.manylinux2014_x86_64")
    assert (str(last.glibc), str(last.glibcxx), str(last.cxxabi), last.manylinux) == (
        "2.27",
        "3.4.22",
        "1.3.11",
        "manylinux_2_27_x86_64",
    )
    assert matrix.tf_release("2.13.0").compiler.startswith("Clang 16")
    assert [r.numpy_abi for r in matrix.tensorflow if r.matches("2.17.1") or r.matches("2.18.0")] == [1, 2]


def test_tensorrt_and_and_cuda(matrix):
    assert matrix.tf_release("2.4.0").tensorrt is None  # key absent from the 2.4 build_info
    assert matrix.tf_release("2.10.0").tensorrt_lib == "libnvinfer.so.7"
    assert matrix.tf_release("2.16.1").tensorrt_lib == "libnvinfer.so.8.6.1"
    assert matrix.tf_release("2.18.0").tensorrt is False
    pins = lambda v: {k: spec_text(s) for k, s in matrix.tf_release(v).and_cuda}  # noqa: E731
    assert pins("2.13.1") == {}
    assert pins("2.14.0")["tensorrt"] == "==8.5.3.1" and pins("2.14.0")["nvidia-cudnn-cu11"] == "==8.7.0.84"
    assert pins("2.15.0")["tensorrt"] == "==8.6.1.post1"
    assert "tensorrt" not in pins("2.15.0.post1") and len(pins("2.15.0")) - len(pins("2.15.0.post1")) == 3
    assert pins("2.21.0")["nvidia-cudnn-cu12"] == ">=9.3.0.75,<10.0"
    assert pins("2.20.0")["nvidia-nccl-cu12"] == ">=2.25.1,<3.0"


def test_cuda_lookups(matrix):
    assert matrix.cuda_toolkit("12.5").min_driver_text == "555.42.02"
    assert matrix.cuda_toolkit("12.5.1").min_driver_text == "555.42.06"
    assert matrix.cuda_toolkit("11.8").min_driver_text == "520.61.05"
    assert matrix.cuda_toolkit("12.7") is None
    assert str(matrix.cuda_toolkit("11.0").version) == "11.0.2"  # GA, not the 11.0.1 RC
    assert matrix.cuda_toolkit("10.1.243").min_driver_text == "418.39"  # "10.1.105 general release, and updates"
    assert matrix.cuda_toolkit("13.2.2").label == "CUDA 13.2 Update 2"
    assert matrix.cuda_toolkit("13.2.2").min_driver_windows is None
    assert matrix.cuda_major(12).min_driver_text == "525.60.13"
    assert matrix.cuda_major(13).min_driver_text == "580.65.06"
    assert matrix.cuda_major(10) is None and matrix.cuda_major_info(10).minor_version_compatibility is False


def test_every_release_notes_row_8_0_to_13_2_update_2(matrix):
    assert len(matrix.cuda) == 62
    assert [t.label for t in matrix.cuda[:9]] == [
        "CUDA 8.0 (8.0.44)",
        "CUDA 8.0 (8.0.61 GA2)",
        "CUDA 9.0 (9.0.76)",
        "CUDA 9.1 (9.1.85)",
        "CUDA 9.2 (9.2.88)",
        "CUDA 9.2 (9.2.148 Update 1)",
        "CUDA 10.0.130",
        "CUDA 10.1 (10.1.105 general release, and updates)",
        "CUDA 10.2.89",
    ]
    assert {t.update for t in matrix.cuda} == {"GA", "GA2", "RC"} | {f"Update {n}" for n in range(1, 5)}


def test_driver_need(matrix):
    need = matrix.driver_need("11.0")
    assert (need.full_text, need.floor_text) == ("450.51.05", "450.51.05")  # below the 11.x floor 450.80.02
    need = matrix.driver_need("11.2")
    assert (need.full_text, need.floor_text) == ("460.27.03", "450.80.02")
    need = matrix.driver_need("10.1")
    assert (need.full_text, need.floor_text) == ("418.39", "418.39")
    assert matrix.driver_need("12.7").toolkit is None


@pytest.mark.parametrize(
    "loaded, compiled, ok",
    [
        ("9.1.0", "9.3.0", False),
        ("9.10.2", "9.3.0", True),
        ("8.9.7", "9.3", False),
        ("8.6.0", "8.9.4", False),
        ("8.9.7", "8.9.4", True),
        ("8.9.0", "8.9.4", True),
    ],
)
def test_cudnn_runtime_rule(matrix, loaded, compiled, ok):
    assert matrix.cudnn_compatible(loaded, compiled) is ok


def test_cudnn_support_matrix(matrix):
    rows = [c for c in matrix.cudnn if c.versions.contains("9.17.0.29")]
    assert {c.cuda_major for c in rows} == {12, 13}
    assert not any(c.supports_cc("7.0") for c in rows) and all(c.supports_cc("8.6") for c in rows)
    assert [c.min_driver_text for c in rows if c.cuda_major == 13] == ["580.65.06"]


def test_compute_capability_table(matrix):
    assert str(matrix.compute_capability("3.7").last_cuda) == "11.8"
    assert str(matrix.compute_capability("8.6").first_cuda) == "11.1"
    assert str(matrix.compute_capability("sm_89").first_cuda) == "11.8"
    assert str(matrix.compute_capability("12.0").first_cuda) == "12.8"
    assert matrix.compute_capability("6.1").cuda_can_build(Version("12.9"))
    assert not matrix.compute_capability("6.1").cuda_can_build(Version("13.0"))


def test_rocm_and_companions(matrix):
    (rocm,) = [r for r in matrix.tensorflow_rocm if "2.14.0.600" in r.releases]
    assert str(rocm.rocm) == "6.0.0" and "gfx90a" in rocm.gfx and "gfx942" not in rocm.gfx
    (r63,) = [r for r in matrix.rocm if r.rocm.contains("6.3.1")]
    assert r63.tensorflow == ("2.15.1", "2.16.2", "2.17.0")
    for minor in range(4, 22):
        text = [c for c in matrix.companions_for(f"2.{minor}.1") if c.package == "tensorflow-text"]
        assert len(text) == 1 and text[0].versions.contains(f"2.{minor}.1")
        # tensorflow-text 2.21.0 declares TF 2.21 but its wheel is broken (icudt77_dat): not recommended
        assert text[0].versions.contains(f"2.{minor}.0") == (minor != 21)
    io = [c for c in matrix.companions_for("2.16.2") if c.package == "tensorflow-io"]
    assert {spec_text(c.versions) for c in io} == {"==0.37.1", "==0.37.0"}
    assert not [c for c in matrix.companions_for("2.17.0") if c.package == "tensorflow-io"]
    (tfa,) = [c for c in matrix.companions if c.package == "tensorflow-addons" and c.versions.contains("0.23.0")]
    assert spec_text(tfa.abi_tensorflow) == ">=2.15.0,<2.16.0"


# ---------------------------------------------------------------------------------------------- loader


GOOD = """
[meta]
schema = 1
updated = "2026-11-25"

[[tensorflow]]
versions = ">=2.15.0,<2.16"
releases = ["2.15.1"]
python = ">=3.9,<3.12"
cuda = "12.2"
cudnn = "8.9"
source = "https://www.tensorflow.org/install/source#gpu"
checked = "2026-03-11"

[tensorflow.and_cuda]
"nvidia-cudnn-cu12" = "==8.9.4.25"

[[cuda]]
version = "12.2.0"
update = "GA"
min_driver = "535.54.03"
source = "https://docs.nvidia.com/cuda/archive/13.2.2/cuda-toolkit-release-notes/index.html"
checked = "2026-11-25"

[[cuda_major]]
major = 12
min_driver = "525.60.13"
source = "https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html"
checked = "2026-11-25"

[[companion]]
package = "tensorflow-text"
versions = ">=2.15.0,<2.16.0"
tensorflow = ">=2.15.0,<2.16"
native = true
source = "https://github.com/tensorflow/text/blob/v2.15.0/oss_scripts/pip_package/setup.py"
checked = "2026-11-25"
"""


def test_minimal_file_parses():
    m = parse_matrix(GOOD, "m.toml")
    assert m.tf_release("2.15.1").cudnn == Version("8.9")
    assert invariant_problems(m) == []


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            ('cudnn = "8.9"', 'cudnn = "8.x"'),
            "m.toml: [[tensorflow]] #1 '>=2.15.0,<2.16': cudnn '8.x' is not a version",
        ),
        (('python = ">=3.9,<3.12"', 'python = "3.9+"'), "python '3.9+' is not a PEP 440 specifier"),
        (
            ('cuda = "12.2"', 'cuda = "12.2"\ncudnn_major = 8'),
            "[[tensorflow]] #1 '>=2.15.0,<2.16': unknown key 'cudnn_major'",
        ),
        (('source = "https://www.tensorflow.org/install/source#gpu"\n', ""), "missing required key 'source'"),
        (('checked = "2026-03-11"', 'checked = "March"'), "checked 'March' is not a date"),
        (("schema = 1", "schema = 2"), "[meta] schema 2 is not supported"),
        (('cuda = "12.2"', "cuda = 12.2"), "cuda 12.2 is not a string"),
        (("[[tensorflow]]", "[[tensorflw]]"), "unknown table 'tensorflw'"),
        (('versions = ">=2.15.0,<2.16"', 'versions = ">=2.15.0,<2.16'), "m.toml: not valid TOML"),
        (
            ('releases = ["2.15.1"]', 'releases = ["2.16.1"]'),
            "[[tensorflow]] #1 '>=2.15.0,<2.16': releases '2.16.1' is not matched by versions",
        ),
        (
            ('"nvidia-cudnn-cu12" = "==8.9.4.25"', '"nvidia-cudnn-cu12" = "8.9.4"'),
            "[[tensorflow]] #1 '>=2.15.0,<2.16': and_cuda.nvidia-cudnn-cu12 '8.9.4' is not a PEP 440 specifier",
        ),
        (('update = "GA"', 'update = "Update one"'), "[[cuda]] #1 '12.2.0': update 'Update one' must be"),
        (
            ('min_driver = "535.54.03"', 'min_driver = "r535"'),
            "[[cuda]] #1 '12.2.0': min_driver 'r535' is not a version",
        ),
        (
            ('major = 12\nmin_driver = "525.60.13"', "major = 12"),
            "[[cuda_major]] #1 12: min_driver is required unless minor_version_compatibility = false",
        ),
        (("native = true", 'native = "yes"'), "[[companion]] #1 'tensorflow-text': native 'yes' is not true or false"),
        (("native = true", 'native = true\nabi = "2.15"'), "[[companion]] #1 'tensorflow-text': unknown key 'abi'"),
        (
            (
                'source = "https://github.com/tensorflow/text/blob/v2.15.0/oss_scripts/pip_package/setup.py"',
                'source = "setup.py"',
            ),
            "[[companion]] #1 'tensorflow-text': source 'setup.py' is neither a URL nor a repository path",
        ),
    ],
)
def test_broken_matrix_one_line_error(edit, message):
    old, new = edit
    assert old in GOOD
    with pytest.raises(MatrixError) as err:
        parse_matrix(GOOD.replace(old, new, 1), "m.toml")
    text = str(err.value)
    assert message in text
    assert "\n" not in text


def test_release_matched_twice_is_an_error():
    doubled = GOOD.replace(
        "[[cuda]]",
        """[[tensorflow]]
versions = "==2.15.1"
releases = ["2.15.1"]
python = ">=3.9"
source = "https://pypi.org/project/tensorflow/2.15.1/"
checked = "2026-03-11"

[[cuda]]""",
        1,
    )
    with pytest.raises(MatrixError, match=r"releases '2.15.1' is also matched by \[\[tensorflow\]\] #2"):
        parse_matrix(doubled, "m.toml")


def test_broken_shipped_matrix_names_entry_and_field():
    text = default_matrix_path().read_text(encoding="utf-8")
    entry = 'versions = ">=2.15.1,<2.16.0"'
    assert text.count(entry) == 1
    start = text.index(entry)
    cudnn = text.index('cudnn = "8.9"', start)
    broken = text[:cudnn] + 'cudnn = "8.9.x"' + text[cudnn + len('cudnn = "8.9"') :]
    with pytest.raises(MatrixError) as err:
        parse_matrix(broken, "compat_matrix.toml")
    assert str(err.value) == (
        "compat_matrix.toml: [[tensorflow]] #44 '>=2.15.1,<2.16.0': cudnn '8.9.x' is not a version"
    )


def test_invariants_catch_what_shape_checks_cannot():
    m = parse_matrix(GOOD, "m.toml")
    future = datetime.date.today() + datetime.timedelta(days=2)
    bad = dataclasses.replace(
        m, tensorflow=(dataclasses.replace(m.tensorflow[0], checked=future, cuda=Version("12.3")),)
    )
    problems = invariant_problems(bad)
    assert any("cuda 12.3 has no [[cuda]] entry" in p for p in problems)
    assert any(f"checked {future} is in the future" in p for p in problems)
    twice = dataclasses.replace(m, companions=m.companions * 2)
    assert any("overlaps" in p for p in invariant_problems(twice))


def test_missing_file(tmp_path):
    with pytest.raises(MatrixError, match="cannot read matrix"):
        load_matrix(tmp_path / "nope.toml")


def test_shipped_matrix_is_found():
    assert default_matrix_path().is_file()


# ---------------------------------------------------------------------------------------------- overlay


OVERLAY = """
[meta]
schema = 1
kind = "overlay"
updated = "2026-11-20"

[[known_bad_driver]]
versions = ">=550.54.14,<550.90"
reason = "Xid 79 under NCCL all-reduce on our A100 nodes"
severity = "error"
source = "https://tickets.example.org/HPC-1234"
checked = "2026-11-20"

[[waiver]]
rule = "TFC105"
reason = "numpy 2 pinned by the data team; TF import tested in CI"
checked = "2026-11-20"
"""


def test_overlay_parses_and_merges(matrix):
    ov = parse_overlay(OVERLAY, "site.toml")
    assert [k.reason for k in ov.known_bad_drivers] == ["Xid 79 under NCCL all-reduce on our A100 nodes"]
    merged = matrix.with_overlay(ov)
    assert [k.origin for k in merged.known_bad("550.54.15")] == ["site.toml"]
    assert merged.known_bad("550.90.07") == [] and matrix.known_bad("550.54.15") == []
    assert merged.waiver_reasons() == {
        "TFC105": "numpy 2 pinned by the data team; TF import tested in CI (site overlay site.toml)"
    }
    assert merged.overlays == ("site.toml",) and merged.tensorflow == matrix.tensorflow


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            ('severity = "error"', 'severity = "fatal"'),
            "site.toml: [[known_bad_driver]] #1 '>=550.54.14,<550.90': severity 'fatal' must be",
        ),
        (('reason = "Xid', 'why = "Xid'), "[[known_bad_driver]] #1 '>=550.54.14,<550.90': unknown key 'why'"),
        (('versions = ">=550.54.14,<550.90"', 'versions = "550.54"'), "versions '550.54' is not a PEP 440 specifier"),
        (('rule = "TFC105"', 'rule = "TFC 105"'), "[[waiver]] #1 'TFC 105': rule 'TFC 105' is not a rule id prefix"),
        (('reason = "numpy 2', 'note = "numpy 2'), "[[waiver]] #1 'TFC105': unknown key 'note'"),
        (('kind = "overlay"', 'kind = "matrix"'), "site.toml: [meta] kind must be 'overlay' in a site overlay"),
        (("[[waiver]]", "[[tensorflow]]"), "site.toml: unknown table 'tensorflow'"),
        (
            ("[[waiver]]", "[thresholds]\nshm_min_bytes = -1\n\n[[waiver]]"),
            "site.toml: [thresholds]: shm_min_bytes -1 is not a non-negative integer",
        ),
        (
            ("[[waiver]]", "[thresholds]\nshm_bytes = 1\n\n[[waiver]]"),
            "site.toml: [thresholds]: unknown key 'shm_bytes'",
        ),
    ],
)
def test_broken_overlay_one_line_error(edit, message):
    old, new = edit
    assert old in OVERLAY
    with pytest.raises(MatrixError) as err:
        parse_overlay(OVERLAY.replace(old, new, 1), "site.toml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_overlay_and_matrix_are_not_confused(tmp_path):
    with pytest.raises(MatrixError, match="is a site overlay"):
        parse_matrix(OVERLAY, "site.toml")
    with pytest.raises(MatrixError, match="kind must be 'overlay'"):
        load_overlay(default_matrix_path())


def test_overlay_thresholds_reach_the_matrix(matrix):
    ov = parse_overlay(OVERLAY.replace("[[waiver]]", "[thresholds]\nshm_min_bytes = 1073741824\n\n[[waiver]]"), "s")
    assert matrix.with_overlay(ov).thresholds == {"shm_min_bytes": 1073741824}


# §2a of the fact sheet: the [and-cuda] cuDNN and NCCL requirements of every release that has the extra.
AND_CUDA_2A = {
    "2.14.0": ("nvidia-cudnn-cu11", "==8.7.0.84", "nvidia-nccl-cu11", "==2.16.5"),
    "2.14.1": ("nvidia-cudnn-cu11", "==8.7.0.84", "nvidia-nccl-cu11", "==2.16.5"),
    "2.15.0": ("nvidia-cudnn-cu12", "==8.9.4.25", "nvidia-nccl-cu12", "==2.16.5"),
    "2.15.0.post1": ("nvidia-cudnn-cu12", "==8.9.4.25", "nvidia-nccl-cu12", "==2.16.5"),
    "2.15.1": ("nvidia-cudnn-cu12", "==8.9.4.25", "nvidia-nccl-cu12", "==2.16.5"),
    "2.16.1": ("nvidia-cudnn-cu12", "==8.9.7.29", "nvidia-nccl-cu12", "==2.19.3"),
    "2.16.2": ("nvidia-cudnn-cu12", "==8.9.7.29", "nvidia-nccl-cu12", "==2.19.3"),
    "2.17.0": ("nvidia-cudnn-cu12", "==8.9.7.29", "nvidia-nccl-cu12", "==2.19.3"),
    "2.17.1": ("nvidia-cudnn-cu12", "==8.9.7.29", "nvidia-nccl-cu12", "==2.19.3"),
    "2.18.0": ("nvidia-cudnn-cu12", "==9.3.0.75", "nvidia-nccl-cu12", "==2.21.5"),
    "2.18.1": ("nvidia-cudnn-cu12", "==9.3.0.75", "nvidia-nccl-cu12", "==2.21.5"),
    "2.19.0": ("nvidia-cudnn-cu12", "==9.3.0.75", "nvidia-nccl-cu12", "==2.23.4"),
    "2.19.1": ("nvidia-cudnn-cu12", "==9.3.0.75", "nvidia-nccl-cu12", "==2.23.4"),
    "2.20.0": ("nvidia-cudnn-cu12", ">=9.3.0.75,<10.0", "nvidia-nccl-cu12", ">=2.25.1,<3.0"),
    "2.21.0": ("nvidia-cudnn-cu12", ">=9.3.0.75,<10.0", "nvidia-nccl-cu12", ">=2.27.7,<3.0"),
}


@pytest.mark.parametrize("version", RELEASES)
def test_and_cuda_pins_of_every_release(matrix, version):
    rel = matrix.tf_release(version)
    pins = {k: spec_text(s) for k, s in rel.and_cuda}
    if version not in AND_CUDA_2A:
        assert pins == {}  # the extra appears in 2.14.0
        return
    cudnn, cudnn_spec, nccl, nccl_spec = AND_CUDA_2A[version]
    assert (pins[cudnn], pins[nccl]) == (cudnn_spec, nccl_spec)
    # the pins agree with the build facts: cuDNN major.minor compiled with, the CUDA runtime of the build
    low = lambda spec: Version(spec.split(",")[0].lstrip("=<>~!"))  # noqa: E731
    assert low(cudnn_spec).release[:2] == rel.cudnn.release[:2]
    runtime = next(s for k, s in pins.items() if k.startswith("nvidia-cuda-runtime-"))
    assert low(runtime).release[:2] == rel.cuda.release[:2]


# ---------------------------------------------------------------------------------------------- issue 15 rows


def test_rocm_versions_do_not_match_cuda_rows(matrix):
    for rel in matrix.tensorflow_rocm:
        for r in rel.releases:
            assert matrix.tf_release(r) is None, r
            assert matrix.tf_rocm_release(r) is rel
    rocm = matrix.tf_rocm_release("2.14.0.600")
    assert rocm.manylinux == "manylinux2014_x86_64" and str(rocm.glibc) == "2.17"
    assert rocm.tf_version("2.14.0.600") == "2.14.0"


def test_tf_216_217_and_cuda_libraries_need_the_123_update_driver(matrix):
    for v in ("2.16.1", "2.16.2", "2.17.0", "2.17.1"):
        rel = matrix.tf_release(v)
        assert str(rel.and_cuda_cuda) == "12.3.2"
        need = matrix.driver_need(str(rel.and_cuda_cuda))
        assert need.full_text == "545.23.08" and need.floor_text == "525.60.13"
        assert matrix.driver_need(str(rel.cuda)).full_text == "545.23.06"  # the build's own: 12.3 GA
    assert matrix.tf_release("2.18.0").and_cuda_cuda is None


@pytest.mark.parametrize(
    "tfp, tf_min, tf_keras",
    [("0.25.0", "2.18", True), ("0.24.0", "2.16", True), ("0.23.0", "2.15", False), ("0.12.2", "2.4", False)],
)
def test_tfp_rows(matrix, tfp, tf_min, tf_keras):
    (row,) = [c for c in matrix.companions if c.package == "tensorflow-probability" and c.versions.contains(tfp)]
    assert str(row.tensorflow) == f">={tf_min}" and row.native is False
    assert bool(row.requires) is tf_keras


def test_tf_keras_215_rows(matrix):
    (r0,) = [c for c in matrix.companions if c.package == "tf-keras" and c.versions.contains("2.15.0")]
    (r1,) = [c for c in matrix.companions if c.package == "tf-keras" and c.versions.contains("2.15.1")]
    assert str(r0.python) == ">=3.8" and r0.tensorflow is None
    assert str(r1.python) == ">=3.8" and r1.tensorflow.contains("2.15.1") and not r1.tensorflow.contains("2.16.1")
