"""scripts/matrix_row.py on recorded files of the real tensorflow 2.21.0 wheel (no network).

Fixtures in tests/fixtures/matrix_row/: the wheel's METADATA, WHEEL and build_info.py as installed by
`pip install tensorflow==2.21.0` (identical to the files inside
tensorflow-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl), and PyPI's JSON listing of the release's
files as served on 2026-11-25 (trimmed to filename, url, size, packagetype, requires_python).
"""

import importlib.util
import io
import json
import os
import urllib.error
import urllib.parse
import zipfile

import pytest

from tfcompat.matrix import parse_matrix, spec_text
from tfcompat.probes.tensorflow import parse_build_info

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(TESTS, "fixtures", "matrix_row")
SCRIPT = os.path.join(os.path.dirname(TESTS), "scripts", "matrix_row.py")
TAG = "cp311-cp311-manylinux_2_27_x86_64"


def fixture(name):
    with open(os.path.join(FIX, name), encoding="utf-8") as fh:
        return fh.read()


@pytest.fixture(scope="module")
def mr():
    spec = importlib.util.spec_from_file_location("matrix_row", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def derived(mr):
    prev = mr.previous_entry("2.21.0", None)
    assert prev["versions"] == ">=2.20.0,<2.21.0"  # copied fields come from the entry before, never its own
    return mr.derive_row(
        "2.21.0",
        fixture("tensorflow-2.21.0.METADATA"),
        parse_build_info(fixture("tensorflow-2.21.0.build_info.py")),
        TAG,
        prev,
    )


def test_recorded_221_row_matches_the_matrix(mr, derived):
    row, comments = derived
    entry = mr.own_entry("2.21.0", None)
    assert mr.compare(row, entry) == []
    # the facts the release's own files state, one by one
    assert (row["cuda"], row["cudnn"], row["tensorrt"]) == ("12.5.1", "9.3", False)
    assert row["compute_capabilities"] == ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"]
    assert (row["python"], row["numpy"], row["protobuf"], row["keras"], row["ml_dtypes"], row["h5py"]) == (
        ">=3.10,<3.14",
        ">=1.26.0",
        ">=6.31.1,<8.0.0",
        ">=3.12.0",
        ">=0.5.1,<1.0.0",
        ">=3.11.0,<3.15.0",
    )
    assert (row["glibc"], row["manylinux"]) == ("2.27", "manylinux_2_27_x86_64")
    assert row["and_cuda"]["nvidia-cudnn-cu12"] == ">=9.3.0.75,<10.0" and len(row["and_cuda"]) == 12
    # what no file states is copied and flagged
    for field in mr.COPIED_FIELDS:
        assert comments[field].startswith("CHECK"), field


def test_row_is_a_valid_matrix_entry(mr, derived, matrix):
    row, comments = derived
    text = '[meta]\nschema = 1\nupdated = "2026-11-25"\n\n' + mr.render_row(row, comments)
    (entry,) = parse_matrix(text, "row.toml").tensorflow
    shipped = matrix.tf_release("2.21.0")
    for field in (
        "python",
        "cuda",
        "cudnn",
        "compute_capabilities",
        "numpy_abi",
        "tensorrt",
        "numpy",
        "protobuf",
        "keras",
        "ml_dtypes",
        "h5py",
        "glibc",
        "manylinux",
        "and_cuda",
    ):
        assert getattr(entry, field) == getattr(shipped, field), field


def test_compare_catches_a_wrong_matrix_entry(mr, derived, tmp_path, capsys):
    row, _ = derived
    entry = dict(mr.own_entry("2.21.0", None), numpy=">=1.26.0,<2.0.0", cuda="12.3")
    assert sorted(d.split(":")[0] for d in mr.compare(row, entry)) == ["cuda", "numpy"]
    # glibc is a floor: a matrix floor above the tag's (read from the objects' symbols) is no difference, one below is
    assert not [d for d in mr.compare(dict(row, glibc="2.17"), dict(entry, glibc="2.27")) if d.startswith("glibc")]
    assert [d for d in mr.compare(dict(row, glibc="2.27"), dict(entry, glibc="2.17")) if d.startswith("glibc")]
    # the same through the command line, against a matrix file with a stale fact
    from tfcompat.matrix import default_matrix_path

    text = default_matrix_path().read_text(encoding="utf-8")
    stale = tmp_path / "m.toml"
    stale.write_text(text.replace('protobuf = ">=6.31.1,<8.0.0"', 'protobuf = ">=5.28.0"', 1))
    rc = mr.main(
        [
            "2.21.0",
            "--metadata",
            os.path.join(FIX, "tensorflow-2.21.0.METADATA"),
            "--build-info",
            os.path.join(FIX, "tensorflow-2.21.0.build_info.py"),
            "--wheel-tag",
            TAG,
            "--matrix",
            str(stale),
            "--compare",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "# differs: protobuf: release says '>=6.31.1,<8.0.0', matrix says '>=5.28.0'" in err


def test_main_offline_against_the_shipped_matrix(mr, capsys):
    rc = mr.main(
        [
            "2.21.0",
            "--metadata",
            os.path.join(FIX, "tensorflow-2.21.0.METADATA"),
            "--build-info",
            os.path.join(FIX, "tensorflow-2.21.0.build_info.py"),
            "--wheel-tag",
            TAG,
            "--compare",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.startswith("[[tensorflow]]\n") and 'cuda = "12.5.1"\n' in out and "[tensorflow.and_cuda]" in out
    assert "# differs" not in err and "not derivable, copied: glibcxx" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["2.20.0", "--metadata", os.path.join(FIX, "tensorflow-2.21.0.METADATA"), "--wheel-tag", TAG],
            "METADATA is for version '2.21.0', not 2.20.0",
        ),
        (["2.21.0", "--metadata", os.path.join(FIX, "tensorflow-2.21.0.METADATA")], "--metadata needs --wheel-tag"),
        (["2.21.0", "--metadata", os.path.join(FIX, "nope"), "--wheel-tag", TAG], "No such file"),
    ],
)
def test_errors_are_one_line_exit_2(mr, capsys, argv, message):
    assert mr.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("matrix_row: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "tag, platform, glibc",
    [
        ("cp38-cp38-manylinux2010_x86_64", "manylinux2010_x86_64", "2.12"),
        (
            "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
            "manylinux_2_17_x86_64.manylinux2014_x86_64",
            "2.17",
        ),
        ("cp311-cp311-manylinux_2_27_x86_64", "manylinux_2_27_x86_64", "2.27"),
    ],
)
def test_manylinux_tags(mr, tag, platform, glibc):
    assert mr.manylinux_of(tag) == (platform, glibc)


def test_format_spec_reading_order(mr):
    from packaging.specifiers import SpecifierSet

    assert mr.format_spec(SpecifierSet("<5.0.0dev,!=4.21.0,>=3.20.3")) == ">=3.20.3,!=4.21.0,<5.0.0dev"
    assert mr.format_spec(SpecifierSet("<5.0.0dev,!=4.21.0,>=3.20.3")) == spec_text(
        SpecifierSet("<5.0.0dev,!=4.21.0,>=3.20.3")
    )


# ---------------------------------------------------------------------------------------------- PyPI


class FakePyPI:
    """Serves the recorded release listing and a wheel (a zip with the recorded files) with Range support,
    like pypi.org + files.pythonhosted.org; no PEP 658 .metadata file (as on the mirror it was recorded from)."""

    def __init__(self):
        listing = json.loads(fixture("pypi-tensorflow-2.21.0.json"))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("tensorflow/__init__.py", "")
            zf.writestr("tensorflow/python/platform/build_info.py", fixture("tensorflow-2.21.0.build_info.py"))
            zf.writestr("tensorflow-2.21.0.dist-info/METADATA", fixture("tensorflow-2.21.0.METADATA"))
            zf.writestr("tensorflow-2.21.0.dist-info/WHEEL", fixture("tensorflow-2.21.0.WHEEL"))
            zf.writestr("tensorflow/filler.bin", os.urandom(1 << 20))  # a wheel is mostly not what we read
        self.wheel = buf.getvalue()
        for f in listing["urls"]:
            f["size"] = len(self.wheel)
        self.project = {"info": listing["info"], "releases": {"2.21.0": listing["urls"]}}
        base = "https://pypi.org/pypi/tensorflow/json"
        name = f"tensorflow-2.21.0-{TAG}.whl"
        (self.wheel_url,) = [urllib.parse.urljoin(base, f["url"]) for f in listing["urls"] if f["filename"] == name]
        self.requests = []

    def __call__(self, req):
        url, rng = req.full_url, req.get_header("Range")
        self.requests.append((url, rng))
        if url == "https://pypi.org/pypi/tensorflow/json":
            return io.BytesIO(json.dumps(self.project).encode())
        if url == self.wheel_url and rng:
            start, end = (int(x) for x in rng.split("=")[1].split("-"))
            return io.BytesIO(self.wheel[start : end + 1])
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)


def test_fetch_release_from_pypi(mr):
    fake = FakePyPI()
    metadata, build_info, tag = mr.fetch_release("2.21.0", opener=fake)
    assert tag == TAG
    assert metadata == fixture("tensorflow-2.21.0.METADATA")
    assert build_info == fixture("tensorflow-2.21.0.build_info.py")
    wheel_reads = [r for u, r in fake.requests if u == fake.wheel_url]
    assert wheel_reads and all(r is not None for r in wheel_reads)  # range requests only, never the whole wheel
    assert (fake.wheel_url + ".metadata", None) in fake.requests  # PEP 658 tried first


def test_main_online_with_fake_pypi(mr, capsys):
    rc = mr.main(["2.21.0", "--compare"], opener=FakePyPI())
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert 'manylinux = "manylinux_2_27_x86_64"' in out


def test_pick_wheel_prefers_cp311_linux_x86_64(mr):
    files = json.loads(fixture("pypi-tensorflow-2.21.0.json"))["urls"]
    assert mr.pick_wheel(files)["filename"] == f"tensorflow-2.21.0-{TAG}.whl"
    others = [f for f in files if "cp311" not in f["filename"]]
    assert mr.pick_wheel(others)["filename"] == "tensorflow-2.21.0-cp313-cp313-manylinux_2_27_x86_64.whl"
    with pytest.raises(mr.RowError, match="no Linux x86-64"):
        mr.pick_wheel([f for f in files if "x86_64" not in f["filename"]])
