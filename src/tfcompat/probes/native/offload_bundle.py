"""The AMD GPU targets a HIP-built shared object carries code for, read from its clang offload bundles.

Nothing is loaded or decompressed beyond a bundle's first few KiB. The format, from public sources:

- **Where.** HIP device code is embedded in the host object as a data section named ``.hip_fatbin``
  (clang's ``ClangOffloadBundler.rst``, offload kind ``hip``/``hipv4``: "embedded in the host code object as a
  data section with the name ``.hip_fatbin``"). The linker concatenates the bundles of every translation unit
  into that one section, each aligned (TF 2.14 ROCm objects: 4096-byte section alignment), zero-padded between.
- **Uncompressed bundle** (``llvm/llvm-project:clang/docs/ClangOffloadBundler.rst``, "Bundled Binary File
  Layout"; ``clang/lib/Driver/OffloadBundler.cpp``, ``BinaryFileHandler::ReadHeader``; all integers
  little-endian, 8 bytes): the 24-byte magic ``__CLANG_OFFLOAD_BUNDLE__``, the number of entries, then per
  entry the code object's offset (from the start of the bundle), its size, the length of its bundle entry ID
  and the ID itself (not NUL-terminated), then the code objects. An ID is
  ``<offload-kind>-<triple>[-<target-id>]``, e.g. ``hipv4-amdgcn-amd-amdhsa--gfx90a:xnack-``; the target ID is
  ``<processor>(:<feature>(+|-))*``, a feature left out meaning "any". The ``host-x86_64-...`` entry is empty
  for embedded bundles. clang's reader ignores an entry whose offset is 0 or whose end runs past the buffer.
- **Compressed bundle** (same .rst, "Compression and Decompression"; ``OffloadBundler.cpp``,
  ``RawCompressedBundleHeader``, packed little-endian): magic ``CCOB``, u16 version, u16 method
  (``llvm::compression::Format``: 0 zlib, 1 zstd), then v1: u32 uncompressed size, u64 hash; v2: u32 total
  size (header included), u32 uncompressed size, u64 hash; v3: u64 total size, u64 uncompressed size, u64 hash;
  then the compressed bytes of a whole uncompressed bundle. The IDs are inside the compressed data: a zlib
  bundle's first KiB are inflated here (bounded) to read them; a zstd bundle is read only where the Python
  standard library has zstd (``compression.zstd``, Python 3.14), else it is counted as "compressed, targets not
  read". A v1 bundle states no total size: the next bundle is searched for as clang's own lister does.

Every read is bounded (section size, bundles, entries, ID length, bytes inflated); a malformed bundle is
reported as a problem string and stops the walk of that section, never an exception.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import struct
import zlib
from typing import Optional

from tfcompat.probes.native.elf import ElfError, ElfFile
from tfcompat.probes.native.fatbin import find_section
from tfcompat.probes.rootfs import Root

SECTION = ".hip_fatbin"
MAGIC = b"__CLANG_OFFLOAD_BUNDLE__"
CCOB = b"CCOB"
MAX_BUNDLES = 200_000  # TF 2.14's libtensorflow_cc.so.2 holds a few thousand
MAX_ENTRIES = 1024  # entries of one bundle: one per target (and the host)
MAX_ID = 512  # bytes of one bundle entry ID
MAX_INFLATE = 64 << 10  # bytes of a compressed bundle inflated to read its header
# Compressed bytes handed to the decompressor: 64 KiB out needs at most about as much in (stored blocks); the
# rest of the bundle is never copied. And bundles inflated per section: a section of 200,000 tiny headers or
# zlib bombs would otherwise cost tens of seconds; beyond it they are counted as compressed, not read.
MAX_INFLATE_INPUT = 2 * MAX_INFLATE
MAX_INFLATED = 10_000
MAX_PROBLEMS = 8
_U64 = struct.Struct("<Q")
_CCOB_COMMON = struct.Struct("<4sHH")
_CCOB_HEADERS = {1: struct.Struct("<IQ"), 2: struct.Struct("<IIQ"), 3: struct.Struct("<QQQ")}
_METHODS = {0: "zlib", 1: "zstd"}
_PROCESSOR = re.compile(r"^(gfx[0-9a-z-]+)")
_TARGET = re.compile(r"^[a-z0-9]+-amdgcn-amd-amdhsa-(?:[a-z0-9]*-)?(gfx[0-9a-z-]+(?::[0-9a-z_]+[+-])*)$")


@dataclasses.dataclass(frozen=True)
class OffloadScan:
    """What one object's ``.hip_fatbin`` holds."""

    path: str
    section_size: Optional[int]  # None: the object has no .hip_fatbin section
    bundles: int = 0  # bundles whose entry IDs were read
    compressed: int = 0  # compressed bundles whose IDs could not be read ("compressed")
    ids: tuple[str, ...] = ()  # distinct bundle entry IDs, sorted
    problems: tuple[str, ...] = ()

    @property
    def gfx(self) -> tuple[str, ...]:
        """The distinct AMD GPU processors (gfx90a, gfx1100, gfx9-generic) of the device entries."""
        return tuple(sorted({p for i in self.ids if (p := processor(i))}))


def target_id(bundle_id: str) -> Optional[str]:
    """The target ID of an amdgcn bundle entry ID: 'hipv4-amdgcn-amd-amdhsa--gfx90a:xnack-' -> 'gfx90a:xnack-'.
    Older bundlers wrote the three-field triple: 'hip-amdgcn-amd-amdhsa-gfx906' (tensorflow-rocm 2.2)."""
    m = _TARGET.search(bundle_id)
    return m.group(1) if m else None


def processor(bundle_id: str) -> Optional[str]:
    tid = target_id(bundle_id)
    m = _PROCESSOR.match(tid.split(":")[0]) if tid else None
    return m.group(1) if m else None


def parse_bundle(buf, start: int, end: int, whole: bool = True) -> tuple[list[str], int]:
    """(entry IDs, end offset of the bundle) of the uncompressed bundle at `start` of `buf` (bytes or mmap),
    which must not extend past `end`. `whole` False: `buf` is only the inflated head of a bundle, so the code
    objects' extents are not checked. Raises ValueError saying what is wrong."""
    if buf[start : start + len(MAGIC)] != MAGIC:
        raise ValueError(f"no {MAGIC.decode()} magic at offset {start}")
    pos = start + len(MAGIC)
    if pos + 8 > end:
        raise ValueError(f"bundle at offset {start} truncated in its entry count")
    (count,) = _U64.unpack_from(buf, pos)
    pos += 8
    if count > MAX_ENTRIES:
        raise ValueError(f"bundle at offset {start} claims {count} entries (more than {MAX_ENTRIES})")
    ids: list[str] = []
    last = pos
    for n in range(count):
        if pos + 24 > end:
            raise ValueError(f"bundle at offset {start} truncated in entry {n + 1} of {count}")
        offset, size, id_len = struct.unpack_from("<QQQ", buf, pos)
        pos += 24
        if id_len > MAX_ID or pos + id_len > end:
            raise ValueError(f"bundle at offset {start}: entry {n + 1} has an ID of {id_len} bytes past the end")
        ids.append(bytes(buf[pos : pos + id_len]).decode("ascii", "replace"))
        pos += id_len
        if whole and size and (offset == 0 or start + offset + size > end):
            raise ValueError(f"bundle at offset {start}: entry {ids[-1]!r} runs past the end ({offset}+{size})")
        last = max(last, start + offset + size)
    return ids, max(last, pos)


def _inflate_head(method: int, data: bytes) -> Optional[bytes]:
    """The first MAX_INFLATE bytes of a compressed bundle's payload, or None when this Python cannot."""
    if method == 0:
        try:
            return zlib.decompressobj().decompress(data, MAX_INFLATE)
        except zlib.error:
            return None
    zstd = _zstd()
    if zstd is None:
        return None
    try:
        head: bytes = zstd.ZstdDecompressor().decompress(data, MAX_INFLATE)
        return head
    except Exception:  # noqa: BLE001 - a corrupt frame: "compressed, not read"
        return None


@functools.lru_cache(maxsize=1)
def _zstd():
    """Python 3.14's standard-library zstd, or None; looked up once (Python retries a failed import each time,
    a path search per bundle). Never a third-party import."""
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        return None
    return zstd


def parse_compressed(buf, start: int, end: int, inflate: bool = True) -> tuple[Optional[list[str]], Optional[int], str]:
    """(entry IDs or None when unreadable, end offset or None when the header states no size, method name)
    of the CCOB bundle at `start`; `inflate` False: the header only (IDs None). Raises ValueError for a
    malformed header."""
    if start + _CCOB_COMMON.size > end:
        raise ValueError(f"compressed bundle at offset {start} truncated in its header")
    _magic, version, method = _CCOB_COMMON.unpack_from(buf, start)
    fmt = _CCOB_HEADERS.get(version)
    if fmt is None:
        raise ValueError(f"compressed bundle at offset {start} has unknown version {version}")
    if method not in _METHODS:
        raise ValueError(f"compressed bundle at offset {start} has unknown compression method {method}")
    head = start + _CCOB_COMMON.size
    if head + fmt.size > end:
        raise ValueError(f"compressed bundle at offset {start} truncated in its v{version} header")
    fields = fmt.unpack_from(buf, head)
    total = None if version == 1 else fields[0]
    if total is not None and (total < _CCOB_COMMON.size + fmt.size or start + total > end):
        raise ValueError(f"compressed bundle at offset {start} states {total} bytes, past the end")
    payload = head + fmt.size
    stop = end if total is None else start + total
    if not inflate:
        return None, None if total is None else start + total, _METHODS[method]
    inflated = _inflate_head(method, bytes(buf[payload : min(stop, payload + MAX_INFLATE_INPUT)]))
    ids = None
    if inflated and inflated.startswith(MAGIC):
        try:
            ids = parse_bundle(inflated, 0, len(inflated), whole=False)[0]
        except ValueError:
            ids = None  # a header longer than what was inflated: counted as unread
    return ids, None if total is None else start + total, _METHODS[method]


def scan_buffer(buf, start: int, end: int) -> tuple[int, int, set[str], list[str]]:
    """(bundles read, compressed bundles not read, IDs, problems) over `buf[start:end]`."""
    bundles = compressed = inflations = 0
    ids: set[str] = set()
    problems: list[str] = []
    unread: set[str] = set()
    pos = start
    next_plain = next_ccob = -2  # -2: not searched yet; -1: none left
    while pos < end:
        if next_plain != -1 and next_plain < pos:
            next_plain = buf.find(MAGIC, pos, end)
        if next_ccob != -1 and next_ccob < pos:
            next_ccob = buf.find(CCOB, pos, end)
        found = [p for p in (next_plain, next_ccob) if p >= 0]
        if not found:
            break
        at = min(found)
        if bundles + compressed >= MAX_BUNDLES:
            problems.append(f"more than {MAX_BUNDLES} bundles: the rest not read")
            break
        try:
            if at == next_plain:
                got, pos = parse_bundle(buf, at, end)
                bundles += 1
                ids.update(got)
            else:
                got_c, stop, method = parse_compressed(buf, at, end, inflate=inflations < MAX_INFLATED)
                inflations += 1
                if got_c is None:
                    compressed += 1
                    unread.add(method)
                else:
                    bundles += 1
                    ids.update(got_c)
                pos = stop if stop is not None else at + len(CCOB)
        except ValueError as exc:
            problems.append(str(exc))
            break
    if inflations > MAX_INFLATED:
        problems.append(f"more than {MAX_INFLATED} compressed bundles: the rest not inflated")
    if unread:
        problems.append(f"{compressed} compressed ({', '.join(sorted(unread))}) bundles: targets not read")
    return bundles, compressed, ids, problems


def scan_offload(root: Root, path: str) -> OffloadScan:
    """The ``.hip_fatbin`` bundles of `path` (a path inside `root`). Unreadable is a problem, never raised."""
    try:
        real = root.path(path)
        with ElfFile(real) as elf:
            section = find_section(elf, SECTION)  # the section-header walk the .nv_fatbin reader uses
            if section is None or section[2] == 8:  # absent, or SHT_NOBITS (no bytes in the file)
                return OffloadScan(path, None)
            off, size, _type = section
            if off + size > elf.size:
                return OffloadScan(path, size, problems=(f"{SECTION} at offset {off} runs past the end of the file",))
            bundles, compressed, ids, problems = scan_buffer(elf._mm, off, off + size)
    except (ElfError, OSError, struct.error) as exc:
        return OffloadScan(path, None, problems=(str(exc),))
    return OffloadScan(path, size, bundles, compressed, tuple(sorted(ids)), tuple(problems[:MAX_PROBLEMS]))
