"""The GPU architectures a CUDA object really carries: the entry headers of its fatbins (``.nv_fatbin``).

nvcc embeds the device code of every translation unit as a *fatbin container* in the host object's
``.nv_fatbin`` section (the name is ``FATBIN_DATA_SECTION_NAME`` in the CUDA toolkit's
``include/fatbinary_section.h``); a linked library holds one container per translation unit, back to back.
NVIDIA does not document the layout; it is read here as these public parsers read it, and as the entries
that nvcc 13.0 writes were checked to be (``tests/fixtures/fatbin/build.sh``):

- n-eiling/cuda-fatbin-decompression: ``fatbin-decompress.h`` (``fat_elf_header``, ``fat_text_header``),
  ``fatbin-decompress.c`` (``FATBIN_FLAG_COMPRESS`` 0x2000, ``FATBIN_FLAG_DEBUG`` 0x2);
- vosen/ZLUDA: ``zluda_dump/src/dark_api.rs`` (``FatbinHeader``, ``FatbinFileHeader``: kinds 1 = PTX,
  2 = ELF, version 0x101, the next entry at ``header_size + padded_payload_size``);
- jiegec/fatbinary: ``src/lib.rs`` (``FatBinaryEntryHeader``; entry headers longer than 64 bytes skipped);
- GrigoryEvko/nvopen-tools: ``fatbin/FORMAT_SPECIFICATION.md`` (several containers per section, 80- and
  112-byte entry headers for newer architectures, zstd payloads flagged 0x8000).

All integers little-endian. A container (16 bytes, then ``payload_size`` bytes of entries)::

    0  u32 magic 0xBA55ED50    4  u16 version (1)    6  u16 header_size (16)    8  u64 payload_size

Each entry: a header of ``header_size`` bytes (64; 80, 96 or 112 from CUDA 12.8/13 for PTX and sm_100+
entries), then ``padded_payload_size`` bytes of payload, then the next entry::

    0  u16 kind: 1 PTX, 2 ELF cubin (SASS), 8 LTO-IR (seen from -gencode code=lto_XY)
    2  u16 version (0x0101)     4  u32 header_size      8  u64 padded_payload_size
    16 u32 compressed size (0 when not compressed)      24 u16, 26 u16: the code's version (ELF 1.8, PTX ISA 9.0)
    28 u32 arch: the SM number, 75 for sm_75 / compute_75, 120 for sm_120
    40 u64 flags: 0x1 64-bit, 0x2 debug, 0x10 Linux, 0x2000 LZ4 payload, 0x8000 zstd payload,
              0x100000 arch-specific (sm_90a), 0x200000 family-specific (sm_100f); also seen, meaning not
              known: 0x10000 (LTO-IR entries), 0x1000000 (sm_100 and newer)
    56 u64 uncompressed payload size

Only the headers are read; payloads are skipped by their size (never decompressed), so the 234 MB section of
TF 2.21's ``libtensorflow_cc.so.2`` (249 containers, 1,494 entries) costs ~10 ms cached, ~0.2 s cold.
The ``a``/``f`` flags and the LTO kind are named by no public parser: they are what nvcc 13.0 wrote for
those -gencode options. Everything is bounded (containers, entries, header sizes, problems); damaged data
ends the walk with a problem string, never an exception.
"""

from __future__ import annotations

import dataclasses
import mmap
import re
import struct
from collections import Counter
from collections.abc import Iterable
from typing import Optional, Union

from tfcompat.probes.native.elf import ElfError, ElfFile
from tfcompat.probes.rootfs import Root

SECTION = ".nv_fatbin"
FATBIN_MAGIC = 0xBA55ED50
KIND_PTX, KIND_ELF, KIND_LTO = 1, 2, 8
FLAG_LZ4, FLAG_ZSTD = 0x2000, 0x8000
FLAG_ARCH_SPECIFIC, FLAG_FAMILY = 0x100000, 0x200000

_CONTAINER = struct.Struct("<IHHQ")  # magic version header_size payload_size
_ENTRY = struct.Struct("<HHIQ")  # kind version header_size padded_payload_size
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_MIN_ENTRY_HEADER = 64
_MAX_HEADER = 4096  # container and entry headers: 16 and 64..112 bytes seen
_MAX_CONTAINERS = 1 << 20  # seen: 249 in TF 2.21's libtensorflow_cc.so.2, 1,543 in cuDNN 9.28's engines
_MAX_ENTRIES = 1 << 20  # seen: 1,494 in TF 2.21's libtensorflow_cc.so.2; 1 << 20 entries take ~1 s to walk
# Zero padding skipped between containers (alignment: a few bytes): a longer run ends the walk, so a sparse file
# whose section is gigabytes of zeros is not paged in (2 GiB: 26 s).
_MAX_ZERO_RUN = 1 << 20
_MAX_SECTIONS = 1 << 16
_MAX_PROBLEMS = 8
_NONZERO = re.compile(rb"[^\x00]")  # containers are 8-byte aligned: zero padding may sit between them
_PREFIX = {KIND_ELF: "sm", KIND_PTX: "compute", KIND_LTO: "lto"}

Buffer = Union[bytes, bytearray, memoryview, mmap.mmap]


@dataclasses.dataclass(frozen=True)
class FatbinScan:
    """What the fatbin entry headers of one file (or several, merged) say."""

    paths: tuple[str, ...]
    section_bytes: int = 0  # size of the .nv_fatbin sections walked (0: none)
    containers: int = 0
    counts: tuple[tuple[str, int], ...] = ()  # ("sm_80", 1204), ("compute_90", 310), in architecture order
    compressed: int = 0  # entries whose payload is LZ4 or zstd compressed
    problems: tuple[str, ...] = ()

    @property
    def entries(self) -> int:
        return sum(n for _, n in self.counts)

    @property
    def sass(self) -> tuple[str, ...]:
        return tuple(a for a, _ in self.counts if a.startswith("sm_"))

    @property
    def ptx(self) -> tuple[str, ...]:
        return tuple(a for a, _ in self.counts if a.startswith("compute_"))

    @property
    def archs(self) -> tuple[str, ...]:
        """SASS then PTX entries, each in architecture order (``sm_60 ... sm_89 compute_90``)."""
        return self.sass + self.ptx


def arch_name(kind: int, arch: int, flags: int) -> str:
    """``sm_90`` (ELF), ``compute_90`` (PTX), ``lto_90``, ``kind7_90``; ``a``/``f`` suffix from the flags."""
    suffix = "a" if flags & FLAG_ARCH_SPECIFIC else "f" if flags & FLAG_FAMILY else ""
    return f"{_PREFIX.get(kind, f'kind{kind}')}_{arch}{suffix}"


def _order(name: str) -> tuple[int, int, str, str]:
    prefix, _, rest = name.partition("_")
    digits = rest.rstrip("abcdefghijklmnopqrstuvwxyz")
    rank = {"sm": 0, "compute": 1, "lto": 2}.get(prefix, 3)
    return (rank, int(digits) if digits.isdigit() else -1, rest[len(digits) :], prefix)


def _sorted_counts(counts: Counter) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda kv: _order(kv[0])))


def walk(buf: Buffer, start: int = 0, end: Optional[int] = None, where: int = 0) -> FatbinScan:
    """The containers in ``buf[start:end]``; offsets in problems are ``where`` + the offset in that range."""
    end = len(buf) if end is None else min(end, len(buf))
    counts: Counter = Counter()
    problems: list[str] = []
    containers = compressed = entries = 0
    pos = start

    def at(p: int) -> str:
        return f"offset {where + p - start:#x}"

    while pos < end:
        if end - pos < _CONTAINER.size:
            if _NONZERO.search(buf, pos, end):
                problems.append(f"{end - pos} bytes at {at(pos)} are too short for a fatbin container header")
            break
        magic, version, hsize, psize = _CONTAINER.unpack_from(buf, pos)
        if magic != FATBIN_MAGIC:
            nonzero = _NONZERO.search(buf, pos, min(end, pos + _MAX_ZERO_RUN)) if magic == 0 else None
            if magic == 0 and nonzero is None:
                if end - pos > _MAX_ZERO_RUN:
                    problems.append(f"over {_MAX_ZERO_RUN} zero bytes at {at(pos)}: the rest is not read")
                break  # zero padding up to the section's end
            if nonzero is not None and nonzero.start() % 8 == start % 8:
                pos = nonzero.start()  # alignment padding between containers
                continue
            problems.append(f"bad magic {magic:#010x} at {at(pos)} (a fatbin container starts with 0xba55ed50)")
            break
        if version != 1 or not _CONTAINER.size <= hsize <= _MAX_HEADER:
            problems.append(f"unknown fatbin container (version {version}, header of {hsize} bytes) at {at(pos)}")
            break
        containers += 1
        if containers > _MAX_CONTAINERS:
            problems.append(f"more than {_MAX_CONTAINERS} fatbin containers: the rest is not read")
            break
        cend = pos + hsize + psize
        if cend > end:
            problems.append(
                f"fatbin container at {at(pos)} claims {psize} bytes of entries, only {max(end - pos - hsize, 0)} "
                "remain (truncated)"
            )
            cend = end
        q = pos + hsize
        while q < cend:
            if cend - q < _MIN_ENTRY_HEADER:
                problems.append(f"fatbin entry header at {at(q)} is truncated ({cend - q} of 64 bytes)")
                break
            kind, _ver, ehsize, padded = _ENTRY.unpack_from(buf, q)
            if not _MIN_ENTRY_HEADER <= ehsize <= _MAX_HEADER or q + ehsize > cend:
                problems.append(f"fatbin entry at {at(q)} has a header of {ehsize} bytes (64 to {_MAX_HEADER} fit)")
                break
            (arch,) = _U32.unpack_from(buf, q + 28)
            (flags,) = _U64.unpack_from(buf, q + 40)
            name = arch_name(kind, arch, flags)
            counts[name] += 1
            compressed += bool(flags & (FLAG_LZ4 | FLAG_ZSTD))
            entries += 1
            if entries >= _MAX_ENTRIES:
                problems.append(f"more than {_MAX_ENTRIES} fatbin entries: the rest is not read")
                return _scan((), end - start, containers, counts, compressed, problems)
            nxt = q + ehsize + padded
            if nxt > cend:
                problems.append(f"payload of the {name} entry at {at(q)} runs {nxt - cend} bytes past its container")
                break
            q = nxt
        pos = max(cend, pos + _CONTAINER.size)
    return _scan((), end - start, containers, counts, compressed, problems)


def _scan(paths, size: int, containers: int, counts: Counter, compressed: int, problems: list[str]) -> FatbinScan:
    return FatbinScan(
        paths=tuple(paths),
        section_bytes=size,
        containers=containers,
        counts=_sorted_counts(counts),
        compressed=compressed,
        problems=tuple(problems[:_MAX_PROBLEMS]),
    )


def find_section(elf: ElfFile, name: str = SECTION) -> Optional[tuple[int, int, int]]:
    """(file offset, size, sh_type) of the section called `name`, from the section headers; None when absent.

    The loader's reader parses no section headers (ld.so needs none): they are read here on its mapping,
    bounded (ElfError for damaged tables)."""
    if not elf._shoff:
        return None
    is64 = elf.elf_class == 64
    shdr = struct.Struct(elf._e + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII"))
    if elf._shentsize < shdr.size:
        raise ElfError(f"{elf.path}: section header entries of {elf._shentsize} bytes are too small")
    (shstrndx,) = elf._unpack(struct.Struct(elf._e + "H"), 62 if is64 else 50)

    def header(i: int) -> tuple[int, int, int, int, int]:  # name type offset size link
        f = elf._unpack(shdr, elf._shoff + i * elf._shentsize)
        return f[0], f[1], f[4], f[5], f[6]

    shnum = elf._shnum
    if shnum == 0 or shstrndx == 0xFFFF:  # over 0xff00 sections: the real values sit in section 0
        _n, _t, _o, size0, link0 = header(0)
        shnum = shnum or size0
        shstrndx = link0 if shstrndx == 0xFFFF else shstrndx
    if shnum > _MAX_SECTIONS or elf._shoff + shnum * elf._shentsize > elf.size:
        raise ElfError(f"{elf.path}: {shnum} section headers at offset {elf._shoff} run past the end of the file")
    if not 0 < shstrndx < shnum:
        raise ElfError(f"{elf.path}: section name table index {shstrndx} is out of range")
    _n, _t, str_off, str_size, _l = header(shstrndx)
    want = name.encode() + b"\0"
    mm = elf._mm
    for i in range(1, shnum):
        sh_name, sh_type, off, size, _link = header(i)
        start = str_off + sh_name
        if sh_name < str_size and start + len(want) <= elf.size and mm[start : start + len(want)] == want:
            return off, size, sh_type
    return None


def read_fatbins(path: str, root: Optional[Root] = None) -> FatbinScan:
    """The fatbin entries of `path` (a real path, inside `root`): an ELF object's ``.nv_fatbin`` section, or a
    raw ``.fatbin`` file. Unreadable or damaged files give problems, never an exception."""
    root = root or Root(None)
    try:
        inside = root.inside(path)
        with root.open_binary(inside) as fh:
            head = fh.read(4)
            if head != b"\x7fELF":
                if len(head) == 4 and _U32.unpack(head)[0] == FATBIN_MAGIC:
                    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                        return dataclasses.replace(walk(mm), paths=(path,))
                return FatbinScan((path,), problems=(f"{path}: neither an ELF object nor a fatbin",))
        # the project's ELF reader, on the file the root resolves to (never loaded, only mapped)
        with ElfFile(root.path(inside)) as elf:
            found = find_section(elf)
            if found is None:
                return FatbinScan((path,))
            off, size, sh_type = found
            if sh_type == 8:  # SHT_NOBITS: no bytes in the file
                return FatbinScan((path,), problems=(f"{path}: {SECTION} has no data in the file (SHT_NOBITS)",))
            scan = walk(elf._mm, off, off + size)
            if off + size > elf.size:
                extra = f"{path}: {SECTION} ({size} bytes at offset {off}) runs past the end of the file"
                scan = dataclasses.replace(scan, problems=(extra, *scan.problems))
            return dataclasses.replace(scan, paths=(path,), section_bytes=size)
    except (OSError, ValueError, ElfError) as exc:
        why = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        return FatbinScan((path,), problems=(f"{path}: {why}",))


def merge(scans: Iterable[FatbinScan]) -> FatbinScan:
    """One scan of several files: entries counted together, problems kept (bounded)."""
    counts: Counter = Counter()
    paths: list[str] = []
    problems: list[str] = []
    size = containers = compressed = 0
    for s in scans:
        paths += s.paths
        size += s.section_bytes
        containers += s.containers
        compressed += s.compressed
        counts.update(dict(s.counts))
        problems += s.problems
    return _scan(paths, size, containers, counts, compressed, problems)


def describe(scan: FatbinScan) -> str:
    """``sm_60 x812, sm_70 x812, compute_90 x804`` (entry counts per architecture)."""
    return ", ".join(f"{a} x{n}" for a, n in scan.counts) or "no fatbin entries"


# TF's own CUDA objects: 2.x keeps its kernels in these two libraries (the pywrap module links them), 1.15 and
# 2.0/2.1 keep them under tensorflow_core/, TF 1.x names the framework library .so.1.
TF_OBJECTS = (
    "libtensorflow_framework.so.2",
    "libtensorflow_framework.so.1",
    "libtensorflow_framework.so",
    "libtensorflow_cc.so.2",
    "python/_pywrap_tensorflow_internal.so",
)


def tensorflow_objects(location: str, root: Optional[Root] = None) -> list[str]:
    """TF's CUDA objects installed in `location` (a site-packages dir), each file once (links resolved)."""
    root = root or Root(None)
    out: list[str] = []
    seen: set = set()
    for package in ("tensorflow", "tensorflow_core"):
        for name in TF_OBJECTS:
            path = f"{location.rstrip('/')}/{package}/{name}"
            try:
                inside = root.inside(path)
                if not root.is_file(inside):
                    continue
                st = root.stat(inside)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                out.append(path)
    return out


def read_tensorflow_binaries(location: str, root: Optional[Root] = None) -> tuple[FatbinScan, list[str]]:
    """The merged fatbin entries of TF's CUDA objects in `location`, and the objects read."""
    objects = tensorflow_objects(location, root)
    return merge(read_fatbins(p, root) for p in objects), objects
