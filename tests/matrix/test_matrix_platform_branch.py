"""Issue 15: Linux aarch64 wheels ([[tensorflow_platform]]) and NVIDIA driver branch end of life
([[driver_branch]]): the shipped rows as PyPI and NVIDIA state them, the loader's checks, the answers."""

import json

import pytest

from tfcompat.cli import main
from tfcompat.matrix import MatrixError, default_matrix_path, parse_matrix

_SHIPPED = default_matrix_path().read_text(encoding="utf-8")


def _m():
    return parse_matrix(_SHIPPED, "compat_matrix.toml")


def _ask(capsys, *argv, fmt="json"):
    with pytest.raises(SystemExit) as exc:
        main(["matrix", *argv, "--format", fmt])
    out, err = capsys.readouterr()
    assert exc.value.code == 0, err
    return json.loads(out) if fmt == "json" else out


@pytest.mark.parametrize(
    ("version", "package", "glibc", "wrapper"),
    [
        ("2.10.0", "tensorflow", None, True),  # ~2 KB wheel that requires tensorflow-cpu-aws
        ("2.15.1", "tensorflow", None, True),
        ("2.16.1", "tensorflow", "2.17", False),  # first full aarch64 `tensorflow` wheel
        ("2.20.0", "tensorflow", "2.17", False),
        ("2.21.0", "tensorflow", "2.27", False),  # manylinux_2_27_aarch64
    ],
)
def test_tensorflow_aarch64_rows(version, package, glibc, wrapper):
    rows = [p for p in _m().tf_platform_builds(version) if p.package == package]
    assert len(rows) == 1
    row = rows[0]
    assert row.platform == "aarch64" and row.wrapper is wrapper
    assert (str(row.glibc) if row.glibc else None) == glibc
    if not wrapper:
        assert row.cuda_build is False  # build_info is_cuda_build False: CPU only on Grace nodes too


def test_tensorflow_cpu_aws_ends_at_2_15_1():
    m = _m()
    aws = [p for p in m.tensorflow_platforms if p.package == "tensorflow-cpu-aws"]
    assert len(aws) == 1 and aws[0].releases[-1] == "2.15.1" and aws[0].cuda_build is False
    assert not any(p.package == "tensorflow-cpu-aws" for p in m.tf_platform_builds("2.16.1"))


def test_no_aarch64_release_listed_twice_per_package():
    seen = set()
    for p in _m().tensorflow_platforms:
        for r in p.releases:
            assert (p.package, p.platform, r) not in seen
            seen.add((p.package, p.platform, r))


def test_matrix_tensorflow_mentions_aarch64(capsys):
    a = _ask(capsys, "tensorflow", "2.21.0")
    assert [(p["package"], p["manylinux"], p["cuda_build"]) for p in a["platforms"]] == [
        ("tensorflow", "manylinux_2_27_aarch64", False)
    ]
    text = _ask(capsys, "tensorflow", "2.15", fmt="text")
    assert "Linux aarch64" in text and "tensorflow-cpu-aws" in text and "wrapper" in text


@pytest.mark.parametrize(
    ("driver", "branch", "designation", "eol", "confirmed"),
    [
        ("535.54.03", "R535", "lts", "2026-06", True),
        ("580.95.05", "R580", "lts", "2028-06", True),
        ("595.45.04", "R595", "production", "2027-03", True),
        ("610.10", "R610", "new-feature", "2026-08", False),  # the R620 page says NFBs have no EOL date
        ("620.1", "R620", "lts", "2029-09", True),
        ("450.80.02", "R450", "lts", "2023-07", True),
    ],
)
def test_driver_branch_end_of_life(capsys, driver, branch, designation, eol, confirmed):
    a = _ask(capsys, "driver", driver)
    b = a["branch"]
    assert (b["branch"], b["designation"], b["end_of_life"], b["confirmed"]) == (branch, designation, eol, confirmed)
    assert set(b["source"]) <= set(a["sources"])
    assert all(s.startswith("https://docs.nvidia.com/datacenter/tesla/") for s in b["source"])


def test_driver_without_branch_row_says_nothing(capsys):
    a = _ask(capsys, "driver", "470.82.01")
    assert a["branch"] is None
    assert "branch (info)" not in _ask(capsys, "driver", "470.82.01", fmt="text")


def test_driver_text_and_what_runs_show_the_branch(capsys):
    assert "R580, Long Term Support Branch, end of life 2028-06" in _ask(capsys, "driver", "580.95.05", fmt="text")
    w = _ask(capsys, "what-runs", "--driver", "580.95.05", "--gpu", "9.0")
    assert w["driver_branch"]["end_of_life"] == "2028-06"
    text = _ask(capsys, "what-runs", "--driver", "580.95.05", "--gpu", "9.0", fmt="text")
    assert "driver branch (info)" in text


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('branch = 580\ndesignation = "lts"', 'branch = 580\ndesignation = "ltsb"', "designation"),
        ('end_of_life = "2028-06"', 'end_of_life = "June 2028"', "end_of_life"),
        ("branch = 595\n", "branch = 580\n", "stated twice"),
        (
            'package = "tensorflow-cpu-aws"\nplatform = "aarch64"',
            'package = "tensorflow-cpu-aws"\nplatform = "arm"',
            "platform",
        ),
        (
            'releases = ["2.21.0"]\nmanylinux = "manylinux_2_27_aarch64"',
            'releases = ["2.21.0", "2.20.0"]\nmanylinux = "manylinux_2_27_aarch64"',
            "outside versions",
        ),
        ("wrapper = true\n", "wrapper = true\nbogus = 1\n", "bogus"),
    ],
)
def test_loader_rejects_bad_rows(old, new, message):
    assert old in _SHIPPED
    with pytest.raises(MatrixError, match=message):
        parse_matrix(_SHIPPED.replace(old, new, 1), "m.toml")


@pytest.mark.parametrize(
    ("rocm", "tensorflow", "gfx950"),
    [
        ("6.4.0", ("2.18.1", "2.17.1", "2.16.2"), False),
        ("6.4.3", ("2.18.1", "2.17.1", "2.16.2"), False),
        ("7.0.0", ("2.19.1", "2.18.1"), True),
        ("7.0.2", ("2.19.1", "2.18.1", "2.17.1"), True),
        ("7.1.1", ("2.20.0", "2.19.1", "2.18.1"), True),
    ],
)
def test_rocm_6_4_and_newer_rows_are_unconfirmed(rocm, tensorflow, gfx950):
    """ROCm >= 6.4 from stored copies of AMD's compatibility-matrix.rst whose repository the index does not
    name: the facts are in, marked confirmed = false until the published page is read."""
    rows = [r for r in _m().rocm if r.rocm.contains(rocm)]
    assert len(rows) == 1
    row = rows[0]
    assert row.tensorflow == tensorflow and ("gfx950" in row.gfx) is gfx950
    assert row.confirmed is False and row.note


def test_no_rocm_row_for_unread_patch_releases():
    assert not [r for r in _m().rocm if r.rocm.contains("6.4.1") or r.rocm.contains("7.0.1")]
