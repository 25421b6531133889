import datetime

import pytest
from packaging.version import Version

from tfcompat.matrix import MatrixError, default_matrix_path, load_matrix, parse_matrix

# Every Linux x86-64 release on PyPI in the range the matrix covers (pypi.org/project/tensorflow/#history).
RELEASES = [
    "2.12.0", "2.12.1", "2.13.0", "2.13.1", "2.14.0", "2.14.1", "2.15.0", "2.15.0.post1", "2.15.1",
    "2.16.1", "2.16.2", "2.17.0", "2.17.1", "2.18.0", "2.18.1", "2.19.0", "2.19.1", "2.20.0", "2.21.0",
]


def test_every_release_matched_exactly_once(matrix):
    for v in RELEASES:
        hits = [r.label for r in matrix.tensorflow if r.matches(v)]
        assert len(hits) == 1, (v, hits)


def test_every_entry_has_a_source_and_a_past_date(matrix):
    today = datetime.date.today()
    for entry in list(matrix.tensorflow) + list(matrix.cuda) + list(matrix.cuda_majors):
        sources = entry.source if isinstance(entry.source, tuple) else (entry.source,)
        assert sources and all(s.startswith(("https://", "http://")) or "/" in s for s in sources)
        assert entry.checked <= today


def test_every_cuda_named_has_driver_facts(matrix):
    for rel in matrix.tensorflow:
        if rel.cuda is not None:
            assert matrix.cuda_toolkit(str(rel.cuda)) is not None, rel.label
            assert matrix.cuda_major(rel.cuda.major) is not None, rel.label


def test_entries_sorted_and_driver_floors_monotonic(matrix):
    lows = [min(Version(s.version) for s in r.versions if s.operator == ">=") for r in matrix.tensorflow]
    assert lows == sorted(lows)
    cuda = [t.version for t in matrix.cuda]
    assert cuda == sorted(cuda)
    drivers = [t.min_driver for t in matrix.cuda]
    assert drivers == sorted(drivers)


@pytest.mark.parametrize("version, cuda, cudnn, ccs", [
    ("2.21.0", "12.5.1", "9.3", ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"]),
    ("2.16.2", "12.3", "8.9", ["sm_50", "sm_60", "sm_70", "sm_80", "compute_90"]),
    ("2.15.0.post1", "12.2", "8.9", ["sm_50", "sm_60", "sm_70", "sm_75", "compute_80"]),
    ("2.12.1", "11.8", "8.6", ["sm_35", "sm_50", "sm_60", "sm_70", "sm_75", "compute_80"]),
])
def test_facts_from_the_fact_sheet(matrix, version, cuda, cudnn, ccs):
    rel = matrix.tf_release(version)
    assert str(rel.cuda) == cuda and str(rel.cudnn) == cudnn and list(rel.compute_capabilities) == ccs


def test_cuda_lookups(matrix):
    assert matrix.cuda_toolkit("12.5").min_driver_text == "555.42.02"
    assert matrix.cuda_toolkit("12.5.1").min_driver_text == "555.42.06"
    assert matrix.cuda_toolkit("11.8").min_driver_text == "520.61.05"
    assert matrix.cuda_toolkit("12.7") is None
    assert matrix.cuda_major(12).min_driver_text == "525.60.13"


GOOD = """
[meta]
schema = 1
updated = "2026-11-25"

[[tensorflow]]
versions = ">=2.15.0,<2.16"
python = ">=3.9,<3.12"
cuda = "12.2"
cudnn = "8.9"
source = "https://www.tensorflow.org/install/source#gpu"
checked = "2026-03-11"
"""


def test_minimal_file_parses():
    m = parse_matrix(GOOD, "m.toml")
    assert m.tf_release("2.15.1").cudnn == Version("8.9")


@pytest.mark.parametrize("edit, message", [
    (('cudnn = "8.9"', 'cudnn = "8.x"'), "m.toml: [[tensorflow]] #1 '>=2.15.0,<2.16': cudnn '8.x' is not a version"),
    (('python = ">=3.9,<3.12"', 'python = "3.9+"'), "python '3.9+' is not a PEP 440 specifier"),
    (('cuda = "12.2"', 'cuda = "12.2"\ncudnn_major = 8'), "[[tensorflow]] #1 '>=2.15.0,<2.16': unknown key 'cudnn_major'"),
    (('source = "https://www.tensorflow.org/install/source#gpu"\n', ''), "missing required key 'source'"),
    (('checked = "2026-03-11"', 'checked = "March"'), "checked 'March' is not a date"),
    (('schema = 1', 'schema = 2'), "[meta] schema 2 is not supported"),
    (('cuda = "12.2"', 'cuda = 12.2'), "cuda 12.2 is not a string"),
    (('[[tensorflow]]', '[[tensorflw]]'), "unknown table 'tensorflw'"),
    (('versions = ">=2.15.0,<2.16"', 'versions = ">=2.15.0,<2.16'), "m.toml: not valid TOML"),
])
def test_broken_matrix_one_line_error(edit, message):
    old, new = edit
    assert old in GOOD
    with pytest.raises(MatrixError) as err:
        parse_matrix(GOOD.replace(old, new, 1), "m.toml")
    text = str(err.value)
    assert message in text
    assert "\n" not in text


def test_missing_file(tmp_path):
    with pytest.raises(MatrixError, match="cannot read matrix"):
        load_matrix(tmp_path / "nope.toml")


def test_shipped_matrix_is_found():
    assert default_matrix_path().is_file()
