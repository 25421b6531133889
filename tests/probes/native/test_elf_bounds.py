"""The ELF reader's bounds (#17 item 4): crafted structures raise ElfError for that one object, in bounded
time and memory. Each case patches a real gcc-built shared object."""

import os
import struct
import time

import pytest
from elf_fixtures import gcc_so, needs_gcc

from tfcompat.probes.native.elf import (
    DT_GNU_HASH,
    DT_HASH,
    DT_STRSZ,
    DT_SYMENT,
    DT_VERNEED,
    DT_VERNEEDNUM,
    ElfError,
    ElfFile,
    clear_cache,
    read_elf,
    undefined_symbols,
)

SOURCE = """
#include <stdio.h>
#include <string.h>
int foo(const char *s) { return printf("%s", s); }
int bar(char *d, const char *s) { return (int)(strlen(strcpy(d, s))); }
"""
PT_LOAD, PT_NOTE, PT_GNU_STACK = 1, 4, 0x6474E551
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
DYN = struct.Struct("<qQ")
GRAFT_VADDR = 0x40000000

pytestmark = needs_gcc


@pytest.fixture(scope="module")
def base_so(tmp_path_factory):
    out = tmp_path_factory.mktemp("elfbounds") / "libbase.so"
    return bytes(open(gcc_so(out, SOURCE, soname="libbase.so", flags=["-Wl,--hash-style=both"]), "rb").read())


def _phdrs(data):
    hdr = EHDR.unpack_from(data, 0)
    phoff, phentsize, phnum = hdr[5], hdr[9], hdr[10]
    return [(phoff + i * phentsize, PHDR.unpack_from(data, phoff + i * phentsize)) for i in range(phnum)]


def _dynamic(data):
    """[(file offset of the entry, tag, value)] of the dynamic segment."""
    for _at, ph in _phdrs(data):
        if ph[0] == 2:
            off, size = ph[2], ph[5]
            return [(off + i * 16, *DYN.unpack_from(data, off + i * 16)) for i in range(size // 16)]
    raise AssertionError("no PT_DYNAMIC")


def _set_tag(data, tag, value):
    for at, t, _v in _dynamic(data):
        if t == tag:
            DYN.pack_into(data, at, tag, value)
            return
    raise AssertionError(f"no tag {tag:#x}")


def _tag(data, tag):
    return next(v for _at, t, v in _dynamic(data) if t == tag)


def _file_offset(data, vaddr):
    for _at, ph in _phdrs(data):
        if ph[0] == PT_LOAD and ph[3] <= vaddr < ph[3] + ph[5]:
            return vaddr - ph[3] + ph[2]
    raise AssertionError(hex(vaddr))


def _graft(data: bytearray, blob: bytes) -> int:
    """Append `blob`, map it with a PT_LOAD made from the PT_GNU_STACK header; returns its address."""
    off = (len(data) + 15) & ~15
    data.extend(bytes(off - len(data)) + blob)
    for at, ph in _phdrs(data):
        if ph[0] == PT_GNU_STACK:
            PHDR.pack_into(data, at, PT_LOAD, 4, off, GRAFT_VADDR, GRAFT_VADDR, len(blob), len(blob), 0x1000)
            return GRAFT_VADDR
    raise AssertionError("no PT_GNU_STACK")


def _write(tmp_path, data, name="libcrafted.so"):
    path = tmp_path / name
    path.write_bytes(bytes(data))
    clear_cache()
    return str(path)


def _fast(fn, budget=2.0):
    start = time.monotonic()
    try:
        return fn()
    finally:
        assert time.monotonic() - start < budget


def test_base_object_reads(base_so, tmp_path):
    info = read_elf(_write(tmp_path, base_so))
    assert info.soname == "libbase.so" and info.needs_from("libc.so.6")
    with ElfFile(_write(tmp_path, base_so)) as elf:
        assert elf.lookup("foo") and elf.lookup("bar")
        assert elf.build_id() is None or len(elf.build_id()) >= 16


def test_version_needs_sharing_one_aux_chain(base_so, tmp_path):
    data = bytearray(base_so)
    first = _file_offset(data, _tag(data, DT_VERNEED))
    _v, _cnt, file_off, aux, _nxt = struct.unpack_from("<HHIII", data, first)
    name_off = struct.unpack_from("<IHHII", data, first + aux)[3]
    n_need, n_aux = 65536, 65535
    needs = bytearray()
    for i in range(n_need):  # every entry points at the same chain after the table
        needs += struct.pack("<HHIII", 1, n_aux, file_off, (n_need - i) * 16, 16 if i < n_need - 1 else 0)
    chain = b"".join(struct.pack("<IHHII", 0, 0, 2, name_off, 16 if j < n_aux - 1 else 0) for j in range(n_aux))
    _set_tag(data, DT_VERNEED, _graft(data, bytes(needs) + chain))
    _set_tag(data, DT_VERNEEDNUM, n_need)
    with pytest.raises(ElfError, match="version-need aux entries shared"):
        _fast(lambda: read_elf(_write(tmp_path, data)))


def _hash_table(data):
    return _file_offset(data, _tag(data, DT_HASH))


def test_sysv_hash_huge_nchain_and_zero_syment(base_so, tmp_path):
    data = bytearray(base_so)
    struct.pack_into("<I", data, _hash_table(data) + 4, 0xFFFFFFFF)
    _set_tag(data, DT_SYMENT, 0)
    path = _write(tmp_path, data)
    with ElfFile(path) as elf:
        elf._tags.pop(DT_GNU_HASH)
        with pytest.raises(ElfError):
            _fast(lambda: elf.lookup("foo"))
        with pytest.raises(ElfError):
            _fast(lambda: elf.symbol_count())
        with pytest.raises(ElfError):
            _fast(lambda: undefined_symbols(elf))
    data2 = bytearray(base_so)
    _set_tag(data2, DT_SYMENT, 0)  # alone: every index would read symbol 0
    with ElfFile(_write(tmp_path, data2)) as elf:
        elf._tags.pop(DT_GNU_HASH)
        with pytest.raises(ElfError, match="DT_SYMENT 0"):
            _fast(lambda: elf.lookup("foo"))


def test_sysv_hash_chain_pointing_to_itself(base_so, tmp_path):
    from tfcompat.probes.native.elf import sysv_hash

    data = bytearray(base_so)
    table = _hash_table(data)
    nbucket, _nchain = struct.unpack_from("<II", data, table)
    bucket = table + 8 + 4 * (sysv_hash(b"foo") % nbucket)
    (index,) = struct.unpack_from("<I", data, bucket)
    assert index
    struct.pack_into("<I", data, table + 8 + 4 * nbucket + 4 * index, index)
    with ElfFile(_write(tmp_path, data)) as elf:
        elf._tags.pop(DT_GNU_HASH)
        with pytest.raises(ElfError, match="malformed DT_HASH chain"):
            _fast(lambda: elf.lookup("foo"))


def test_gnu_hash_with_huge_bucket_count(base_so, tmp_path):
    data = bytearray(base_so)
    struct.pack_into("<I", data, _file_offset(data, _tag(data, DT_GNU_HASH)), 0xFFFFFFFF)
    with ElfFile(_write(tmp_path, data)) as elf:
        elf._tags.pop(DT_HASH)  # count from DT_GNU_HASH
        with pytest.raises(ElfError, match="DT_GNU_HASH"):
            _fast(lambda: elf.symbol_count())
        with pytest.raises(ElfError):
            _fast(lambda: undefined_symbols(elf))


@pytest.mark.parametrize("phoff", [2**64 - 1, 2**63, 2**64 - 56])
def test_program_header_offset_overflow(base_so, tmp_path, phoff):
    data = bytearray(base_so)
    struct.pack_into("<Q", data, 32, phoff)
    with pytest.raises(ElfError, match="program headers"):
        _fast(lambda: read_elf(_write(tmp_path, data)))


def test_pt_note_offset_at_the_top(base_so, tmp_path):
    data = bytearray(base_so)
    notes = [at for at, ph in _phdrs(data) if ph[0] == PT_NOTE]
    assert notes, "gcc wrote no PT_NOTE"
    for at in notes:
        struct.pack_into("<Q", data, at + 8, 2**64 - 1)
    path = _write(tmp_path, data)
    assert read_elf(path).soname == "libbase.so"  # the object is still readable
    with ElfFile(path) as elf, pytest.raises(ElfError, match="PT_NOTE"):
        elf.build_id()


def test_pt_interp_past_the_end(base_so, tmp_path):
    data = bytearray(base_so)
    at = next(at for at, ph in _phdrs(data) if ph[0] == PT_NOTE)
    PHDR.pack_into(data, at, 3, 4, 2**64 - 1, 0, 0, 16, 16, 1)  # PT_INTERP
    with pytest.raises(ElfError, match="PT_INTERP"):
        read_elf(_write(tmp_path, data))


def test_65535_pt_load_headers_are_fast(base_so, tmp_path):
    data = bytearray(base_so)
    hdr = list(EHDR.unpack_from(data, 0))
    original = [ph for _at, ph in _phdrs(data)]
    junk = [(PT_LOAD, 4, 0, 0x7000_0000 + 0x1000 * i, 0, 16, 16, 0x1000) for i in range(65535 - len(original))]
    table = b"".join(PHDR.pack(*ph) for ph in junk + original)  # the real segments last: worst case for a scan
    off = (len(data) + 7) & ~7
    data.extend(bytes(off - len(data)) + table)
    hdr[5], hdr[10] = off, 65535
    EHDR.pack_into(data, 0, *hdr)
    path = _write(tmp_path, data)

    def work():
        info = read_elf(path)
        with ElfFile(path) as elf:
            assert elf.lookup("foo")
            undefined_symbols(elf)
        return info

    assert _fast(work, budget=3.0).soname == "libbase.so"


def test_unterminated_long_string(base_so, tmp_path):
    data = bytearray(base_so)
    blob = b"x" * (2 << 20)  # a 2 MiB string table with no NUL
    vaddr = _graft(data, blob)
    from tfcompat.probes.native.elf import DT_STRTAB

    _set_tag(data, DT_STRTAB, vaddr)
    _set_tag(data, DT_STRSZ, len(blob))
    with pytest.raises(ElfError, match="unterminated string"):
        _fast(lambda: read_elf(_write(tmp_path, data)))


def test_fifo_and_device_are_not_opened(tmp_path):
    os.mkfifo(tmp_path / "lib.so")
    with pytest.raises(ElfError, match="not a regular file"):
        _fast(lambda: read_elf(str(tmp_path / "lib.so")))
    with pytest.raises(ElfError, match="not a regular file"):
        _fast(lambda: ElfFile("/dev/zero"))
    from tfcompat.probes.native.elf import is_elf

    assert not _fast(lambda: is_elf(str(tmp_path / "lib.so")))
