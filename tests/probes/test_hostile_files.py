"""Hostile trees (#17 items 2, 3, 5, 6) for the probes that read Python metadata, TF's build_info,
pyvenv.cfg, os-release, /proc, libc and KFD: links never leave the root, FIFOs and devices never block,
reads are bounded, and one bad file makes that one thing unknown with its reason."""

import os
import time

import pytest
from probe_helpers import (
    BUILD_INFO_2_21_0,
    make_dist,
    make_fake_libc,
    make_tf,
    symlink,
    write,
)

from tfcompat.probes.packages import read_headers, scan_distributions, scan_packages
from tfcompat.probes.platform import find_banner_version, glibc_version, probe_platform
from tfcompat.probes.rocm import probe_rocm
from tfcompat.probes.rootfs import Root
from tfcompat.probes.target import TargetSpec, resolve_target
from tfcompat.probes.tensorflow import BUILD_INFO, find_tensorflow

SITE = "/usr/lib/python3.11/site-packages"


@pytest.fixture
def host_site(tmp_path):
    """A host-side dist that must never be read through an image."""
    site = tmp_path / "host-site"
    make_dist(site, "host-only", "6.6.6")
    make_tf(site, "6.6.6", BUILD_INFO_2_21_0)
    make_dist(site, "tensorflow", "6.6.6")
    return site


@pytest.fixture
def img(tmp_path):
    root = tmp_path / "img"
    site = root / SITE.lstrip("/")
    make_dist(site, "good", "1.0")
    return root, site


def _scan_root(root):
    target = resolve_target(TargetSpec(root=str(root)))
    r = Root(str(root))
    packages, _shadowed, unknowns = scan_distributions(target.search_path, r)
    builds, tf_unknowns = find_tensorflow(packages, target.search_path, r)
    return packages, unknowns, builds, tf_unknowns


def test_links_to_host_metadata_are_not_followed(img, host_site, tmp_path):
    root, site = img
    symlink(site / "host_only-6.6.6.dist-info", str(host_site / "host_only-6.6.6.dist-info"))
    symlink(
        site / "climb-1.0.dist-info", "../../../../../../../../../../" + str(host_site / "tensorflow-6.6.6.dist-info")
    )
    os.makedirs(site / "meta-1.0.dist-info")
    symlink(site / "meta-1.0.dist-info/METADATA", str(host_site / "host_only-6.6.6.dist-info/METADATA"))
    symlink(site / "tensorflow", str(host_site / "tensorflow"))
    packages, _unknowns, builds, _tfu = _scan_root(root)
    assert [p.name for p in packages] == ["good"]
    assert builds == ()


def test_tensorflow_build_info_link_to_host_is_not_read(img, host_site):
    root, site = img
    make_dist(site, "tensorflow", "2.21.0")
    os.makedirs(site / "tensorflow/python/platform")
    write(site / "tensorflow/__init__.py", "")
    symlink(site / BUILD_INFO, str(host_site / BUILD_INFO))
    _p, _u, (build,), tf_unknowns = _scan_root(root)
    assert build.cuda_version is None
    assert any("has no" in u.reason for u in tf_unknowns)


@pytest.mark.parametrize("victim", ["METADATA", "WHEEL", BUILD_INFO, "requires.txt"])
def test_fifo_in_place_of_a_file_does_not_block(tmp_path, victim):
    site = tmp_path / "site"
    dist = make_dist(site, "tensorflow", "2.21.0", wheel_tags=["cp311-cp311-manylinux_2_17_x86_64"])
    make_tf(site, "2.21.0", BUILD_INFO_2_21_0)
    make_dist(site, "other", "1.0")
    path = {
        "METADATA": os.path.join(dist, "METADATA"),
        "WHEEL": os.path.join(dist, "WHEEL"),
        "requires.txt": str(site / "egg.egg-info/requires.txt"),
    }.get(victim, str(site / victim))
    if victim == "requires.txt":
        write(site / "egg.egg-info/PKG-INFO", "Name: egg\nVersion: 1\n")
    os.unlink(path) if os.path.exists(path) else None
    os.mkfifo(path)
    start = time.monotonic()
    packages, _shadowed, unknowns = scan_distributions([str(site)])
    builds, tf_unknowns = find_tensorflow(packages, [str(site)])
    assert time.monotonic() - start < 5
    names = [p.name for p in packages]
    assert "other" in names
    if victim == "METADATA":
        assert "tensorflow" not in names
        assert any("FIFO" in u.reason and u.fact.startswith("packages.") for u in unknowns)
    if victim == BUILD_INFO:
        assert any("FIFO" in u.reason for u in tf_unknowns)
    if victim == "WHEEL":
        assert builds[0].wheel_tags == ()


def test_device_links_on_the_host_are_refused(tmp_path):
    site = tmp_path / "site"
    os.makedirs(site / "zero-1.0.dist-info")
    symlink(site / "zero-1.0.dist-info/METADATA", "/dev/zero")
    make_dist(site, "tensorflow", "2.21.0")
    make_tf(site, "2.21.0", None)
    symlink(site / BUILD_INFO, "/dev/urandom")
    start = time.monotonic()
    packages, _s, unknowns = scan_distributions([str(site)])
    builds, tf_unknowns = find_tensorflow(packages, [str(site)])
    assert time.monotonic() - start < 5
    assert [p.name for p in packages] == ["tensorflow"]
    assert any("character device" in u.reason for u in unknowns)
    assert any("character device" in u.reason for u in tf_unknowns)
    assert builds[0].build_info_path is None


def test_huge_metadata_line_is_bounded(tmp_path):
    site = tmp_path / "site"
    dist = site / "big-1.0.dist-info"
    os.makedirs(dist)
    with open(dist / "METADATA", "wb") as fh:
        fh.write(b"Name: big\nVersion: 1.0\nSummary: " + b"x" * (20 << 20) + b"\n")
    start = time.monotonic()
    assert read_headers(str(dist / "METADATA"))["name"] == ["big"]
    (pkg,), _ = scan_packages([str(site)])
    assert pkg.version == "1.0"
    assert time.monotonic() - start < 5


def test_non_utf8_everywhere(tmp_path):
    site = tmp_path / "site"
    dist = make_dist(site, "tensorflow", "2.21.0")
    with open(os.path.join(dist, "WHEEL"), "wb") as fh:
        fh.write(b"Wheel-Version: 1.0\n\xff\xfe\nTag: cp311-cp311-linux_x86_64\n")
    write(site / "egg.egg-info/PKG-INFO", "Name: egg\nVersion: 1\n")
    with open(site / "egg.egg-info/requires.txt", "wb") as fh:
        fh.write(b"numpy\xff\n[:python_version<'3.12']\nsix\n")
    make_tf(site, "2.21.0", None)
    os.makedirs(site / "tensorflow/python/platform")
    with open(site / BUILD_INFO, "wb") as fh:
        fh.write(b"build_info = {'cuda_version': '\xff'}\n")
    packages, _s, _u = scan_distributions([str(site)])
    by_name = {p.name: p for p in packages}
    assert by_name["egg"].requires[1] == "six; python_version<'3.12'"
    (build,), tf_unknowns = find_tensorflow(packages, [str(site)])
    assert build.wheel_tags == ("cp311-cp311-linux_x86_64",)
    assert any("cannot read" in u.reason for u in tf_unknowns)


def test_oversized_build_info_is_an_unknown(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "tensorflow", "2.21.0")
    make_tf(site, "2.21.0", BUILD_INFO_2_21_0 + "#" * (2 << 20) + "\n")
    packages, _ = scan_packages([str(site)])
    (build,), unknowns = find_tensorflow(packages, [str(site)])
    assert build.cuda_version is None
    assert any("larger than" in u.reason for u in unknowns)


def test_pyvenv_cfg_fifo_and_bad_bytes_in_image(tmp_path):
    root = tmp_path / "img"
    os.makedirs(root / "venv/lib/python3.11/site-packages")
    os.makedirs(root / "venv/bin")
    write(root / "venv/bin/python", "")
    os.mkfifo(root / "venv/pyvenv.cfg")
    t = resolve_target(TargetSpec(root=str(root), python="/venv/bin/python"))
    assert t.python.version == "3.11"
    os.unlink(root / "venv/pyvenv.cfg")
    with open(root / "venv/pyvenv.cfg", "wb") as fh:
        fh.write(b"home = /usr/bin\n\xff\xfe = \x80\nversion = 3.11.9\n")
    t = resolve_target(TargetSpec(root=str(root), python="/venv/bin/python"))
    assert t.python.version == "3.11.9"


def test_platform_files_as_fifos(tmp_path):
    root = tmp_path / "img"
    os.makedirs(root / "etc")
    os.mkfifo(root / "etc/os-release")
    write(root / "usr/lib/os-release", 'PRETTY_NAME="Fallback"\n')
    os.makedirs(root / "proc")
    os.mkfifo(root / "proc/cpuinfo")
    os.makedirs(root / "lib/x86_64-linux-gnu")
    os.mkfifo(root / "lib/x86_64-linux-gnu/libc.so.6")
    start = time.monotonic()
    platform, _unknowns = probe_platform(Root(str(root)))
    assert time.monotonic() - start < 5
    assert platform.os_release == "Fallback"
    assert platform.glibc is None


def test_libc_link_to_host_is_not_read(tmp_path):
    root = tmp_path / "img"
    os.makedirs(root / "lib/x86_64-linux-gnu")
    symlink(root / "lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6")
    platform, _u = probe_platform(Root(str(root)))
    assert platform.glibc is None


def test_glibc_banner_search_is_linear(tmp_path):
    # the old regex `GNU C Library [^\n]*?version` was quadratic on this
    evil = b"GNU C Library " * (400_000) + b"\n"
    path = make_fake_libc(
        tmp_path / "libc.so.6", evil + b"GNU C Library (Debian GLIBC 2.36-9) stable release version 2.36."
    )
    assert os.path.getsize(path) > 5_000_000
    start = time.monotonic()
    assert glibc_version(path) == "2.36"
    assert time.monotonic() - start < 2
    assert find_banner_version(b"GNU C Library (Ubuntu GLIBC 2.35-0ubuntu3.1) stable release version 2.35.") == "2.35"
    assert find_banner_version(b"GNU C Library stable\nrelease version 2.35.") is None  # not on its line


def test_kfd_hostile_nodes(tmp_path, host_site):
    root = tmp_path / "img"
    kfd = root / "sys/class/kfd/kfd/topology/nodes"
    write(kfd / "1/properties", "gfx_target_version 90010\n")
    write(kfd / "²/properties", "gfx_target_version 110000\n")  # '²'.isdigit() is True, int() of it fails
    os.makedirs(kfd / "3")
    with open(kfd / "3/properties", "wb") as fh:
        fh.write(b"name \xff\xfe\ngfx_target_version 90402\n")
    os.makedirs(kfd / "4")
    os.mkfifo(kfd / "4/properties")
    write(tmp_path / "host-node/properties", "gfx_target_version 100300\n")
    symlink(kfd / "5", str(tmp_path / "host-node"))
    write(kfd / "6/properties", "gfx_target_version " + "9" * 5000 + "\n")
    start = time.monotonic()
    rocm, _u = probe_rocm(Root(str(root)))
    assert time.monotonic() - start < 5
    assert sorted(g.gfx_target for g in rocm.gpus) == ["gfx1100", "gfx90a", "gfx942"]
    assert {g.node for g in rocm.gpus} == {1, 3, -1}


def test_record_entries_stay_inside_the_root(img, tmp_path):
    from tfcompat.probes.packages import record_files

    root, site = img
    dist = make_dist(site, "plugin", "1.0")
    write(
        os.path.join(dist, "RECORD"),
        "plugin/_op.so,sha256=x,10\n"
        "/usr/lib/x86_64-linux-gnu/libc.so.6,,\n"
        "../../../../../../../../etc/passwd,,\n"
        '"plugin/with,comma.so",,\n' + "x" * 200_000 + ",,\n",
    )  # over csv's field limit: skipped, not fatal
    with open(os.path.join(dist, "RECORD"), "ab") as fh:
        fh.write(b"plugin/\xff\xfe.so,,\n")
    r = Root(str(root))
    pkg = next(p for p in scan_packages([r.path(SITE)], r)[0] if p.name == "plugin")
    files, why = record_files(pkg, r)
    assert why is None
    assert all(f.startswith(str(root) + "/") for f in files)
    assert f"{root}{SITE}/plugin/_op.so" in files
    assert f"{root}/usr/lib/x86_64-linux-gnu/libc.so.6" in files
    assert f"{root}/etc/passwd" in files
    assert f"{root}{SITE}/plugin/with,comma.so" in files
    assert len(files) == 5


def test_record_fifo_is_a_reason(tmp_path):
    from tfcompat.probes.packages import record_files

    site = tmp_path / "site"
    dist = make_dist(site, "plugin", "1.0")
    os.mkfifo(os.path.join(dist, "RECORD"))
    (pkg,), _ = scan_packages([str(site)])
    files, why = record_files(pkg)
    assert files == [] and "FIFO" in why


def test_scan_of_a_hostile_root_ends(tmp_path, host_site):
    """The whole CLI over an image whose files (the ones these probes read) are FIFOs, devices' links and
    links to the host: it ends, and no host package shows up."""
    import json
    import subprocess
    import sys

    root = tmp_path / "img"
    site = root / SITE.lstrip("/")
    make_dist(site, "good", "1.0")
    make_dist(site, "tensorflow", "2.21.0", wheel_tags=["cp311-cp311-manylinux_2_17_x86_64"])
    make_tf(site, "2.21.0", None)
    os.makedirs(site / "tensorflow/python/platform")
    os.mkfifo(site / BUILD_INFO)
    os.unlink(site / "tensorflow-2.21.0.dist-info/WHEEL")
    os.mkfifo(site / "tensorflow-2.21.0.dist-info/WHEEL")
    os.makedirs(site / "fifo-1.0.dist-info")
    os.mkfifo(site / "fifo-1.0.dist-info/METADATA")
    symlink(site / "host_only-6.6.6.dist-info", str(host_site / "host_only-6.6.6.dist-info"))
    os.makedirs(root / "etc")
    os.mkfifo(root / "etc/os-release")
    os.makedirs(root / "proc")
    os.mkfifo(root / "proc/cpuinfo")
    symlink(root / "sys/class/kfd/kfd/topology/nodes/0", "/sys/class/kfd/kfd/topology/nodes/0")
    proc = subprocess.run(
        [sys.executable, "-m", "tfcompat", "scan", "--root", str(root), "--no-nvml"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    env = json.loads(proc.stdout)
    names = {p["name"] for p in env["target"]["packages"]}
    assert names == {"good", "tensorflow"}
    reasons = " ".join(u["reason"] for u in env["unknowns"])
    assert "FIFO" in reasons
