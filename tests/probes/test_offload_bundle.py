"""The clang offload-bundle reader (probes/native/offload_bundle.py) on struct-built bundles that follow the
documented layout (llvm/llvm-project clang/docs/ClangOffloadBundler.rst) and on a committed gcc-built ELF with a
.hip_fatbin section (tests/fixtures/offload/build_offload_fixtures.py rebuilds it)."""

import os
import shutil
import struct
import subprocess
import sys

import pytest

from tfcompat.probes.native.offload_bundle import (
    MAX_ENTRIES,
    OffloadScan,
    parse_bundle,
    processor,
    scan_buffer,
    scan_offload,
    target_id,
)
from tfcompat.probes.rootfs import Root

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures", "offload"))
import build_offload_fixtures as fx

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "offload", "libhipkernels.so")
GFX90A = "hipv4-amdgcn-amd-amdhsa--gfx90a:xnack-"


def scan(data: bytes):
    return scan_buffer(data, 0, len(data))


def test_committed_fixture_targets_compressed_and_all():
    s = scan_offload(Root(None), FIXTURE)
    assert s.section_size == len(fx.fixture_section())
    assert s.gfx == ("gfx1100", "gfx900", "gfx90a", "gfx942")  # gfx942 from the zlib bundle
    assert GFX90A in s.ids and "host-x86_64-unknown-linux--" in s.ids
    if sys.version_info < (3, 14):  # no zstd in the standard library: that bundle stays unread, and is said so
        assert (s.bundles, s.compressed) == (3, 1)
        assert s.problems == ("1 compressed (zstd) bundles: targets not read",)


def test_fixture_is_what_the_builder_writes(tmp_path):
    """The committed ELF holds exactly the builder's section (so the builder documents the fixture)."""
    if not (shutil.which("gcc") and shutil.which("objcopy")):
        pytest.skip("gcc/objcopy not installed")
    fresh = fx.elf_with_section(str(tmp_path / "k.so"), fx.fixture_section())
    assert scan_offload(Root(None), fresh).ids == scan_offload(Root(None), FIXTURE).ids


def test_plain_bundle_entries_and_end():
    data = fx.bundle(["hipv4-amdgcn-amd-amdhsa--gfx906", GFX90A])
    ids, end = parse_bundle(data, 0, len(data))
    assert ids == ["host-x86_64-unknown-linux--", "hipv4-amdgcn-amd-amdhsa--gfx906", GFX90A]
    assert end == len(data)


def test_bundles_padded_and_concatenated_are_each_read():
    data = fx.section([fx.bundle([f"hipv4-amdgcn-amd-amdhsa--gfx{t}"]) for t in ("900", "1030", "1100")], align=256)
    bundles, compressed, ids, problems = scan(data)
    assert (bundles, compressed, problems) == (3, 0, [])
    assert {processor(i) for i in ids} == {None, "gfx900", "gfx1030", "gfx1100"}


@pytest.mark.parametrize("cut", [30, 40, 60, 90])
def test_truncated_bundle_is_a_problem_not_an_exception(cut):
    data = fx.bundle(["hipv4-amdgcn-amd-amdhsa--gfx906"])[:cut]
    bundles, _c, _ids, (problem,) = scan(data)
    assert bundles == 0
    assert "truncated" in problem or "past the end" in problem


def test_code_object_past_the_end_is_a_problem():
    data = bytearray(fx.bundle(["hipv4-amdgcn-amd-amdhsa--gfx906"]))
    data = bytes(data[:-10])  # the last code object's bytes are cut
    _b, _c, _ids, (problem,) = scan(data)
    assert "runs past the end" in problem


def test_bad_magic_and_absurd_counts():
    with pytest.raises(ValueError, match="no __CLANG_OFFLOAD_BUNDLE__ magic"):
        parse_bundle(b"__CLANG_OFFLOAD_BUNDLX__" + b"\0" * 16, 0, 40)
    assert scan(b"\0" * 4096 + b"not a bundle at all") == (0, 0, set(), [])  # nothing bundle-like: nothing
    huge = fx.MAGIC + struct.pack("<Q", MAX_ENTRIES + 1)
    (problem,) = scan(huge)[3]
    assert f"more than {MAX_ENTRIES}" in problem


def test_compressed_zlib_versions_are_read_from_their_head():
    inner = fx.bundle(["hipv4-amdgcn-amd-amdhsa--gfx942", "hipv4-amdgcn-amd-amdhsa--gfx950"])
    for version in (1, 2, 3):
        data = fx.section([fx.ccob(inner, version=version), fx.bundle(["hipv4-amdgcn-amd-amdhsa--gfx90a"])])
        bundles, compressed, ids, problems = scan(data)
        assert (bundles, compressed, problems) == (2, 0, []), version
        assert {processor(i) for i in ids} >= {"gfx942", "gfx950", "gfx90a"}


def test_compressed_unreadable_and_malformed_headers():
    zstd_like = fx.ccob(fx.bundle(["hipv4-amdgcn-amd-amdhsa--gfx942"]), version=2, method=1, compress=False)
    if sys.version_info < (3, 14):
        assert scan(zstd_like)[:2] == (0, 1)
    bad_version = b"CCOB" + struct.pack("<HH", 9, 0) + b"\0" * 32
    assert "unknown version 9" in scan(bad_version)[3][0]
    bad_method = b"CCOB" + struct.pack("<HH", 2, 7) + b"\0" * 32
    assert "unknown compression method 7" in scan(bad_method)[3][0]
    too_big = b"CCOB" + struct.pack("<HHIIQ", 2, 0, 1 << 30, 10, 0)
    assert "past the end" in scan(too_big)[3][0]


@pytest.mark.parametrize(
    "bundle_id, tid",
    [
        ("hipv4-amdgcn-amd-amdhsa--gfx90a:xnack-", "gfx90a:xnack-"),
        ("hip-amdgcn-amd-amdhsa-gfx906", "gfx906"),  # tensorflow-rocm 2.2's bundler: three-field triple
        ("hipv4-amdgcn-amd-amdhsa--gfx9-4-generic:sramecc+:xnack-", "gfx9-4-generic:sramecc+:xnack-"),
        ("host-x86_64-unknown-linux--", None),
        ("openmp-nvptx64-nvidia-cuda--sm_80", None),
    ],
)
def test_target_ids(bundle_id, tid):
    assert target_id(bundle_id) == tid


def test_objects_without_a_section_or_not_elf(tmp_path):
    if not shutil.which("gcc"):
        pytest.skip("gcc not installed")
    empty = tmp_path / "empty.so"
    fx.elf_with_section(str(empty), b"")  # an empty .hip_fatbin: nothing in it
    assert scan_offload(Root(None), str(empty)) == OffloadScan(str(empty), 0)
    src = tmp_path / "k.c"
    src.write_text("int k(void) { return 1; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "plain.so"), str(src)], check=True)
    assert scan_offload(Root(None), str(tmp_path / "plain.so")) == OffloadScan(str(tmp_path / "plain.so"), None)
    junk = tmp_path / "junk.so"
    junk.write_bytes(b"not an ELF file at all")
    s = scan_offload(Root(None), str(junk))
    assert s.section_size is None and "not an ELF" in s.problems[0]


def test_section_is_read_inside_the_root(tmp_path):
    root = tmp_path / "img"
    (root / "opt/tf").mkdir(parents=True)
    shutil.copy(FIXTURE, root / "opt/tf/libk.so")
    os.symlink("/opt/tf/libk.so", root / "opt/tf/link.so")  # absolute link: resolved inside the root
    assert "gfx1100" in scan_offload(Root(str(root)), "/opt/tf/link.so").gfx
