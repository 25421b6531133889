"""Distributions from *.dist-info / *.egg-info metadata on disk."""

import os

import pytest
from probe_helpers import dedent, make_dist, write

from tfcompat.probes.packages import (
    parse_version,
    read_distribution,
    read_headers,
    scan_packages,
)


def by_name(packages):
    return {p.name: p for p in packages}


def test_read_headers_continuation_and_stops_at_body(tmp_path):
    meta = write(
        tmp_path / "METADATA",
        dedent("""
        Metadata-Version: 2.1
        Name: tensorflow
        Version: 2.21.0
        Summary: TensorFlow is an open source machine learning framework
        License: Apache 2.0
          with the LLVM exception
        Requires-Dist: absl-py>=1.0.0
        Requires-Dist: numpy>=1.26.0
        Requires-Python: >=3.10

        # TensorFlow
        Requires-Dist: evil-package==6.6.6
        Name: not-the-name
        Version: 0.0.0
        """),
    )
    h = read_headers(meta)
    assert h["name"] == ["tensorflow"]
    assert h["version"] == ["2.21.0"]
    assert h["license"] == ["Apache 2.0 with the LLVM exception"]
    assert h["requires-dist"] == ["absl-py>=1.0.0", "numpy>=1.26.0"]
    assert h["requires-python"] == [">=3.10"]
    assert "# tensorflow" not in h


def test_read_headers_crlf(tmp_path):
    path = tmp_path / "PKG-INFO"
    path.write_bytes(b"Name: foo\r\nVersion: 1.0\r\n\r\nRequires-Dist: bar\r\n")
    assert read_headers(str(path)) == {"name": ["foo"], "version": ["1.0"]}


def test_description_mentioning_requires_dist_is_not_read(tmp_path):
    site = tmp_path / "site"
    make_dist(
        site,
        "keras",
        "3.12.0",
        requires=["absl-py", "numpy"],
        requires_python=">=3.10",
        body="Install with\nRequires-Dist: tensorflow-cpu==1.0\nand friends.\n",
    )
    (pkg,), shadowed = scan_packages([str(site)])
    assert shadowed == ()
    assert pkg.requires == ("absl-py", "numpy")
    assert pkg.requires_python == ">=3.10"


def test_dist_info(tmp_path):
    site = tmp_path / "site"
    d = make_dist(site, "ml_dtypes", "0.5.1", requires=['numpy>=1.21; python_version < "3.13"'])
    (pkg,), _ = scan_packages([str(site)])
    assert pkg.name == "ml-dtypes"
    assert pkg.display_name == "ml_dtypes"
    assert pkg.version == "0.5.1"
    assert pkg.location == str(site)
    assert pkg.metadata_path == os.path.join(d, "METADATA")
    assert pkg.requires == ('numpy>=1.21; python_version < "3.13"',)
    assert pkg.requires_python is None


def test_egg_info_dir_with_requires_sections(tmp_path):
    site = tmp_path / "site"
    egg = site / "legacy_pkg-1.2.3-py3.11.egg-info"
    write(egg / "PKG-INFO", "Metadata-Version: 1.2\nName: Legacy.Pkg\nVersion: 1.2.3\nRequires-Python: >=3.8\n")
    write(
        egg / "requires.txt",
        dedent("""
        six>=1.10
        # a comment

        numpy

        [test]
        pytest>=7

        [:python_version < "3.11"]
        tomli>=1.1

        [cuda:sys_platform == "linux"]
        nvidia-cudnn-cu12
        """),
    )
    (pkg,), _ = scan_packages([str(site)])
    assert pkg.name == "legacy-pkg"
    assert pkg.display_name == "Legacy.Pkg"
    assert pkg.version == "1.2.3"
    assert pkg.requires_python == ">=3.8"
    assert pkg.metadata_path == str(egg / "PKG-INFO")
    assert pkg.requires == ("six>=1.10", "numpy", 'tomli>=1.1; python_version < "3.11"')


def test_single_file_egg_info(tmp_path):
    site = tmp_path / "site"
    path = write(site / "oldpkg-0.9.egg-info", "Metadata-Version: 1.0\nName: OldPkg\nVersion: 0.9\n")
    (pkg,), _ = scan_packages([str(site)])
    assert (pkg.name, pkg.version, pkg.requires, pkg.metadata_path) == ("oldpkg", "0.9", (), path)


@pytest.mark.parametrize(
    "raw, canonical",
    [
        ("Foo_Bar", "foo-bar"),
        ("zope.interface", "zope-interface"),
        ("Tensorflow-CPU", "tensorflow-cpu"),
        ("nvidia_cudnn__cu12", "nvidia-cudnn-cu12"),
    ],
)
def test_canonical_names(tmp_path, raw, canonical):
    site = tmp_path / "site"
    write(site / "x-1.0.dist-info" / "METADATA", f"Name: {raw}\nVersion: 1.0\n")
    (pkg,), _ = scan_packages([str(site)])
    assert pkg.name == canonical
    assert pkg.display_name == raw


def test_first_copy_on_search_path_wins(tmp_path):
    user, system = tmp_path / "user-site", tmp_path / "site"
    make_dist(user, "numpy", "1.26.4")
    make_dist(system, "numpy", "2.1.3")
    make_dist(system, "Keras", "3.12.0")
    packages, shadowed = scan_packages([str(user), str(tmp_path / "missing"), str(system)])
    pk = by_name(packages)
    assert sorted(pk) == ["keras", "numpy"]
    assert (pk["numpy"].version, pk["numpy"].location) == ("1.26.4", str(user))
    assert [(p.name, p.version, p.location) for p in shadowed] == [("numpy", "2.1.3", str(system))]

    # the other order: the other copy wins
    packages, shadowed = scan_packages([str(system), str(user)])
    assert by_name(packages)["numpy"].version == "2.1.3"
    assert [(p.name, p.version) for p in shadowed] == [("numpy", "1.26.4")]


def test_unreadable_and_malformed_metadata_are_skipped(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "good", "1.0")
    os.makedirs(site / "nometa-1.0.dist-info")  # no METADATA at all
    write(site / "noversion-1.0.dist-info" / "METADATA", "Name: noversion\n")
    write(site / "noname-1.0.dist-info" / "METADATA", "Version: 1.0\n")
    write(site / "garbage-1.0.dist-info" / "METADATA", "\x00\x01 not an rfc822 file at all\n")
    (site / "binary-1.0.dist-info").mkdir()
    (site / "binary-1.0.dist-info" / "METADATA").write_bytes(b"\xff\xfe\xfa\n\x80\x81")
    write(site / "file-1.0.dist-info", "Name: file\nVersion: 1.0\n")  # a file, not a dir
    os.makedirs(site / "dirmeta-1.0.dist-info" / "METADATA")  # unreadable: a directory
    os.makedirs(site / "dangling-1.0.dist-info")
    os.symlink("/nonexistent/METADATA", site / "dangling-1.0.dist-info" / "METADATA")
    write(site / "not-a-dist.txt", "Name: x\nVersion: 1\n")
    packages, shadowed = scan_packages([str(site)])
    assert [p.name for p in packages] == ["good"]
    assert shadowed == ()
    assert read_distribution(str(site), "nometa-1.0.dist-info") is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_metadata_is_skipped(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "good", "1.0")
    meta = write(site / "secret-1.0.dist-info" / "METADATA", "Name: secret\nVersion: 1.0\n", mode=0)
    try:
        assert [p.name for p in scan_packages([str(site)])[0]] == ["good"]
    finally:
        os.chmod(meta, 0o644)


def test_parse_version():
    assert str(parse_version("2.21.0")) == "2.21.0"
    assert parse_version("2.21.0rc1") < parse_version("2.21.0")
    assert parse_version("not a version") is None
