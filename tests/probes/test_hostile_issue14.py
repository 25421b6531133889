"""An attacker's read of the readers issue #14 added: conda-meta records, INSTALLER / direct_url.json /
top_level.txt / RECORD, the Apptainer environment file, graph_pb2.py and NumPy's headers, the .nv_fatbin and
.hip_fatbin readers, the parsed-matrix cache, and the legacy tensorflow_core/ lookups. In place of each file: a
FIFO, a link to /dev/zero, a link to the host (absolute and ../), a huge file, deep JSON, bad UTF-8. The read
ends within seconds, nothing outside the root is read (host files carry MARK, which must never show up), and the
bad file is one unknown with a one-line reason, or no fact at all."""

import json
import os
import random
import struct
import subprocess
import sys
import time
import zlib

import pytest
from conda_fixtures import PREFIX, record
from probe_helpers import make_dist, make_tf, write
from test_fatbin import container, elf_with_section, entry

from tfcompat.matrix import cache as matrix_cache
from tfcompat.model import to_json_dict
from tfcompat.probes.build_abi import read_abi_facts
from tfcompat.probes.conda import probe_conda
from tfcompat.probes.native.elf import clear_cache
from tfcompat.probes.native.fatbin import KIND_ELF, read_tensorflow_binaries, walk
from tfcompat.probes.native.offload_bundle import MAX_BUNDLES, MAX_INFLATED, scan_buffer, scan_offload
from tfcompat.probes.packages import scan_packages
from tfcompat.probes.provenance import probe_provenance
from tfcompat.probes.rootfs import Root
from tfcompat.probes.target import TargetSpec
from tfcompat.probes.tensorflow import find_tensorflow
from tfcompat.scan import scan

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures", "offload"))
import build_offload_fixtures as fx

MARK = "4242"
HOW = ["fifo", "zero", "abs", "dotdot"]
SITE = PREFIX + "/lib/python3.9/site-packages"
ENV_FILE = "/.singularity.d/env/10-docker2singularity.sh"


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def plant(path, how, host_target, root):
    """A FIFO, a /dev/zero link or a link to `host_target` (absolute, or ../ climbing out of the root) at `path`."""
    path = str(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.unlink(path)
    if how == "fifo":
        os.mkfifo(path)
    elif how == "zero":
        os.symlink("/dev/zero", path)
    elif how == "abs":
        os.symlink(str(host_target), path)
    else:
        depth = os.path.relpath(path, str(root)).count("/") + 12
        os.symlink("../" * depth + str(host_target).lstrip("/"), path)


def timed(fn, *args, limit=5.0, **kw):
    start = time.monotonic()
    out = fn(*args, **kw)
    assert time.monotonic() - start < limit, f"{fn.__name__} took {time.monotonic() - start:.1f} s"
    return out


def one_line(unknowns):
    for u in unknowns:
        assert "\n" not in u.reason and "Traceback" not in u.reason, u.reason
        assert MARK not in u.reason


# -- conda-meta/*.json -------------------------------------------------------------------------------------


def _host_record(host):
    """A conda record on the host naming a MARK version: it must never be read."""
    data = {"name": "cudnn", "version": f"8.{MARK}", "build": "h0_0", "files": [f"lib/libcudnn.so.{MARK}"]}
    return write(host / "cudnn-8.0-h0_0.json", json.dumps(data))


@pytest.mark.parametrize("how", HOW)
def test_conda_record_fifo_device_or_link_out(tmp_path, how):
    root = tmp_path / "img"
    host = _host_record(tmp_path / "host")
    plant(f"{root}{PREFIX}/conda-meta/cudnn-8.0-h0_0.json", how, host, root)
    (root / SITE.lstrip("/")).mkdir(parents=True)
    pkgs, unknowns = timed(probe_conda, Root(str(root)), [SITE])
    assert pkgs == ()
    one_line(unknowns)
    assert [u.fact for u in unknowns] == ["conda"]
    if how == "fifo":
        assert "FIFO" in unknowns[0].reason
    else:  # /dev/zero and the host path re-anchor inside the root, where nothing is
        assert "No such file" in unknowns[0].reason


@pytest.mark.parametrize("how", ["abs", "dotdot"])
def test_conda_meta_dir_linked_to_the_host_is_listed_inside_the_root(tmp_path, how):
    root = tmp_path / "img"
    _host_record(tmp_path / "host" / "conda-meta")
    (root / SITE.lstrip("/")).mkdir(parents=True)
    plant(f"{root}{PREFIX}/conda-meta", how, tmp_path / "host" / "conda-meta", root)
    pkgs, unknowns = timed(probe_conda, Root(str(root)), [SITE])
    assert pkgs == () and unknowns == []


@pytest.mark.parametrize(
    "content, why",
    [
        (b"[" * 200_000 + b"]" * 200_000, "not JSON"),  # deeper than the JSON decoder's recursion
        (b'{"name": "cudnn", "version": "8", "build": "x", "files": {"a": ' * 100_000, "not JSON"),
        (b'{"name": "cud\xffnn", "version": "8\xfe", "build": "h_0"}', None),  # bad UTF-8: replaced, still read
        (b"\xff\xfe\x00" * 1000, "not JSON"),
        (b'"just a string"', "not a conda-meta record"),
    ],
)
def test_conda_record_garbage_is_one_line(tmp_path, content, why):
    root = tmp_path / "img"
    path = root / f"{PREFIX.lstrip('/')}/conda-meta/cudnn-8.0-h0_0.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    pkgs, unknowns = timed(probe_conda, Root(str(root)), [SITE])
    one_line(unknowns)
    if why is None:
        assert [p.name for p in pkgs] == ["cud\ufffdnn"] and unknowns == []
    else:
        assert pkgs == () and len(unknowns) == 1 and why in unknowns[0].reason
        assert len(unknowns[0].reason) < 400


def test_conda_record_of_100_mb_is_refused(tmp_path):
    root = tmp_path / "img"
    path = root / f"{PREFIX.lstrip('/')}/conda-meta/cudnn-8.0-h0_0.json"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as fh:
        fh.truncate(100 << 20)  # sparse: 100 MB of zeros
    pkgs, unknowns = timed(probe_conda, Root(str(root)), [SITE])
    assert pkgs == () and "larger than the 64 MiB" in unknowns[0].reason


def test_conda_files_list_of_ten_million_entries(tmp_path):
    """10,000,000 `files` rows (47 MB, under the 64 MiB cap): parsed in bounded time, the library kept is capped."""
    root = tmp_path / "img"
    path = root / f"{PREFIX.lstrip('/')}/conda-meta/cudnn-8.0-h0_0.json"
    path.parent.mkdir(parents=True)
    head = b'{"name": "cudnn", "version": "8.0", "build": "h0_0", "files": ['
    with open(path, "wb") as fh:
        fh.write(head + b'"lib/libcudnn.so.8",' * 10 + b'"a",' * 9_999_990 + b'"a"]}')
    pkgs, unknowns = timed(probe_conda, Root(str(root)), [SITE], limit=20)
    assert unknowns == [] and len(pkgs[0].libraries) == 10


def test_conda_files_rows_with_dotdot_and_absolute_paths_stay_in_the_prefix(tmp_path):
    """A `files` row is only ever a name under the prefix: absolute rows and rows climbing out are not kept."""
    root = tmp_path / "img"
    files = [
        "/etc/libshadow.so",
        "../../../../etc/libx.so.1",
        "lib/../../../../../etc/liby.so.1",
        "targets/../lib/libcudnn.so.8",  # stays in the prefix: kept, as the prefix's lib/libcudnn.so.8
        "lib/libcudnn.so.8\0/../../etc/x.so",
        f"lib/{'a' * 100_000}.so",
    ]
    record(str(root), "cudnn", "8.1.0", "h0_0", files)
    pkgs, unknowns = timed(probe_conda, Root(str(root)), [SITE])
    assert unknowns == []
    (pkg,) = pkgs
    for lib in pkg.libraries:
        assert os.path.normpath(lib).startswith(PREFIX + "/"), lib
    assert [os.path.normpath(p) for p in pkg.libraries] == [PREFIX + "/lib/libcudnn.so.8"]


def test_whole_scan_with_hostile_conda_records_ends(tmp_path):
    root = tmp_path / "img"
    meta = root / PREFIX.lstrip("/") / "conda-meta"
    (root / SITE.lstrip("/")).mkdir(parents=True)
    meta.mkdir(parents=True)
    os.mkfifo(meta / "cudatoolkit-11.2-h0_0.json")
    os.symlink("/dev/zero", meta / "nccl-2.8-h0_0.json")
    (meta / "cudnn-8.0-h0_0.json").write_bytes(b"[" * 500_000)
    plant(meta / "libcublas-11.0-h0_0.json", "dotdot", _host_record(tmp_path / "host"), root)
    env = timed(scan, TargetSpec(root=str(root), site_packages=(SITE,)), nvml=False, limit=30)
    assert MARK not in json.dumps(to_json_dict(env))
    conda = [u for u in env.unknowns if u.fact == "conda"]
    one_line(conda)
    assert len(conda) == 4, conda


# -- INSTALLER, direct_url.json, top_level.txt, RECORD; the Apptainer environment file ---------------------


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("name", ["INSTALLER", "direct_url.json", "top_level.txt", "RECORD"])
def test_provenance_files_of_a_distribution(tmp_path, how, name):
    root = tmp_path / "img"
    host = tmp_path / "host"
    texts = {
        "INSTALLER": f"pip{MARK}\n",
        "direct_url.json": json.dumps({"url": f"file:///{MARK}", "dir_info": {}}),
        "top_level.txt": f"pkg{MARK}\n",
        "RECORD": f"pkg{MARK}/__init__.py,,\n",
    }
    target = write(host / name, texts[name])
    site = f"{root}{SITE}"
    info = make_dist(site, "tf-nightly-thing", "1.0")
    plant(os.path.join(info, name), how, target, root)
    (pkg,), _shadowed = timed(scan_packages, [site], Root(str(root)))
    assert MARK not in json.dumps(to_json_dict(pkg))
    assert pkg.installer is None and pkg.direct_url is None and pkg.top_level == ()


@pytest.mark.parametrize("name", ["INSTALLER", "direct_url.json", "top_level.txt", "RECORD"])
def test_provenance_files_huge_deep_or_not_utf8(tmp_path, name):
    root = tmp_path / "img"
    site = f"{root}{SITE}"
    info = make_dist(site, "tensorflow-io", "1.0")
    cases = {
        "INSTALLER": b"\xff\xfe" * 200_000,  # over the 256 KiB cap
        "direct_url.json": b'{"url": "x", "dir_info": ' * 60_000,  # deep, under the cap
        "top_level.txt": b"\xff\n" * 100_000 + b"ok\n",
        "RECORD": b"../../../etc/shadow,,\n/etc/passwd,,\n..,,\n../x.py,,\n" + b"\xff/\xfe,,\n" * 1_000_000,
    }
    with open(os.path.join(info, name), "wb") as fh:
        fh.write(cases[name])
    (pkg,), _shadowed = timed(scan_packages, [site], Root(str(root)))
    assert pkg.installer is None and pkg.direct_url is None
    if name == "top_level.txt":
        assert pkg.top_level == ("ok",)
    elif name == "RECORD":  # no row climbs out: '..' and the host's names are not import packages
        assert all(t not in ("..", ".", "etc") and "/" not in t for t in pkg.top_level), pkg.top_level


def test_record_of_64_mib_of_blank_rows_for_top_level_is_bounded(tmp_path):
    """A TF-named distribution without top_level.txt has its RECORD read for its import packages: 64 MiB of
    empty rows (under the RECORD cap) took 12 s and 600 MiB as one list of lines; only the first rows are read."""
    root = tmp_path / "img"
    info = make_dist(f"{root}{SITE}", "tensorflow-hostile", "1.0")
    with open(os.path.join(info, "RECORD"), "wb") as fh:
        fh.write(b"tensorflow/__init__.py,,\n" + b"\n" * ((64 << 20) - 64))
    (pkg,), _ = timed(scan_packages, [f"{root}{SITE}"], Root(str(root)), limit=5)
    assert pkg.top_level == ("tensorflow",)


def test_record_of_100_mb_for_top_level_is_refused(tmp_path):
    root = tmp_path / "img"
    info = make_dist(f"{root}{SITE}", "tensorflow", "2.1.0")
    with open(os.path.join(info, "RECORD"), "wb") as fh:
        fh.truncate(100 << 20)
    (pkg,), _ = timed(scan_packages, [f"{root}{SITE}"], Root(str(root)))
    assert pkg.top_level == ()


@pytest.mark.parametrize("how", HOW)
def test_apptainer_env_file_fifo_device_or_link_out(tmp_path, how):
    host = write(tmp_path / "host" / "env.sh", f'export NVIDIA_TENSORFLOW_VERSION="{MARK}.01-tf2"\n')
    root = tmp_path / "img"
    plant(f"{root}{ENV_FILE}", how, host, root)
    prov, unknowns = timed(probe_provenance, Root(str(root)), None, [SITE], {})
    assert prov is None
    one_line(unknowns)
    assert [u.fact for u in unknowns] == ["ngc"]


@pytest.mark.parametrize(
    "content",
    [
        b"export NVIDIA_TENSORFLOW_VERSION=" + b'"' * (2 << 20),  # 2 MB line: read up to the text cap
        b'export NVIDIA_TENSORFLOW_VERSION="${NVIDIA_TENSORFLOW_VERSION:-"' + b"\\" * 500_000 + b'"}"\n',
        b"export NVIDIA_TENSORFLOW_VERSION=\xff\xfe\n" * 10_000,
        b" " * 1_000_000,
    ],
)
def test_apptainer_env_file_garbage_is_bounded(tmp_path, content):
    root = tmp_path / "img"
    path = root / ENV_FILE.lstrip("/")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    prov, unknowns = timed(probe_provenance, Root(str(root)), None, [SITE], {}, limit=2)
    assert prov is None and [u.fact for u in unknowns] == ["ngc"]


@pytest.mark.parametrize("what, how", [("dir", "abs"), ("dir", "dotdot")] + [("file", h) for h in HOW])
def test_libtensorflow_dir_or_file_linked_out(tmp_path, how, what):
    """/usr/local/lib (or libtensorflow.so.2 in it) a FIFO, /dev/zero or a link to the host's copy: no copy is
    reported from the host; the C library is judged by its name and never opened as anything but a file."""
    from elf_fixtures import write_so

    from tfcompat.probes.provenance import probe_libtensorflow

    host = tmp_path / "host" / "lib"
    write_so(host / f"libtensorflow.so.2.{MARK}.0", soname="libtensorflow.so.2")
    os.symlink(f"libtensorflow.so.2.{MARK}.0", host / "libtensorflow.so.2")
    root = tmp_path / "img"
    write(root / "etc/os-release", 'ID=ubuntu\nVERSION_ID="22.04"\n')
    if what == "dir":
        plant(root / "usr/local/lib", how, host, root)
    else:
        plant(root / "usr/local/lib/libtensorflow.so.2", how, host / "libtensorflow.so.2", root)
    copies, unknowns = timed(probe_libtensorflow, Root(str(root)))
    assert MARK not in repr(copies) + repr(unknowns)
    one_line(unknowns)


# -- graph_pb2.py and NumPy's headers ----------------------------------------------------------------------

_NUMPY = "tensorflow/include/external/local_config_python/numpy_include/numpy"


def test_graph_pb2_that_would_run_code_is_only_read(tmp_path):
    """A graph_pb2.py whose import would write a file: reading it must leave no such file."""
    witness = tmp_path / "ran"
    site = tmp_path / "img" / "site-packages"
    code = (
        "import os, sys\n"
        f"open({str(witness)!r}, 'w').write('imported')\n"
        "os.system('touch " + str(witness) + "')\n"
        "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile(b'x')\n"
    )
    write(site / "tensorflow/core/framework/graph_pb2.py", code)
    write(site / "tensorflow/core/framework/__init__.py", code)
    write(site / "tensorflow/__init__.py", code)
    facts = timed(read_abi_facts, Root(str(tmp_path / "img")), str(site))
    assert facts.pb2_gencode == "pool"
    assert not witness.exists()
    assert "tensorflow" not in sys.modules and "tensorflow.core" not in sys.modules


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("name", ["tensorflow/core/framework/graph_pb2.py", f"{_NUMPY}/_numpyconfig.h"])
def test_abi_files_fifo_device_or_link_out(tmp_path, how, name):
    host = write(
        tmp_path / "host" / "f",
        f"# Protobuf Python Version: {MARK}.0\nAddSerializedFile\n#define NPY_API_VERSION 0x{MARK}\n",
    )
    root = tmp_path / "img"
    site = root / "site-packages"
    plant(site / name, how, host, root)
    facts = timed(read_abi_facts, Root(str(root)), str(site))
    assert MARK not in repr(facts)
    assert facts.pb2_gencode is None and facts.numpy_c_api is None


@pytest.mark.parametrize("filler", [b"\n", b" \n", b"\t\n\n"])
def test_numpy_headers_of_blank_lines_are_linear(tmp_path, filler):
    """64 KiB of blank lines in both headers: a `^\\s*#define` pattern would retry every line start over the
    whole rest of the file (quadratic: ~4 s a header); the scan stays well under a second."""
    site = tmp_path / "img" / "site-packages"
    blank = filler * ((64 << 10) // len(filler))
    write(site / f"{_NUMPY}/_numpyconfig.h", blank.decode() + "#define NPY_API_VERSION 0x0000000E\n")
    write(site / f"{_NUMPY}/numpyconfig.h", blank.decode())
    facts = timed(read_abi_facts, Root(str(tmp_path / "img")), str(site), limit=1)
    assert facts.numpy_built_with is None  # the API line lies past the 64 KiB read
    big = tmp_path / "img2" / "site-packages" / _NUMPY
    write(big / "numpyconfig.h", "#define NPY_1_21_API_VERSION 0x0000000e\n" + blank.decode())
    write(big / "_numpyconfig.h", blank.decode()[: 32 << 10] + "#define NPY_API_VERSION 0x0000000E\n")
    facts = timed(read_abi_facts, Root(str(tmp_path / "img2")), str(tmp_path / "img2" / "site-packages"), limit=1)
    assert (facts.numpy_built_with, facts.numpy_c_api) == ("1.21", "0xe")


def test_graph_pb2_of_100_mb_and_bad_utf8(tmp_path):
    site = tmp_path / "img" / "site-packages"
    path = site / "tensorflow/core/framework/graph_pb2.py"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as fh:
        fh.write(b"\xff\xfe# Protobuf Python Version: 5.28.3\n" + b"\xff" * 1000 + b"AddSerializedFile\n")
        fh.truncate(100 << 20)
    facts = timed(read_abi_facts, Root(str(tmp_path / "img")), str(site), limit=2)
    assert facts.pb2_gencode == "pool" and facts.pb2_protobuf is None  # the header is not at a line start


# -- .nv_fatbin of TF's own objects (tensorflow/ and tensorflow_core/) -------------------------------------


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("package", ["tensorflow", "tensorflow_core"])
def test_tf_objects_fifo_device_or_link_out(tmp_path, how, package):
    host = tmp_path / "host" / "lib.so"
    host.parent.mkdir(parents=True)
    host.write_bytes(elf_with_section(container(entry(KIND_ELF, int(MARK)))))
    root = tmp_path / "img"
    site = root / "site-packages"
    plant(site / package / "libtensorflow_framework.so.1", how, host, root)
    scan_, objects = timed(read_tensorflow_binaries, str(site), Root(str(root)))
    assert objects == [] and scan_.counts == () and scan_.problems == ()


@pytest.mark.parametrize("how", ["abs", "dotdot"])
def test_tensorflow_core_dir_linked_to_the_host(tmp_path, how):
    """tensorflow_core/ itself a link out of the root: its build_info.py and objects are looked up inside."""
    host = tmp_path / "host" / "tensorflow_core"
    write(host / "python/platform/build_info.py", f"build_info = {{'cuda_version': '{MARK}'}}\n")
    (host / "libtensorflow_framework.so.1").write_bytes(elf_with_section(container(entry(KIND_ELF, int(MARK)))))
    root = tmp_path / "img"
    site = root / "site-packages"
    make_tf(site, "2.1.0", "build_info = {'cuda_version': '10.1', 'cuda_compute_capabilities': []}\n")
    make_dist(site, "tensorflow", "2.1.0")
    plant(site / "tensorflow_core", how, host, root)
    builds, unknowns = timed(
        find_tensorflow, scan_packages([str(site)], Root(str(root)))[0], [str(site)], Root(str(root))
    )
    assert MARK not in json.dumps([to_json_dict(b) for b in builds]) + repr(unknowns)
    assert builds[0].cuda_version == "10.1"


@pytest.mark.parametrize("how", ["abs", "dotdot"])
def test_whole_scan_with_tensorflow_core_linked_out(tmp_path, how):
    """The libraries, custom-ops and fatbin probes look in tensorflow_core/ too: a link out finds nothing."""
    from elf_fixtures import write_so
    from test_libraries import make_image

    host = tmp_path / "host" / "tensorflow_core"
    write(host / "python/platform/build_info.py", f"build_info = {{'cuda_version': '{MARK}'}}\n")
    write_so(host / "libtensorflow_framework.so.1", needed=(f"libcudart.so.{MARK}",))
    write_so(host / "python/_pywrap_tensorflow_internal.so", soname=None, needed=(f"libcudnn.so.{MARK}",))
    root = tmp_path / "img"
    site = make_image(root)
    plant(os.path.join(site, "tensorflow_core"), how, host, root)
    from test_libraries import SITE as LIB_SITE

    env = timed(scan, TargetSpec(root=str(root), site_packages=(LIB_SITE,)), nvml=False, limit=30)
    assert MARK not in json.dumps(to_json_dict(env))
    assert env.tensorflow is not None and env.target.native is not None


@pytest.mark.parametrize("how", ["fifo", "zero"])
def test_tensorflow_core_build_info_fifo_or_device(tmp_path, how):
    root = tmp_path / "img"
    site = root / "site-packages"
    make_tf(site, "2.1.0", None)
    make_dist(site, "tensorflow", "2.1.0")
    plant(site / "tensorflow_core/python/platform/build_info.py", how, None, root)
    builds, unknowns = timed(
        find_tensorflow, scan_packages([str(site)], Root(str(root)))[0], [str(site)], Root(str(root))
    )
    one_line(unknowns)
    assert builds[0].cuda_version is None and any(u.fact == "tensorflow.build" for u in unknowns), unknowns


def test_fatbin_of_a_million_empty_containers_and_looping_sizes(tmp_path):
    """16 MB of 16-byte containers (the container cap) and entries whose sizes wrap: bounded, problems only."""
    data = container() * (1 << 20) + container() + container(entry(KIND_ELF, 80), size=(1 << 64) - 1)
    scan_ = timed(walk, data, limit=5)
    assert scan_.containers == (1 << 20) + 1 and any("more than" in p for p in scan_.problems)
    looping = container(entry(KIND_ELF, 80, padded=(1 << 64) - 64))  # q + 64 + padded wraps to q in C, not here
    scan_ = timed(walk, looping, limit=1)
    assert dict(scan_.counts) == {"sm_80": 1} and "runs" in scan_.problems[0]


def test_fatbin_section_of_gigabytes_of_zeros_in_a_sparse_file(tmp_path):
    """A TF object whose .nv_fatbin is 2 GiB of zeros (a sparse file: no disk): skipping it as padding paged in
    all of it (26 s); a zero run longer than padding ends the walk with a problem."""
    root = tmp_path / "img"
    site = root / "site-packages"
    path = site / "tensorflow" / "libtensorflow_framework.so.2"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as fh:
        fh.write(elf_with_section(b"", size=2 << 30, offset=4096))
        fh.truncate(4096 + (2 << 30))
    scan_, objects = timed(read_tensorflow_binaries, str(site), Root(str(root)), limit=2)
    assert objects == [str(path)] and scan_.counts == ()
    assert "zero bytes at offset 0x0: the rest is not read" in scan_.problems[0]


def test_fatbin_entry_count_is_capped():
    e = entry(KIND_ELF, 80, b"")
    scan_ = timed(walk, container(*([e] * ((1 << 20) + 10))), limit=5)
    assert scan_.entries == 1 << 20 and "more than 1048576 fatbin entries" in scan_.problems[0]


# -- .hip_fatbin offload bundles ---------------------------------------------------------------------------


def test_offload_section_of_compressed_headers_is_bounded():
    """200,000 four-word compressed-bundle headers (v1 states no size, so each looks to the end of the
    section): each used to copy up to 1 MiB to inflate, ~35 s in all; the walk must stay within seconds."""
    for method in (0, 1):  # zlib (garbage payload), zstd (no module before Python 3.14)
        one = b"CCOB" + struct.pack("<HH", 1, method) + struct.pack("<IQ", 0, 0)
        section = one * MAX_BUNDLES + b"\0" * (1 << 20)
        bundles, compressed, ids, problems = timed(scan_buffer, section, 0, len(section), limit=5)
        assert (bundles, compressed, ids) == (0, MAX_BUNDLES, set())
        assert problems[0] == f"more than {MAX_INFLATED} compressed bundles: the rest not inflated", problems


def test_offload_section_of_zlib_bombs_is_bounded():
    """20,000 compressed bundles of 1 MiB of zeros each (1 KiB compressed): the inflated total is bounded."""
    z = zlib.compress(b"\0" * (1 << 20), 9)
    one = b"CCOB" + struct.pack("<HHIIQ", 2, 0, 24 + len(z), 1 << 20, 0) + z
    section = one * 20_000
    bundles, compressed, ids, problems = timed(scan_buffer, section, 0, len(section), limit=5)
    assert (bundles, compressed, ids) == (0, 20_000, set()) and "the rest not inflated" in problems[0]


def test_offload_random_damage_never_raises():
    """Seeded mutations of the committed fixture's section (as the fatbin test does): problems, never raised."""
    section = fx.fixture_section()
    rng = random.Random(14)
    for _case in range(400):
        data = bytearray(section)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(data))
            data[pos : pos + 8] = rng.choice([b"\xff" * 8, b"\0" * 8, rng.randbytes(8), struct.pack("<Q", 1 << 62)])
        cut = rng.choice([len(data), rng.randrange(len(data))])
        _b, _c, _ids, problems = scan_buffer(bytes(data[:cut]), 0, cut)
        assert len(problems) <= MAX_BUNDLES


@pytest.mark.parametrize("how", HOW)
def test_offload_object_fifo_device_or_link_out(tmp_path, how):
    host = tmp_path / "host" / "libk.so"
    host.parent.mkdir(parents=True)
    host.write_bytes(elf_with_section(fx.bundle([f"hipv4-amdgcn-amd-amdhsa--gfx{MARK}"]), name=b".hip_fatbin"))
    root = tmp_path / "img"
    plant(root / "opt/tf/libk.so", how, host, root)
    s = timed(scan_offload, Root(str(root)), "/opt/tf/libk.so")
    assert s.section_size is None and s.ids == () and len(s.problems) == 1
    assert MARK not in s.problems[0] and "\n" not in s.problems[0]


# -- the parsed-matrix cache -------------------------------------------------------------------------------

_TEXT = 'a = "from the toml"\n'


def _cache_path(where):
    key = matrix_cache._digest((matrix_cache.FORMAT + "\n" + _TEXT).encode("utf-8"))
    return where / f"matrix-{key[:32]}.json", key


def _forged(key, doc):
    body = json.dumps(doc).encode()
    return json.dumps({"key": key, "body": matrix_cache._digest(body)}).encode() + b"\n" + body


def _parsed_in_child(where, limit=20):
    """`parsed()` in a child process (a FIFO or /dev/zero must not hang or eat this test run), memory capped."""
    code = (
        "import json, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "from tfcompat.matrix import cache\n"
        f"print(json.dumps(cache.parsed({_TEXT!r}, lambda t: {{'a': 'parsed'}})))\n"
    )
    env = dict(os.environ, TFCOMPAT_CACHE_DIR=str(where))
    env.pop("TFCOMPAT_NO_CACHE", None)
    start = time.monotonic()
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the cache read did not end in {limit} s")
    assert out.returncode == 0 and out.stderr == "", out.stderr[-2000:]
    assert time.monotonic() - start < limit
    return json.loads(out.stdout)


@pytest.mark.parametrize("how", ["fifo", "zero", "link", "huge"])
def test_matrix_cache_file_that_is_not_ours_is_never_used(tmp_path, how):
    where = tmp_path / "cache"
    where.mkdir(mode=0o700)
    path, key = _cache_path(where)
    if how == "fifo":
        os.mkfifo(path)
    elif how == "zero":
        os.symlink("/dev/zero", path)
    elif how == "link":  # a valid-looking cache elsewhere (or /etc/shadow): a link is never followed
        forged = tmp_path / "elsewhere.json"
        forged.write_bytes(_forged(key, {"a": "forged"}))
        os.symlink(forged, path)
    else:  # 3 GB (sparse) without a newline, past the child's 2 GiB address space: the header line is bounded
        with open(path, "wb") as fh:
            fh.write(b"x")
            fh.truncate(3 << 30)
    assert _parsed_in_child(where) == {"a": "parsed"}


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
@pytest.mark.parametrize("what", ["file", "dir"])
def test_matrix_cache_owned_by_another_user_is_not_trusted(tmp_path, what):
    """Root running with a cache directory another user controls (sudo keeping $HOME, a shared
    TFCOMPAT_CACHE_DIR): that user could forge a cache whose digests match, so it is not read."""
    where = tmp_path / "cache"
    where.mkdir(mode=0o700)
    path, key = _cache_path(where)
    path.write_bytes(_forged(key, {"a": "forged"}))
    os.chown(path if what == "file" else where, 65534, 65534)
    assert matrix_cache._read(path, key) is None or what == "dir"
    env_dir = os.environ.get("TFCOMPAT_CACHE_DIR")
    try:
        os.environ["TFCOMPAT_CACHE_DIR"] = str(where)
        os.environ.pop("TFCOMPAT_NO_CACHE", None)
        assert matrix_cache.parsed(_TEXT, lambda t: {"a": "parsed"}) == {"a": "parsed"}
    finally:
        if env_dir is None:
            os.environ.pop("TFCOMPAT_CACHE_DIR", None)
        else:
            os.environ["TFCOMPAT_CACHE_DIR"] = env_dir


def test_matrix_cache_writable_by_others_is_not_trusted(tmp_path, monkeypatch):
    where = tmp_path / "cache"
    where.mkdir(mode=0o700)
    path, key = _cache_path(where)
    path.write_bytes(_forged(key, {"a": "forged"}))
    os.chmod(path, 0o666)
    monkeypatch.setenv("TFCOMPAT_CACHE_DIR", str(where))
    monkeypatch.delenv("TFCOMPAT_NO_CACHE", raising=False)
    assert matrix_cache.parsed(_TEXT, lambda t: {"a": "parsed"}) == {"a": "parsed"}
    # and our own well-formed cache is still used (the cache keeps working)
    assert matrix_cache.parsed(_TEXT, lambda t: {"a": "parsed again"}) == {"a": "parsed"}


@pytest.mark.parametrize(
    "content",
    [b"[" * 100_000 + b"\n", b'{"key": 1}\n{', b"\xff\xfe\n\xff", b"", b"\n" * 1000],
)
def test_matrix_cache_malformed_is_parsed_again(tmp_path, monkeypatch, content):
    where = tmp_path / "cache"
    where.mkdir(mode=0o700)
    path, _key = _cache_path(where)
    path.write_bytes(content)
    monkeypatch.setenv("TFCOMPAT_CACHE_DIR", str(where))
    monkeypatch.delenv("TFCOMPAT_NO_CACHE", raising=False)
    assert matrix_cache.parsed(_TEXT, lambda t: {"a": "parsed"}) == {"a": "parsed"}


def test_short_fuzz_run_of_the_gpu_section_readers():
    """scripts/fuzz_elf.py --target sections, a few hundred seeded mutations of the nvcc- and objcopy-built
    fixtures: neither reader raises (each returns problems), each case fast."""
    import importlib.util

    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "fuzz_elf.py")
    spec = importlib.util.spec_from_file_location("fuzz_elf", script)
    fz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fz)
    result = fz.fuzz(400, seed=14, out=None, case_timeout=5.0, max_rss=1024, targets=("sections",))
    assert result["failures"] == [], result["failures"][:5]
    assert result["by_target"] == {"sections": 400} and result["slowest_case_s"] < 5.0
