"""scripts/refresh_matrix.py offline on recorded PyPI files, and the matrix's newest entries against them.

Fixtures in tests/fixtures/refresh/ were written by `python scripts/refresh_matrix.py --record DIR` against
PyPI on 2026-12-07, trimmed to the fields the checks read: pypi-NAME.json (info.version / requires_dist,
per release `yanked`, for tensorflow the file names of the Linux x86-64 CPython wheels of every release) and
tensorflow-VERSION.METADATA (the PEP 658 METADATA's Name, Version, Requires-Python, Requires-Dist and
Python classifiers).
"""

import importlib.util
import json
import os
import shutil

import pytest
from packaging.version import Version

from tfcompat.matrix import default_matrix_path, load_matrix

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(TESTS, "fixtures", "refresh")
SCRIPT = os.path.join(os.path.dirname(TESTS), "scripts", "refresh_matrix.py")


@pytest.fixture(scope="module")
def rm():
    spec = importlib.util.spec_from_file_location("refresh_matrix", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def recorded(name):
    with open(os.path.join(FIX, f"pypi-{name}.json"), encoding="utf-8") as fh:
        return json.load(fh)


def test_offline_run_on_the_recorded_files(rm, capsys):
    rc = rm.main(["--offline", FIX])
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("# ") and "against recorded files in" in lines[0]
    # every final release from the oldest row (1.5.0) on, the legacy ones (issue 14) included
    assert "tensorflow: PyPI has 92 final releases 1.5.0 ... 2.21.0; the matrix lists 92 (1.5.0 ... 2.21.0)" in lines
    assert "  read the Requires-Dist of 51 releases (the newest of every entry, and new ones)" in lines
    # TF 1.5-1.14 wheels are tagged manylinux1 (glibc 2.5) but their objects need GLIBC_2.17 / 2.23: a note
    (glibc,) = [line for line in lines if line.startswith("  note: 11 entries need a newer glibc than their wheel")]
    assert "1.5.1 (2.17 > 2.5)" in glibc and "1.12.3 (2.17 > 2.5)" in glibc and "1.14.0 (2.23 > 2.5)" in glibc
    # every entry's Requires-Dist / Requires-Python / wheel tag agrees with its newest release's METADATA
    assert not [line for line in lines if line.startswith("behind: tensorflow ")]
    # a companion entry narrower than its metadata (strict ABI binding) is a note, not a difference
    assert any(line.startswith("  note: tensorflow-recommenders-addons 0.8.1: requires") for line in lines)
    # the cuDNN wheels up to 9.28 have rows (issue 15); the older minors no row describes are a note
    assert (
        "nvidia-cudnn-cu12: PyPI newest 9.28.0.42; the [[cudnn]] entries for CUDA 12 describe up to 9.28.0.42" in lines
    )
    assert "nvidia-cudnn-cu13: PyPI newest 9.28.1.4; the [[cudnn]] entries for CUDA 13 describe up to 9.28.1.4" in lines
    # the CUDA 11 builds (recorded 2026-12-08): 9.10.2 is the last, every 8.5 ... 9.10 release has a row
    assert (
        "nvidia-cudnn-cu11: PyPI newest 9.10.2.21; the [[cudnn]] entries for CUDA 11 describe up to 9.10.2.21" in lines
    )
    # 8.8.0 and 8.8.1 have had a row since 2026-12-08 (read from their wheels): no older gap either
    assert not [line for line in lines if "older release(s) no entry describes" in line]
    assert [line for line in lines if line.startswith("behind: ")] == []
    assert lines[-1] == "0 difference(s): the matrix is current"
    assert rc == 0


def test_older_cudnn_wheels_no_row_describes_are_a_note(rm, tmp_path, capsys):
    """Without the 8.8 row (read from the 8.8.0.121 / 8.8.1.3 wheels; here moved to 8.7, which PyPI never had
    for CUDA 12) those two releases are a gap: a note, not a difference."""
    text = default_matrix_path().read_text(encoding="utf-8")
    head = 'versions = ">=8.8.0,<8.9"\ncuda_major = 12\n'
    assert text.count(head) == 1
    path = tmp_path / "m.toml"
    path.write_text(text.replace(head, 'versions = ">=8.7.0,<8.8"\ncuda_major = 12\n'), encoding="utf-8")
    assert rm.main(["--offline", FIX, "--matrix", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  note: 2 older release(s) no entry describes: minors 8.8" in lines
    assert lines[-1] == "0 difference(s): the matrix is current"


def test_cudnn_wheels_newer_than_the_rows_are_behind(rm, tmp_path, capsys):
    """A row that stops short of PyPI's newest cuDNN (here the cu12 9.17.1 row cut at 9.20) is behind
    (9.20.0 ... 9.28.0 less the yanked 9.25.0.15)."""
    text = default_matrix_path().read_text(encoding="utf-8")
    head = 'versions = ">=9.17.1,<9.29"\ncuda_major = 12\n'
    assert text.count(head) == 1
    path = tmp_path / "m.toml"
    path.write_text(text.replace(head, head.replace("<9.29", "<9.20")), encoding="utf-8")
    assert rm.main(["--offline", FIX, "--matrix", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("behind: ")] == [
        "behind: nvidia-cudnn-cu12: 14 release(s) newer than the newest the entries describe, 9.19.0.56 "
        "(9 minors 9.20 ... 9.28; newest 9.28.0.42)"
    ]


def test_a_stale_matrix_is_behind(rm, tmp_path, capsys):
    text = default_matrix_path().read_text(encoding="utf-8")
    stale = text.replace('releases = ["2.19.0", "2.19.1"]', 'releases = ["2.19.0"]', 1)
    assert stale != text
    path = tmp_path / "m.toml"
    path.write_text(stale, encoding="utf-8")
    # the entry's newest listed release is now 2.19.0, whose METADATA was not recorded: 2.19.1's stands in
    shutil.copytree(FIX, tmp_path / "fix")
    meta = (tmp_path / "fix" / "tensorflow-2.19.1.METADATA").read_text(encoding="utf-8")
    (tmp_path / "fix" / "tensorflow-2.19.0.METADATA").write_text(
        meta.replace("Version: 2.19.1", "Version: 2.19.0"), encoding="utf-8"
    )
    rc = rm.main(["--offline", str(tmp_path / "fix"), "--matrix", str(path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "behind: tensorflow 2.19.1: on PyPI, matched by the entry >=2.19.0,<2.20.0 but not in its releases" in out


def test_a_release_no_entry_matches(rm, tmp_path, capsys):
    shutil.copytree(FIX, tmp_path / "fix")
    data = recorded("tensorflow")
    data["releases"]["2.22.0"] = [
        dict(data["releases"]["2.21.0"][0], filename="tensorflow-2.22.0-cp311-cp311-manylinux_2_27_x86_64.whl")
    ]
    data["releases"]["2.23.0rc0"] = data["releases"]["2.22.0"]  # pre-releases are not releases
    (tmp_path / "fix" / "pypi-tensorflow.json").write_text(json.dumps(data), encoding="utf-8")
    assert rm.main(["--offline", str(tmp_path / "fix")]) == 1
    out = capsys.readouterr().out
    assert "behind: tensorflow 2.22.0: on PyPI, no [[tensorflow]] entry matches it (new row: " in out
    assert "2.23.0rc0" not in out


def test_requires_dist_differences(rm, tmp_path, capsys):
    text = default_matrix_path().read_text(encoding="utf-8")
    stale = text.replace('protobuf = ">=6.31.1,<8.0.0"', 'protobuf = ">=5.28.0"', 1)
    assert stale != text
    path = tmp_path / "m.toml"
    path.write_text(stale, encoding="utf-8")
    assert rm.main(["--offline", FIX, "--matrix", str(path)]) == 1
    out = capsys.readouterr().out
    diffs = [line for line in out.splitlines() if line.startswith("behind: tensorflow ")]
    assert len(diffs) == 1 and "protobuf: release says '>=6.31.1,<8.0.0', matrix says '>=5.28.0'" in diffs[0]


def _stale_run(rm, tmp_path, capsys, old, new):
    text = default_matrix_path().read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / "m.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    rc = rm.main(["--offline", FIX, "--matrix", str(path)])
    return rc, [line for line in capsys.readouterr().out.splitlines() if line.startswith("behind: ")]


def test_legacy_python_is_checked_against_the_wheels(rm, tmp_path, capsys):
    """A release before 2.2 states no Requires-Python and stale classifiers (1.13.1 ships cp37 wheels, its
    classifiers stop at 3.6): the row's python (the tested-build table, 2.7, 3.3-3.7) is checked against the
    Linux wheels PyPI has. A row cut at 3.6 excludes the cp37 wheel; one reaching 3.8 names a Python no wheel is
    for."""
    old = 'releases = ["1.13.1"]\npython = ">=2.7,!=3.0.*,!=3.1.*,!=3.2.*,<3.8"'
    rc, behind = _stale_run(rm, tmp_path, capsys, old, old.replace("<3.8", "<3.7"))
    assert rc == 1 and behind == [
        "behind: tensorflow 1.13.1 (entry >=1.13.1,<1.13.2): python: wheels for 3.7, matrix says "
        "'>=2.7,!=3.0.*,!=3.1.*,!=3.2.*,<3.7'"
    ]
    rc, behind = _stale_run(rm, tmp_path, capsys, old, old.replace("<3.8", "<3.9"))
    assert rc == 1 and behind == [
        "behind: tensorflow 1.13.1 (entry >=1.13.1,<1.13.2): python: newest wheel for 3.7, matrix says "
        "'>=2.7,!=3.0.*,!=3.1.*,!=3.2.*,<3.9' (up to 3.8)"
    ]
    # no cp27 wheel is admitted by a row from 3.3 on
    rc, behind = _stale_run(rm, tmp_path, capsys, old, old.replace(">=2.7,!=3.0.*,!=3.1.*,!=3.2.*", ">=3.3"))
    assert rc == 1 and behind == [
        "behind: tensorflow 1.13.1 (entry >=1.13.1,<1.13.2): python: wheels for 2.7, matrix says '>=3.3,<3.8'"
    ]


def test_glibc_below_the_wheel_tag_is_behind(rm, tmp_path, capsys):
    """The tag is what the wheel claims (pip installs a manylinux2010 wheel only on glibc >= 2.12): a row
    stating less is wrong; a row stating more (TF 1.x, the GLIBC_ symbols) is only a note."""
    old = 'glibc = "2.12"\nglibcxx = "3.4.13"\ncxxabi = "1.3.3"\nmanylinux = "manylinux2010_x86_64"'
    text = default_matrix_path().read_text(encoding="utf-8")
    path = tmp_path / "m.toml"
    # the first row stating it: 2.0.0-2.0.2 (newest 2.0.2)
    assert text.index('versions = ">=2.0.0,<2.0.3"') < text.index(old) < text.index('versions = ">=2.0.3,<2.0.4"')
    path.write_text(text.replace(old, old.replace('"2.12"', '"2.5"'), 1), encoding="utf-8")
    assert rm.main(["--offline", FIX, "--matrix", str(path)]) == 1
    behind = [line for line in capsys.readouterr().out.splitlines() if line.startswith("behind: ")]
    assert behind == [
        "behind: tensorflow 2.0.2 (entry >=2.0.0,<2.0.3): glibc: the wheel tag manylinux2010_x86_64 needs 2.12, "
        "matrix says '2.5'"
    ]


def test_h5py_cap_of_the_last_1_x_and_2_0_patches(rm, tmp_path, capsys):
    """tensorflow(-gpu) 1.15.5, 2.0.4, 2.1.3 and 2.1.4 state `h5py (<=2.10.0)`, their previous patches none: a row
    without it is behind (the drift the refresh found on 2026-12-07)."""
    old = 'releases = ["1.15.5"]'
    text = default_matrix_path().read_text(encoding="utf-8")
    start = text.index(old)
    cap = text.index('h5py = "<=2.10.0"\n', start)
    path = tmp_path / "m.toml"
    path.write_text(text[:cap] + text[cap + len('h5py = "<=2.10.0"\n') :], encoding="utf-8")
    assert rm.main(["--offline", FIX, "--matrix", str(path)]) == 1
    behind = [line for line in capsys.readouterr().out.splitlines() if line.startswith("behind: ")]
    assert behind == [
        "behind: tensorflow 1.15.5 (entry >=1.15.5,<2.0.0): h5py: release says '<=2.10.0', matrix says None"
    ]


def test_a_companion_range_the_metadata_refuses(rm, tmp_path, capsys):
    text = default_matrix_path().read_text(encoding="utf-8")
    # tf-keras 2.21.0 requires tensorflow>=2.21,<2.22; an entry admitting 2.20 is wrong
    stale = text.replace('tensorflow = ">=2.21,<2.22"', 'tensorflow = ">=2.20,<2.22"', 1)
    assert stale != text
    path = tmp_path / "m.toml"
    path.write_text(stale, encoding="utf-8")
    assert rm.main(["--offline", FIX, "--matrix", str(path)]) == 1
    assert "behind: tf-keras 2.21.0: requires tensorflow>=2.21,<2.22, the entry" in capsys.readouterr().out


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: os.remove(d / "pypi-tf-keras.json"), "pypi-tf-keras.json: No such file or directory"),
        (lambda d: (d / "pypi-nvidia-cudnn-cu13.json").write_text("{", encoding="utf-8"), "not JSON"),
        (lambda d: os.remove(d / "tensorflow-2.21.0.METADATA"), "tensorflow-2.21.0.METADATA: No such file"),
    ],
)
def test_errors_are_one_line_exit_2(rm, tmp_path, capsys, setup, message):
    shutil.copytree(FIX, tmp_path / "fix")
    setup(tmp_path / "fix")
    assert rm.main(["--offline", str(tmp_path / "fix")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("refresh_matrix: error: ") and message in err and err.count("\n") == 1


def fake_pypi(rm, extra=None):
    """An opener serving the recorded files like PyPI: pypi.org/pypi/NAME/json, the wheels' .metadata;
    `extra`: releases to add to tensorflow's listing ({version: METADATA text})."""
    import io
    import urllib.error

    extra = extra or {}

    def opener(req, timeout=None):
        assert timeout == rm.TIMEOUT_S
        url = req.full_url
        if url.startswith("https://pypi.org/pypi/") and url.endswith("/json"):
            name = url.split("/")[-2]
            data = recorded(name)
            if name == "tensorflow":
                for version in extra:
                    wheel = f"tensorflow-{version}-cp311-cp311-manylinux_2_27_x86_64.whl"
                    data["releases"][version] = [{"filename": wheel, "yanked": False}]
            for files in data["releases"].values():
                for f in files:
                    if "filename" in f:
                        f["url"] = f"../../packages/{f['filename']}"
            return io.BytesIO(json.dumps(data).encode())
        if url.startswith("https://pypi.org/packages/") and url.endswith(".whl.metadata"):
            version = url.rsplit("/", 1)[1].split("-")[1]
            if version in extra:
                return io.BytesIO(extra[version].encode())
            with open(os.path.join(FIX, f"tensorflow-{version}.METADATA"), "rb") as fh:
                return io.BytesIO(fh.read())
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    return opener


def test_online_reads_pypi_json_and_pep658_metadata(rm, tmp_path, capsys):
    """The online path through a fake PyPI serving the recorded files (a release's wheel URL + .metadata)."""
    opener = fake_pypi(rm)
    record = tmp_path / "rec"
    rc = rm.main(["--record", str(record)], opener=opener)
    out = capsys.readouterr().out
    assert rc in (0, 1) and "against PyPI" in out.splitlines()[0]
    # what --record writes is what --offline reads: the same answer
    # (the fixtures also hold tensorflow-probability, recorded for the companion rows issue 15 adds)
    assert set(os.listdir(record)) <= set(os.listdir(FIX)) and "pypi-tensorflow.json" in os.listdir(record)
    for name in os.listdir(record):
        with open(os.path.join(FIX, name), encoding="utf-8") as a, open(record / name, encoding="utf-8") as b:
            assert a.read() == b.read(), name
    assert rm.main(["--offline", str(record)]) == rc
    assert capsys.readouterr().out.splitlines()[1:] == out.splitlines()[1:]


def test_unreachable_pypi_is_exit_2(rm, capsys):
    import urllib.error

    def opener(req, timeout=None):
        raise urllib.error.URLError("timed out")

    assert rm.main([], opener=opener) == 2
    assert "refresh_matrix: error: https://pypi.org/pypi/tensorflow/json: timed out" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- freshness


def _finals(name):
    rm_releases = recorded(name)["releases"]
    out = []
    for v, files in rm_releases.items():
        ver = Version(v)
        if not ver.is_prerelease and files and not all(f.get("yanked") for f in files):
            out.append(ver)
    return sorted(out)


def test_newest_tensorflow_release_recorded_is_in_the_matrix():
    matrix = load_matrix()
    newest = _finals("tensorflow")[-1]
    assert str(newest) in matrix.tf_releases(), f"PyPI had tensorflow {newest}: add its row (scripts/matrix_row.py)"


def test_newest_companion_releases_recorded_are_covered():
    matrix = load_matrix()
    for package in dict.fromkeys(c.package for c in matrix.companions):
        newest = _finals(package)[-1]
        assert any(c.package == package and c.versions.contains(newest, prereleases=True) for c in matrix.companions), (
            f"{package} {newest} is on PyPI but no [[companion]] entry covers it"
        )


# "Has an entry" the way TFC208 looks it up: a row matches the release, or a row of its major.minor exists
# (a range row such as >=9.17.1,<9.29 covers 9.28 although its lower bound is 9.17.1).
@pytest.mark.parametrize(
    "major, package", [(11, "nvidia-cudnn-cu11"), (12, "nvidia-cudnn-cu12"), (13, "nvidia-cudnn-cu13")]
)
def test_newest_cudnn_wheel_recorded_has_an_entry(major, package):
    matrix = load_matrix()
    newest = _finals(package)[-1]
    support = matrix.cudnn_support(str(newest), major)
    assert support.basis in ("exact", "same_minor"), f"{package} {newest}: no [[cudnn]] entry describes it"


def test_a_companion_requiring_tensorflow_under_an_extra(rm, tmp_path, capsys):
    """tensorflow-probability states `tensorflow>=2.16; extra == "tf"`; an entry saying 0.25 needs >= 2.18
    (issue 15) is narrower than that: a note, and its releases are checked like every companion's."""
    text = default_matrix_path().read_text(encoding="utf-8")
    if 'package = "tensorflow-probability"' not in text:
        text += (
            '\n[[companion]]\npackage = "tensorflow-probability"\nversions = ">=0.25.0,<0.26.0"\n'
            'tensorflow = ">=2.18,<2.20"\nnative = false\nsource = "https://pypi.org/project/tensorflow-probability/"\n'
            'checked = "2026-12-07"\n'
        )
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    rm.main(["--offline", FIX, "--matrix", str(path)])
    lines = capsys.readouterr().out.splitlines()
    (head,) = [line for line in lines if line.startswith("tensorflow-probability: ")]
    assert head.startswith("tensorflow-probability: PyPI newest 0.25.0 (requires tensorflow>=2.16 [tf]); ")
    assert not [line for line in lines if line.startswith("behind: tensorflow-probability")]
    assert any(
        line.startswith("  note: tensorflow-probability 0.25.0: requires tensorflow>=2.16 [tf]") for line in lines
    )


def test_rows_for_new_releases(rm, capsys, monkeypatch):
    """--rows: a derived row for a release no entry matches (scripts/matrix_row.py's reading; here its
    recorded 2.21.0 files stand in for a "2.22.0" wheel)."""
    row_fix = os.path.join(TESTS, "fixtures", "matrix_row")
    with open(os.path.join(row_fix, "tensorflow-2.21.0.METADATA"), encoding="utf-8") as fh:
        meta = fh.read().replace("Version: 2.21.0", "Version: 2.22.0")
    with open(os.path.join(row_fix, "tensorflow-2.21.0.build_info.py"), encoding="utf-8") as fh:
        build_info = fh.read()
    seen = []

    def fetch_release(version, opener):
        seen.append(version)
        return meta, build_info, "cp311-cp311-manylinux_2_27_x86_64"

    monkeypatch.setattr(rm.mr, "fetch_release", fetch_release)
    assert rm.main(["--rows"], opener=fake_pypi(rm, {"2.22.0": meta})) == 1
    out = capsys.readouterr().out
    assert seen == ["2.22.0"]
    assert "behind: tensorflow 2.22.0: on PyPI, no [[tensorflow]] entry matches it" in out
    row = out.split("# derived by scripts/matrix_row.py 2.22.0: review the # CHECK fields\n", 1)[1]
    assert row.startswith('[[tensorflow]]\nversions = ">=2.22.0,<2.23.0"') and 'cuda = "12.5.1"' in row
    assert rm.main(["--rows", "--offline", FIX]) == 2
    assert "--rows reads the wheels' build_info.py from PyPI" in capsys.readouterr().err
