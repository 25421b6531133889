"""The fatbin reader (tfcompat.probes.native.fatbin): nvcc-built fixtures (tests/fixtures/fatbin/build.sh, CUDA
13.0) read to exactly the architectures the script asked for, and struct-built containers for every damaged
shape: a problem string, never an exception, in bounded time."""

import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time

import pytest

from tfcompat.probes.native.elf import ElfFile
from tfcompat.probes.native.fatbin import (
    FLAG_ARCH_SPECIFIC,
    FLAG_FAMILY,
    FLAG_ZSTD,
    KIND_ELF,
    KIND_LTO,
    KIND_PTX,
    find_section,
    merge,
    read_fatbins,
    read_tensorflow_binaries,
    tensorflow_objects,
    walk,
)
from tfcompat.probes.rootfs import Root

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "fixtures", "fatbin")
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def fixture(name):
    return os.path.abspath(os.path.join(FIXTURES, name))


# -- struct-built containers (the layout the module docstring documents) ---------------------------------


def entry(kind, arch, payload=b"\x7fELF" + b"\0" * 12, flags=0x11, header_size=64, padded=None):
    pad = (len(payload) + 7) & ~7 if padded is None else padded
    head = struct.pack("<HHIQ", kind, 0x0101, header_size, pad)
    head += struct.pack("<IIHHI", 0, 0, 1, 8, arch)
    head += struct.pack("<IIQQQ", 0, 0, flags, 0, 0)
    return head.ljust(header_size, b"\0") + payload.ljust(min(pad, 1 << 16), b"\0")  # a huge size claims, not holds


def container(*entries, magic=0xBA55ED50, version=1, header_size=16, size=None):
    body = b"".join(entries)
    return struct.pack("<IHHQ", magic, version, header_size, len(body) if size is None else size) + body


def elf_with_section(data, name=b".nv_fatbin", sh_type=1, size=None, offset=None):
    """A minimal ELF64 shared object whose only sections are `name` (holding `data`) and .shstrtab."""
    names = b"\0" + name + b"\0.shstrtab\0"
    data_off = 64
    str_off = data_off + len(data)
    sh_off = (str_off + len(names) + 7) & ~7
    ehdr = struct.pack(
        "<16sHHIQQQIHHHHHH",
        b"\x7fELF\x02\x01\x01" + b"\0" * 9,
        3,  # ET_DYN
        62,
        1,
        0,
        0,
        sh_off,
        0,
        64,
        56,
        0,
        64,
        3,
        2,
    )
    shdr = struct.Struct("<IIQQQQIIQQ")
    sections = shdr.pack(*(0,) * 10)
    sections += shdr.pack(
        1, sh_type, 2, 0, data_off if offset is None else offset, len(data) if size is None else size, 0, 0, 8, 0
    )
    sections += shdr.pack(len(name) + 2, 3, 0, 0, str_off, len(names), 0, 0, 1, 0)
    return (ehdr + data + names).ljust(sh_off, b"\0") + sections


def write(tmp_path, data, name="lib.so"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# -- the nvcc-built fixtures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, counts, compressed",
    [
        # build.sh: -gencode arch=compute_75,code=sm_75 -gencode arch=compute_90,code=[sm_90,compute_90]. nvcc puts
        # two containers in such a library (each with the SASS; the PTX in one), as cuobjdump also lists them.
        ("libaxpy_sm75_sm90.so", {"sm_75": 2, "sm_90": 2, "compute_90": 1}, 1),  # CUDA 13 compresses PTX only
        ("libaxpy_compressed.so", {"sm_75": 2, "sm_90": 2, "compute_90": 1}, 5),  # -Xfatbin -compress-all
        # sm_90a (arch-specific), sm_100f (family-specific), sm_120; PTX compute_90a; 96/112-byte entry headers
        ("libaxpy_suffixes.so", {"sm_90a": 2, "sm_100f": 2, "sm_120": 2, "compute_90a": 1}, 1),
        # fatbinary --image3=kind=elf,sm=80 --image3=kind=ptx,sm=86: a raw fatbin, no ELF around it
        ("axpy.fatbin", {"sm_80": 1, "compute_86": 1}, 1),
    ],
)
def test_fixtures_hold_exactly_what_build_sh_asked_for(name, counts, compressed):
    scan = read_fatbins(fixture(name))
    assert scan.problems == ()
    assert dict(scan.counts) == counts
    assert scan.compressed == compressed
    assert scan.archs == tuple(a for a in counts if a.startswith("sm_")) + tuple(
        a for a in counts if a.startswith("compute_")
    )


def test_section_found_like_pyelftools():
    elftools = pytest.importorskip("elftools.elf.elffile")
    for name in ("libaxpy_sm75_sm90.so", "libaxpy_compressed.so", "libaxpy_suffixes.so"):
        with open(fixture(name), "rb") as fh:
            sec = elftools.ELFFile(fh).get_section_by_name(".nv_fatbin")
            want = (sec["sh_offset"], sec["sh_size"], 1)
        with ElfFile(fixture(name)) as elf:
            assert find_section(elf) == want


def test_merge_counts_across_files():
    merged = merge(read_fatbins(fixture(n)) for n in ("libaxpy_sm75_sm90.so", "axpy.fatbin"))
    assert merged.archs == ("sm_75", "sm_80", "sm_90", "compute_86", "compute_90")
    assert dict(merged.counts)["sm_90"] == 2 and merged.containers == 3 and len(merged.paths) == 2


def test_an_elf_without_fatbin_is_empty_not_a_problem():
    scan = read_fatbins(os.path.realpath(sys.executable))
    assert scan.counts == () and scan.problems == ()


# -- struct-built containers --------------------------------------------------------------------------------


def test_minimal_container_and_entry_names():
    data = container(
        entry(KIND_ELF, 60),
        entry(KIND_ELF, 90, flags=0x11 | FLAG_ARCH_SPECIFIC),
        entry(KIND_ELF, 100, flags=0x11 | FLAG_FAMILY, header_size=112),
        entry(KIND_PTX, 70, b"//ptx", flags=0x11 | FLAG_ZSTD, header_size=80),
        entry(KIND_LTO, 90),
        entry(7, 80),
    )
    scan = walk(data)
    assert scan.problems == ()
    assert [a for a, _ in scan.counts] == ["sm_60", "sm_90a", "sm_100f", "compute_70", "lto_90", "kind7_80"]
    assert scan.archs == ("sm_60", "sm_90a", "sm_100f", "compute_70") and scan.compressed == 1


def test_zero_entries_and_zero_padding():
    data = container() + b"\0" * 8 + container(entry(KIND_ELF, 75)) + b"\0" * 24
    scan = walk(data)
    assert scan.problems == () and scan.containers == 2 and dict(scan.counts) == {"sm_75": 1}


def test_bad_magic_keeps_what_came_before():
    data = container(entry(KIND_ELF, 80)) + container(entry(KIND_ELF, 86), magic=0x12345678)
    scan = walk(data)
    assert dict(scan.counts) == {"sm_80": 1}
    assert len(scan.problems) == 1 and "bad magic 0x12345678" in scan.problems[0]


def test_unknown_container_version_or_header():
    assert "unknown fatbin container (version 2" in walk(container(entry(KIND_ELF, 80), version=2)).problems[0]
    assert "header of 8 bytes" in walk(container(entry(KIND_ELF, 80), header_size=8)).problems[0]


def test_truncated_container_counts_the_entries_that_are_there():
    whole = container(entry(KIND_ELF, 70), entry(KIND_ELF, 80))
    cut = whole[: 16 + len(entry(KIND_ELF, 70)) + 20]
    scan = walk(cut)
    assert dict(scan.counts) == {"sm_70": 1}
    assert "truncated" in scan.problems[0] and "entry header" in scan.problems[1]


def test_short_tail_and_nonzero_garbage():
    assert walk(container(entry(KIND_ELF, 80)) + b"\x01\x02\x03").problems[0].startswith("3 bytes")
    assert walk(b"\xff" * 40).problems[0].startswith("bad magic 0xffffffff")
    assert walk(b"").problems == () and walk(b"\0" * 100).problems == ()


@pytest.mark.parametrize("header_size", [0, 8, 63, 1 << 20, 0xFFFFFFFF])
def test_entry_header_sizes_out_of_range(header_size):
    bad = bytearray(entry(KIND_ELF, 80))
    struct.pack_into("<I", bad, 4, header_size)
    scan = walk(container(bytes(bad)))
    assert scan.counts == () and "header of" in scan.problems[0]


def test_huge_sizes_are_problems_not_loops():
    start = time.perf_counter()
    scan = walk(container(entry(KIND_ELF, 80), size=(1 << 64) - 1))
    assert dict(scan.counts) == {"sm_80": 1} and "truncated" in scan.problems[0]
    scan = walk(container(entry(KIND_ELF, 80, padded=1 << 63)))
    assert dict(scan.counts) == {"sm_80": 1} and "runs" in scan.problems[0]
    assert time.perf_counter() - start < 1


def test_many_entries_in_bounded_time():
    data = container(*(entry(KIND_ELF, 50 + i % 40, b"") for i in range(50_000)))
    start = time.perf_counter()
    scan = walk(data)
    assert scan.entries == 50_000 and scan.problems == ()
    assert time.perf_counter() - start < 5


def test_random_damage_never_raises():
    """Seeded mutations of a real section (the ELF fuzzer's style): problems, never exceptions."""
    with ElfFile(fixture("libaxpy_suffixes.so")) as elf:
        off, size, _ = find_section(elf)
        section = bytes(elf._mm[off : off + size])
    rng = random.Random(14)
    for _case in range(400):
        data = bytearray(section)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(data))
            data[pos : pos + 8] = rng.choice([b"\xff" * 8, b"\0" * 8, rng.randbytes(8), struct.pack("<Q", 1 << 62)])
        cut = rng.choice([len(data), rng.randrange(len(data))])
        scan = walk(bytes(data[:cut]))
        assert scan.entries <= 1 << 22 and len(scan.problems) <= 8


# -- ELF sections and files ---------------------------------------------------------------------------------


def test_struct_built_elf_section(tmp_path):
    path = write(tmp_path, elf_with_section(container(entry(KIND_ELF, 52), entry(KIND_PTX, 52))))
    scan = read_fatbins(path)
    assert scan.archs == ("sm_52", "compute_52") and scan.problems == ()
    assert read_fatbins(write(tmp_path, elf_with_section(b"x" * 16, name=b".text"), "b.so")).counts == ()


def test_damaged_elf_sections_are_problems(tmp_path):
    data = container(entry(KIND_ELF, 52))
    nobits = read_fatbins(write(tmp_path, elf_with_section(data, sh_type=8), "nobits.so"))
    assert "SHT_NOBITS" in nobits.problems[0]
    past = read_fatbins(write(tmp_path, elf_with_section(data, size=1 << 40), "past.so"))
    assert "runs past the end of the file" in past.problems[0] and dict(past.counts) == {"sm_52": 1}
    with open(fixture("libaxpy_sm75_sm90.so"), "rb") as fh:
        whole = fh.read()
    for cut in range(0, len(whole), 997):  # every truncation of a real library: a problem at worst
        read_fatbins(write(tmp_path, whole[:cut], "cut.so"))
    assert "neither an ELF object nor a fatbin" in read_fatbins(write(tmp_path, b"hello", "t.txt")).problems[0]
    assert "not a regular file" in read_fatbins(str(tmp_path)).problems[0]
    assert read_fatbins(str(tmp_path / "missing.so")).problems


def test_tensorflow_objects_under_a_root(tmp_path):
    """TF 1.15 keeps its objects in tensorflow_core/; links are resolved inside --root and read once."""
    site = tmp_path / "venv/lib/python3.7/site-packages"
    core = site / "tensorflow_core"
    (core / "python").mkdir(parents=True)
    (site / "tensorflow").mkdir()
    shutil.copy(fixture("libaxpy_sm75_sm90.so"), core / "libtensorflow_framework.so.1")
    os.symlink("libtensorflow_framework.so.1", core / "libtensorflow_framework.so")
    os.symlink("/etc/hostname", core / "python" / "_pywrap_tensorflow_internal.so")  # absolute: inside the root
    root = Root(str(tmp_path))
    location = str(site)
    assert tensorflow_objects(location, root) == [f"{location}/tensorflow_core/libtensorflow_framework.so.1"]
    scan, objects = read_tensorflow_binaries(location, root)
    assert scan.archs == ("sm_75", "sm_90", "compute_90") and len(objects) == 1


# -- scripts/fatbin_archs.py ----------------------------------------------------------------------------------


def test_script_prints_archs_and_json():
    script = os.path.join(ROOT, "scripts", "fatbin_archs.py")
    out = subprocess.run(
        [sys.executable, script, fixture("libaxpy_compressed.so")], capture_output=True, text=True, check=True
    ).stdout
    assert "archs       sm_75 sm_90 compute_90" in out and "5 of 5 entries compressed" in out
    proc = subprocess.run(
        [sys.executable, script, "--json", fixture("axpy.fatbin"), os.path.join(ROOT, "README.md")],
        capture_output=True,
        text=True,
    )
    first, second = (json.loads(line) for line in proc.stdout.splitlines())
    assert first["sass"] == ["sm_80"] and first["ptx"] == ["compute_86"] and first["problems"] == []
    assert second["problems"] and proc.returncode == 1
