"""Hostile trees (#17 items 2, 3) for the files the native probes read: a plugin package's RECORD and its
entries, a plugin's build-id, the nvidia-* wheels' RECORD, cudnn_version.h, a toolkit's version.json,
ld.so.cache, ld.so.conf's include directory, the loader's library directories, and `check --from`'s
snapshot. In place of each: a FIFO, a link to /dev/zero, a link to the host (absolute and ../). The scan
ends, nothing outside the root is read (the host files carry the marker 4242 that must never show up),
and the one bad thing becomes an unknown with its reason."""

import json
import os
import time

import pytest
from elf_fixtures import write_so
from probe_helpers import make_dist, write
from test_ldcache import new_cache_body
from test_libraries import SITE, X86_64, by_name, make_image, probe

from tfcompat.model import SnapshotError, read_snapshot, to_json_dict
from tfcompat.probes.custom_ops import build_id, discover
from tfcompat.probes.native.config import LoaderConfig
from tfcompat.probes.native.elf import clear_cache
from tfcompat.probes.native.ldcache import LdCacheError, read_ld_cache, read_ld_so_conf
from tfcompat.probes.native.loader import Loader
from tfcompat.probes.packages import scan_packages
from tfcompat.probes.rootfs import Root
from tfcompat.probes.target import TargetSpec
from tfcompat.scan import scan

MARK = "4242"
HOW = ["fifo", "zero", "abs", "dotdot"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def host(tmp_path):
    """Files outside the root that a link in the image may point at; each carries MARK."""
    h = tmp_path / "host"
    write_so(h / "plugin/_op.so", soname=None, needed=("libtensorflow_framework.so.2",))
    write(h / "plugin-1.0.dist-info/RECORD", "../plugin/_op.so,,\n")
    write(
        h / "include/cudnn_version.h",
        f"#define CUDNN_MAJOR 9\n#define CUDNN_MINOR {MARK}\n#define CUDNN_PATCHLEVEL 0\n",
    )
    write(
        h / "cuda/version.json",
        json.dumps({"cuda": {"version": f"12.{MARK}"}, "cuda_cudart": {"version": f"12.{MARK}.1"}}),
    )
    write(h / "conf.d/host.conf", f"/host-{MARK}\n")
    write_so(h / "lib/libcudart.so.12")
    return h


def _quick(start, limit=10):
    assert time.monotonic() - start < limit


def plant(path, how, host_target, root):
    """Put a FIFO, a /dev/zero link or a link to `host_target` (absolute, or ../ climbing out) at `path`."""
    path = str(path)
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            import shutil

            shutil.rmtree(path)
        else:
            os.unlink(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if how == "fifo":
        os.mkfifo(path)
    elif how == "zero":
        os.symlink("/dev/zero", path)
    elif how == "abs":
        os.symlink(str(host_target), path)
    else:  # enough ../ to climb out of the root on the host, then the host path
        depth = os.path.relpath(path, str(root)).count("/") + 12
        os.symlink("../" * depth + str(host_target).lstrip("/"), path)


def _no_mark(env):
    text = json.dumps(to_json_dict(env))
    assert MARK not in text


# -- a plugin package's RECORD and what it names -----------------------------------------------------------


@pytest.mark.parametrize("how", HOW)
def test_plugin_record_stays_inside_the_root(tmp_path, host, how):
    root = tmp_path / "img"
    make_image(root)
    site = str(root) + SITE
    info = make_dist(site, "plugin", "1.0")
    plant(os.path.join(info, "RECORD"), how, host / "plugin-1.0.dist-info/RECORD", root)
    start = time.monotonic()
    r = Root(str(root))
    packages, _ = scan_packages([site], r)
    found, unknowns = discover(packages, ["tensorflow"], (), r)
    _quick(start)
    assert found == []
    if how == "fifo":
        assert [u.fact for u in unknowns] == ["custom_ops.plugin"]
        assert "FIFO" in unknowns[0].reason
    else:  # /dev/zero and the host path re-anchor at the root: there is no such file in the image
        assert unknowns == []


def test_plugin_record_entries_pointing_out_are_not_read(tmp_path, host):
    root = tmp_path / "img"
    make_image(root)
    site = str(root) + SITE
    info = make_dist(site, "plugin", "1.0")
    climb = "../" * 20 + str(host).lstrip("/")
    write(os.path.join(info, "RECORD"), f"{host}/plugin/_op.so,,\n{climb}/plugin/_op.so,,\n")
    r = Root(str(root))
    packages, _ = scan_packages([site], r)
    found, _u = discover(packages, ["tensorflow"], (), r)
    assert found == []
    # the same entries with the plugin inside the image are found there
    write_so(str(root) + f"{host}/plugin/_op.so", soname=None, needed=("libtensorflow_framework.so.2",))
    found, _u = discover(packages, ["tensorflow"], (), r)
    assert {p for _o, p in found} == {str(root) + f"{host}/plugin/_op.so"}


def test_plugin_record_device_on_the_host(tmp_path):
    site = tmp_path / "site"
    info = make_dist(site, "plugin", "1.0")
    os.symlink("/dev/zero", os.path.join(info, "RECORD"))
    packages, _ = scan_packages([str(site)])
    start = time.monotonic()
    found, unknowns = discover(packages, ["tensorflow"])
    _quick(start)
    assert found == [] and "character device" in unknowns[0].reason


@pytest.mark.parametrize("how", ["fifo", "zero"])
def test_build_id_of_a_fifo_or_device_is_none(tmp_path, how):
    path = tmp_path / "op.so"
    plant(path, how, None, tmp_path)
    start = time.monotonic()
    assert build_id(str(path)) is None
    _quick(start)


# -- the files library_versions reads -----------------------------------------------------------------------


@pytest.mark.parametrize("how", HOW)
def test_wheel_record_of_a_library(tmp_path, host, how):
    root = tmp_path / "img"
    site = make_image(root)
    info = os.path.join(site, "nvidia_cuda_runtime_cu12-12.5.82.dist-info")
    plant(os.path.join(info, "RECORD"), how, host / "plugin-1.0.dist-info/RECORD", root)
    start = time.monotonic()
    native, unknowns = probe(root)
    _quick(start)
    cudart = by_name(native)["cudart"].found
    assert cudart is not None and cudart.distribution is None  # the version comes from elsewhere, not the wheel
    if how == "fifo":
        assert any(
            u.fact == "libraries.versions" and "FIFO" in u.reason and "nvidia-cuda-runtime-cu12" in u.reason
            for u in unknowns
        )
    assert not any(u.fact == "libraries" for u in unknowns)


def _system_cudnn(root):
    make_image(root, skip=("cudnn",), cache_entries=[("libcudnn.so.9", "/usr/lib/x86_64-linux-gnu/libcudnn.so.9")])
    write_so(root / "usr/lib/x86_64-linux-gnu/libcudnn.so.9")
    return root / "usr/include/x86_64-linux-gnu/cudnn_version_v9.h"


@pytest.mark.parametrize("how", HOW)
def test_cudnn_header(tmp_path, host, how):
    root = tmp_path / "img"
    header = _system_cudnn(root)
    plant(header, how, host / "include/cudnn_version.h", root)
    start = time.monotonic()
    native, unknowns = probe(root)
    _quick(start)
    cudnn = by_name(native)["cudnn"].found
    assert cudnn is not None and MARK not in (cudnn.version or "")
    assert cudnn.version == "9"  # the file name's major only
    if how == "fifo":
        assert any(u.fact == "libraries.versions" and "FIFO" in u.reason for u in unknowns)


def _toolkit(root):
    make_image(
        root, skip=("cuda_runtime",), cache_entries=[("libcudart.so.12", "/usr/local/cuda/lib64/libcudart.so.12")]
    )
    write_so(root / "usr/local/cuda/lib64/libcudart.so.12")
    return root / "usr/local/cuda/version.json"


@pytest.mark.parametrize("how", HOW)
def test_toolkit_version_json(tmp_path, host, how):
    root = tmp_path / "img"
    version_json = _toolkit(root)
    write(version_json, json.dumps({"cuda": {"version": "12.5.1"}, "cuda_cudart": {"version": "12.5.82"}}))
    native, _ = probe(root)
    assert by_name(native)["cudart"].found.version == "12.5.82"  # the layout works when the file is honest
    clear_cache()
    plant(version_json, how, host / "cuda/version.json", root)
    start = time.monotonic()
    native, unknowns = probe(root)
    _quick(start)
    cudart = by_name(native)["cudart"].found
    assert cudart.version == "12" and MARK not in json.dumps(to_json_dict(native))
    if how == "fifo":
        assert any(u.fact == "libraries.versions" and "FIFO" in u.reason for u in unknowns)


# -- the loader's files: ld.so.cache, ld.so.conf includes, library directories ------------------------------


@pytest.mark.parametrize("how", HOW)
def test_ld_so_cache(tmp_path, host, how):
    root = tmp_path / "img"
    write(host / "ld.so.cache", "")
    with open(host / "ld.so.cache", "wb") as fh:
        fh.write(new_cache_body([(X86_64, "libcudart.so.12", str(host / "lib/libcudart.so.12"), None)]))
    plant(root / "etc/ld.so.cache", how, host / "ld.so.cache", root)
    start = time.monotonic()
    cfg = LoaderConfig.detect(Root(str(root)))
    _quick(start)
    assert cfg.cache is None
    assert ("FIFO" in cfg.cache_problem) if how == "fifo" else cfg.cache_problem.startswith("no /etc/ld.so.cache")


def test_ld_so_cache_device_on_the_host(tmp_path):
    os.symlink("/dev/zero", tmp_path / "ld.so.cache")
    start = time.monotonic()
    with pytest.raises(LdCacheError, match="character device") as err:
        read_ld_cache(Root(None), str(tmp_path / "ld.so.cache"))
    _quick(start)
    assert str(err.value).count(str(tmp_path)) == 1  # the path once, one line


@pytest.mark.parametrize("how", ["abs", "dotdot", "fifo"])
def test_ld_so_conf_include_dir(tmp_path, host, how):
    root = tmp_path / "img"
    write(root / "etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n/usr/local/lib\n")
    plant(root / "etc/ld.so.conf.d", how, host / "conf.d", root)
    write(root / "etc/ld.so.conf.d.real/x.conf", "/opt/x\n")
    start = time.monotonic()
    dirs = read_ld_so_conf(Root(str(root)))
    _quick(start)
    assert dirs == ["/usr/local/lib"]


def test_ld_so_conf_include_glob_inside_the_root(tmp_path):
    root = tmp_path / "img"
    write(root / "etc/ld.so.conf", "include ld.so.conf.d/*.conf\n")
    write(root / "etc/ld.so.conf.d/b.conf", "/b\n")
    write(root / "etc/ld.so.conf.d/a.conf", "/a\ninclude /etc/more.conf\n")
    write(root / "etc/ld.so.conf.d/.hidden.conf", "/hidden\n")
    os.mkfifo(root / "etc/ld.so.conf.d/c.conf")
    write(root / "etc/more.conf", "/more\n")
    assert read_ld_so_conf(Root(str(root))) == ["/a", "/more", "/b"]


@pytest.mark.parametrize("how", ["abs", "dotdot"])
def test_library_dir_linked_to_the_host_is_listed_inside_the_root(tmp_path, host, how):
    root = tmp_path / "img"
    os.makedirs(root / "usr")
    plant(root / "usr/hostlib", how, host / "lib", root)
    loader = Loader(LoaderConfig(root=Root(str(root)), default_dirs=("/usr/hostlib",)))
    assert loader.listing("/usr/hostlib") == frozenset()
    assert loader.lookup("libcudart.so.12").winner is None


def test_library_dir_listing_on_the_host(tmp_path, host):
    loader = Loader(LoaderConfig(root=Root(None), default_dirs=(str(host / "lib"),)))
    assert "libcudart.so.12" in loader.listing(str(host / "lib"))
    assert loader.lookup("libcudart.so.12").winner.host_path == str(host / "lib/libcudart.so.12")


# -- check --from ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["fifo", "zero", "big", "dir"])
def test_snapshot_that_is_not_a_regular_small_file(tmp_path, how):
    path = tmp_path / "snap.json"
    if how == "big":
        with open(path, "wb") as fh:
            fh.truncate((64 << 20) + 1)  # sparse
    elif how == "dir":
        os.mkdir(path)
    else:
        plant(path, how, None, tmp_path)
    start = time.monotonic()
    with pytest.raises(SnapshotError) as err:
        read_snapshot(str(path))
    _quick(start)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}: cannot read snapshot: ")
    assert text.count(str(path)) == 1
    assert {"fifo": "FIFO", "zero": "character device", "big": "larger than the 64 MiB", "dir": "directory"}[
        how
    ] in text


def test_check_from_a_fifo_is_one_line_exit_2(tmp_path, capsys):
    from tfcompat.cli import main

    os.mkfifo(tmp_path / "snap.json")
    with pytest.raises(SystemExit) as exc:
        main(["check", "--from", str(tmp_path / "snap.json")])
    _out, err = capsys.readouterr()
    assert exc.value.code == 2
    assert err.strip().count("\n") == 0 and "FIFO" in err


# -- the whole scan ----------------------------------------------------------------------------------------


def test_whole_scan_of_an_image_full_of_hostile_files(tmp_path, host):
    """Every file above replaced at once: the scan ends, MARK (host content) is nowhere in the snapshot,
    and each bad file is an unknown with its reason while the rest is still reported."""
    root = tmp_path / "img"
    site = make_image(root, cache_entries=[("libcudart.so.12", "/usr/local/cuda/lib64/libcudart.so.12")])
    write_so(root / "usr/local/cuda/lib64/libcudart.so.12")
    plant(root / "usr/local/cuda/version.json", "abs", host / "cuda/version.json", root)
    plant(os.path.join(site, "nvidia/cudnn/include/cudnn_version.h"), "fifo", None, root)
    plant(os.path.join(site, "nvidia_nccl_cu12-2.27.7.dist-info/RECORD"), "fifo", None, root)
    info = make_dist(site, "plugin", "1.0")
    plant(os.path.join(info, "RECORD"), "dotdot", host / "plugin-1.0.dist-info/RECORD", root)
    info = make_dist(site, "plugin2", "1.0")
    write(os.path.join(info, "RECORD"), f"{host}/plugin/_op.so,,\n")
    write(root / "etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n")
    plant(root / "etc/ld.so.conf.d", "abs", host / "conf.d", root)
    plant(root / "usr/lib/x86_64-linux-gnu/glibc-hwcaps", "abs", host / "lib", root)
    start = time.monotonic()
    env = scan(TargetSpec(root=str(root), site_packages=(SITE,)), nvml=False)
    _quick(start, 30)
    _no_mark(env)
    assert env.target.custom_ops == ()
    assert env.target.native is not None, env.unknowns
    libs = {lib.name: lib for lib in env.target.native.libraries}
    assert libs["cudnn"].found.version == "9.3.0.75"  # from its wheel; the FIFO header was not needed
    assert libs["nccl"].found.distribution is None  # its RECORD is the FIFO
    reasons = [(u.fact, u.reason) for u in env.unknowns]
    assert any(f == "custom_ops.nvidia-nccl-cu12" and "FIFO" in r for f, r in reasons), reasons
    assert any(f == "libraries.versions" and "FIFO" in r for f, r in reasons), reasons
    assert env.target.native is not None and env.tensorflow is not None


# -- /proc and /sys files of the resources and driver probes, ld.so.preload ---------------------------------


@pytest.mark.parametrize("how", HOW)
def test_proc_files_of_resources_driver_and_loader(tmp_path, host, how):
    from tfcompat.probes.nvidia import probe_nvidia
    from tfcompat.probes.resources import probe_resources

    root = tmp_path / "img"
    write(host / "mounts", f"tmpfs /dev/shm tmpfs rw,size={MARK}k 0 0\n")
    write(host / "version", f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {MARK}.54.15  Tue\n")
    write(host / "preload", f"/lib/lib{MARK}.so\n")
    for path, target in (
        ("proc/mounts", "mounts"),
        ("proc/self/mounts", "mounts"),
        ("proc/meminfo", "mounts"),
        ("sys/fs/cgroup/memory.max", "mounts"),
        ("proc/driver/nvidia/version", "version"),
        ("etc/ld.so.preload", "preload"),
    ):
        plant(root / path, how, host / target, root)
    r = Root(str(root))
    start = time.monotonic()
    resources, _ru = probe_resources(r, environ={})
    driver, _gpus, _nu = probe_nvidia(r, nvml=False, driver_sonames=())
    cfg = LoaderConfig.detect(r)
    _quick(start)
    assert resources.shm_bytes is None
    assert driver is None or MARK not in (driver.kernel_module_version or "")
    assert cfg.preload_file == ()
