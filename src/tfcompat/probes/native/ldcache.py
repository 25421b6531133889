"""``/etc/ld.so.cache`` and ``/etc/ld.so.conf``, read from files (``ldconfig -p`` is never run).

Both binary formats written by glibc's ldconfig are understood (layouts from glibc ``sysdeps/generic/
dl-cache.h`` and ``elf/cache.c``):

* old, ``ld.so-1.7.0``: a 16-byte header (magic, ``nlibs``), ``nlibs`` entries of
  ``{int32 flags; uint32 key, value}``, then the strings; key/value index the strings that follow the
  entries;
* new, ``glibc-ld.so.cache1.1``: a 48-byte header (magic+version, ``nlibs``, ``len_strings``, endian
  ``flags``, ``extension_offset``), entries of ``{int32 flags; uint32 key, value, osversion; uint64 hwcap}``;
  key/value index from the start of that header. An extension directory can name glibc-hwcaps
  subdirectories (``hwcap`` with bit 62 set holds an index into that list);
* compat (``-c compat``, the default before glibc 2.32): an old cache whose string table hides a new one at
  the next 8-byte boundary; the loader uses the new one, and so do we.

``ld.so.conf`` is parsed with its ``include`` globs (relative to the including file's directory) and its
legacy ``dir=type`` and ``hwcap`` lines, with every path resolved inside ``--root``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import posixpath
import struct
from collections.abc import Sequence
from typing import Optional

from tfcompat.errors import TfcompatError
from tfcompat.probes.rootfs import Root

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache1.1"
EXTENSION_MAGIC = 0xEAA42174  # (uint32_t) -358342284
EXT_TAG_GENERATOR, EXT_TAG_GLIBC_HWCAPS = 0, 1
HWCAP_EXTENSION = 1 << 62
ISA_LEVEL_MASK = (1 << 10) - 1

# Entry flags: FLAG_ELF_LIBC6 (3) | the architecture's FLAG_*_LIB64 (glibc sysdeps/*/dl-cache.h, ldconfig.h).
FLAG_ELF_LIBC6 = 0x0003
_ARCH_FLAGS = {
    ("x86_64", 64): 0x0303,  # FLAG_X8664_LIB64
    ("x86_64", 32): 0x0803,  # FLAG_X8664_LIBX32
    ("i386", 32): 0x0003,
    ("aarch64", 64): 0x0A03,  # FLAG_AARCH64_LIB64
    ("ppc64", 64): 0x0503,  # FLAG_POWERPC_LIB64
    ("s390x", 64): 0x0403,  # FLAG_S390_LIB64
    ("riscv64", 64): 0x1003,  # FLAG_RISCV_FLOAT_ABI_DOUBLE | FLAG_ELF_LIBC6 (lp64d)
}


class LdCacheError(TfcompatError):
    """An ld.so.cache that is neither format, or truncated."""


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """One ld.so.cache entry: a soname, the file it names, and the entry's flags and hwcaps."""

    soname: str
    path: str  # absolute, as the loader sees it (inside the root)
    flags: int
    hwcaps: Optional[str] = None  # glibc-hwcaps subdirectory ("x86-64-v3") for extension entries
    legacy_hwcap: int = 0  # pre-2.33 hwcap bits (ignored by glibc >= 2.37; we ignore them too)


@dataclasses.dataclass(frozen=True)
class LdCache:
    """A parsed ld.so.cache: its format, its entries in file order, and the ldconfig that wrote it."""

    path: str  # inside-root path of the cache file
    format: str  # "old", "new", "compat"
    entries: tuple[CacheEntry, ...]  # file order (ldconfig sorts them; best first for one soname)
    generator: Optional[str] = None  # "ldconfig (Debian GLIBC 2.36-9) release version 2.36"

    def lookup(self, soname: str, flags: Optional[int], hwcaps: Sequence[str] = ()) -> Optional[CacheEntry]:
        """The entry the loader picks: the best supported glibc-hwcaps entry, else the plain entry.

        `flags` is the architecture's cache flag value (see :func:`arch_flags`); None accepts any ELF entry.
        `hwcaps` are the supported glibc-hwcaps subdirectories, most preferred first.
        """
        best: Optional[CacheEntry] = None
        best_rank = len(hwcaps) + 1
        for e in self.entries:
            if e.soname != soname or (flags is not None and e.flags != flags):
                continue
            if e.legacy_hwcap:
                continue
            if e.hwcaps is not None:
                if e.hwcaps in hwcaps and hwcaps.index(e.hwcaps) < best_rank:
                    best, best_rank = e, hwcaps.index(e.hwcaps)
                continue
            if best is None:
                best, best_rank = e, len(hwcaps)
        return best

    def by_soname(self, soname: str, flags: Optional[int]) -> list[CacheEntry]:
        return [e for e in self.entries if e.soname == soname and (flags is None or e.flags == flags)]


def arch_flags(machine: str, elf_class: int) -> Optional[int]:
    return _ARCH_FLAGS.get((machine, elf_class))


def _cstr(data: bytes, off: int) -> str:
    if not 0 <= off < len(data):
        raise LdCacheError(f"string offset {off} outside the file ({len(data)} bytes)")
    end = data.find(b"\0", off)
    if end < 0:
        raise LdCacheError(f"unterminated string at offset {off}")
    return data[off:end].decode("utf-8", "surrogateescape")


def parse_ld_cache(data: bytes, path: str = "/etc/ld.so.cache") -> LdCache:
    """Entries of an ld.so.cache in any of the three formats (see the module docstring)."""
    if data.startswith(NEW_MAGIC):
        entries, generator = _parse_new(data, 0)
        return LdCache(path, "new", entries, generator)
    if not data.startswith(OLD_MAGIC):
        raise LdCacheError(f"{path}: not an ld.so.cache (magic {data[:20]!r})")
    if len(data) < 16:
        raise LdCacheError(f"{path}: truncated old-format header")
    (nlibs,) = struct.unpack_from("<I", data, 12)
    if nlibs > 0xFFFFFF or 16 + 12 * nlibs > len(data):
        raise LdCacheError(f"{path}: {nlibs} entries do not fit in {len(data)} bytes")
    new_at = (16 + 12 * nlibs + 7) & ~7
    if data[new_at : new_at + len(NEW_MAGIC)] == NEW_MAGIC:
        entries, generator = _parse_new(data, new_at)
        return LdCache(path, "compat", entries, generator)
    strings = 16 + 12 * nlibs
    out = []
    for i in range(nlibs):
        flags, key, value = struct.unpack_from("<iII", data, 16 + 12 * i)
        out.append(CacheEntry(_cstr(data, strings + key), _cstr(data, strings + value), flags))
    return LdCache(path, "old", tuple(out))


def _parse_new(data: bytes, base: int) -> tuple[tuple[CacheEntry, ...], Optional[str]]:
    if len(data) < base + 48:
        raise LdCacheError("truncated new-format header")
    endian_flag = data[base + 28] & 3
    e = ">" if endian_flag == 3 else "<"
    if endian_flag == 1:
        raise LdCacheError("the cache marks itself invalid (endian flag 1)")
    nlibs, _len_strings = struct.unpack_from(e + "II", data, base + 20)
    (ext_off,) = struct.unpack_from(e + "I", data, base + 32)
    if nlibs > 0xFFFFFF or base + 48 + 24 * nlibs > len(data):
        raise LdCacheError(f"{nlibs} entries do not fit in {len(data)} bytes")
    hwcap_names = _hwcaps_names(data, base, ext_off, e)
    out = []
    for i in range(nlibs):
        flags, key, value, _osv, hwcap = struct.unpack_from(e + "iIIIQ", data, base + 48 + 24 * i)
        sub = None
        legacy = 0
        if ((hwcap >> 32) & ~ISA_LEVEL_MASK) == (HWCAP_EXTENSION >> 32):
            index = hwcap & 0xFFFFFFFF
            sub = hwcap_names[index] if index < len(hwcap_names) else f"#{index}"
        elif hwcap:
            legacy = hwcap
        out.append(CacheEntry(_cstr(data, base + key), _cstr(data, base + value), flags, sub, legacy))
    generator = _generator(data, ext_off, e)
    return tuple(out), generator


def _extension_sections(data: bytes, ext_off: int, e: str) -> dict[int, tuple[int, int]]:
    if not ext_off or ext_off % 4 or ext_off + 8 > len(data):
        return {}
    magic, count = struct.unpack_from(e + "II", data, ext_off)
    if magic != EXTENSION_MAGIC or ext_off + 8 + 16 * count > len(data):
        return {}
    sections: dict[int, tuple[int, int]] = {}
    for i in range(count):
        tag, _flags, off, size = struct.unpack_from(e + "IIII", data, ext_off + 8 + 16 * i)
        if off + size <= len(data):
            sections.setdefault(tag, (off, size))
    return sections


def _hwcaps_names(data: bytes, base: int, ext_off: int, e: str) -> list[str]:
    sec = _extension_sections(data, ext_off, e).get(EXT_TAG_GLIBC_HWCAPS)
    if not sec or sec[1] % 4:
        return []
    off, size = sec
    return [_cstr(data, base + struct.unpack_from(e + "I", data, off + 4 * i)[0]) for i in range(size // 4)]


def _generator(data: bytes, ext_off: int, e: str) -> Optional[str]:
    sec = _extension_sections(data, ext_off, e).get(EXT_TAG_GENERATOR)
    if not sec:
        return None
    off, size = sec
    return data[off : off + size].decode("utf-8", "replace")


def read_ld_cache(root: Root, path: str = "/etc/ld.so.cache") -> Optional[LdCache]:
    """The cache under `root`, or None when there is none. Raises LdCacheError for a corrupt file."""
    try:
        data = root.read_bytes(path, "ld_cache")  # inside the root, a regular file only, capped
    except FileNotFoundError:
        return None
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise LdCacheError(why if why.startswith(path + ":") else f"{path}: {why}") from None
    return parse_ld_cache(data, path)


# -- ld.so.conf ----------------------------------------------------------------------------------


def read_ld_so_conf(
    root: Root, path: str = "/etc/ld.so.conf", _depth: int = 0, _seen: Optional[set] = None
) -> list[str]:
    """The directories ldconfig indexes, in order: `path` and its `include` globs, resolved inside `root`.

    Like ldconfig: `#` starts a comment, directories are separated by whitespace, `:` or `,`; a legacy
    ``dir=type`` keeps ``dir``; ``hwcap`` lines are ignored; ``include PATTERN`` is relative to the
    including file's directory when not absolute; a missing file contributes nothing.
    """
    seen = _seen if _seen is not None else set()
    if _depth > 16 or path in seen:
        return []
    seen.add(path)
    try:
        text = root.read_text(path, kind="ld_so_conf")
    except OSError:
        return []
    dirs: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] == "include" and len(words) > 1:
            for pattern in words[1:]:
                if not pattern.startswith("/"):
                    pattern = os.path.join(os.path.dirname(path), pattern)
                for inc in _glob_in_root(root, pattern):
                    dirs += read_ld_so_conf(root, inc, _depth + 1, seen)
            continue
        if words[0] == "hwcap":
            continue
        for item in line.replace(",", " ").replace(":", " ").replace("\t", " ").split():
            item = item.split("=", 1)[0].rstrip("/") or "/"
            if item.startswith("/") and item not in dirs:
                dirs.append(item)
    return dirs


def _glob_in_root(root: Root, pattern: str) -> list[str]:
    """Inside-root paths matching `pattern` (sorted, as glob(3) returns them); the wildcards are in the last
    component, as in ld.so.conf's `include /etc/ld.so.conf.d/*.conf`. The directory is listed through the
    Root (walked inside it); each match is read through it again."""
    parent, leaf = posixpath.split(pattern)
    if not any(c in leaf for c in "*?["):
        return [pattern] if root.exists(pattern) else []
    try:
        names = root.listdir(parent or "/")
    except OSError:
        return []
    hidden = leaf.startswith(".")  # glob: '*' does not match a leading dot
    return sorted(
        posixpath.join(parent, n) for n in names if fnmatch.fnmatchcase(n, leaf) and (hidden or not n.startswith("."))
    )
