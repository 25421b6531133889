"""A fast, read-only ELF reader for what the dynamic loader needs, with ``struct`` over an ``mmap``.

It reads the ELF header, the program headers and the dynamic segment the way ``ld.so`` does (no section
headers needed): class, machine, type, interpreter, SONAME, DT_NEEDED, DT_RPATH / DT_RUNPATH, DT_FLAGS_1,
the symbol versions an object needs (``.gnu.version_r``) and defines (``.gnu.version_d``). Symbols are
looked up one at a time through DT_GNU_HASH (or DT_HASH), never by walking the whole symbol table:
``libtensorflow_cc.so.2`` is 1.1 GB with ~470k dynamic symbols, and only the pages we touch are read.

Nothing is ever loaded or executed. :func:`read_elf` caches its result per file by
(device, inode, size, mtime); :func:`clear_cache` empties the cache (tests).

pyelftools would give the same answers (the tests cross-check against it) but parses eagerly and is
several times slower on files of this size, so it is not used here.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from typing import Optional

# The definitions live in elfdefs; they are re-exported here, the reader's one public face.
from tfcompat.probes.native.elfdefs import (  # noqa: F401
    _BINDINGS,
    _MAX_ENTRIES,
    _MAX_STR,
    _STR_BUDGET,
    _TYPES,
    DF_1_NODEFLIB,
    DT_FLAGS,
    DT_FLAGS_1,
    DT_GNU_HASH,
    DT_HASH,
    DT_NEEDED,
    DT_NULL,
    DT_RPATH,
    DT_RUNPATH,
    DT_SONAME,
    DT_STRSZ,
    DT_STRTAB,
    DT_SYMENT,
    DT_SYMTAB,
    DT_VERDEF,
    DT_VERDEFNUM,
    DT_VERNEED,
    DT_VERNEEDNUM,
    DT_VERSYM,
    ET_DYN,
    ET_EXEC,
    MACHINES,
    PT_DYNAMIC,
    PT_INTERP,
    PT_LOAD,
    PT_NOTE,
    SHN_UNDEF,
    VER_FLG_BASE,
    ElfError,
    ElfInfo,
    Symbol,
    SymbolName,
    VersionNeed,
    gnu_hash,
    sysv_hash,
)
from tfcompat.probes.native.symbols import SymbolTable, undefined_refs, undefined_symbols  # noqa: F401  (re-exported)

_CACHE: dict[tuple[int, int, int, int], ElfInfo] = {}


def clear_cache() -> None:
    _CACHE.clear()


def cache_key(path: str) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def read_elf(path: str) -> ElfInfo:
    """The loader's view of `path` (a real path on this machine), cached by (dev, inode, size, mtime)."""
    try:
        key = cache_key(path)
    except OSError as exc:
        raise ElfError(f"{path}: {exc.strerror or exc}") from None
    hit = _CACHE.get(key)
    if hit is not None and hit.path == path:
        return hit
    with ElfFile(path) as elf:
        info = elf.info
    _CACHE[key] = info
    return info


def is_elf(path: str) -> bool:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False  # a FIFO would block the open
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


class ElfFile(SymbolTable):
    """An open ELF file (mmap'ed, read-only). Use as a context manager; ``.info`` and ``.lookup()``."""

    def __init__(self, path: str):
        self.path = path
        try:
            # a FIFO or device is never opened (it could block or never end); O_NONBLOCK covers a swap
            if not stat.S_ISREG(os.stat(path).st_mode):
                raise ElfError(f"{path}: not a regular file")
            self._fh = os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb")
        except OSError as exc:
            raise ElfError(f"{path}: {exc.strerror or exc}") from None
        try:
            st = os.fstat(self._fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ElfError(f"{path}: not a regular file")
            size = st.st_size
            if size < 16:
                raise ElfError(f"{path}: file too short for an ELF header ({size} bytes)")
            self._mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            self._fh.close()
            if isinstance(exc, ElfError):
                raise
            raise ElfError(f"{path}: cannot map it: {exc}") from None
        except BaseException:
            self._fh.close()
            raise
        self.size = size
        try:
            self._parse()
        except BaseException:
            self.close()
            raise

    # -- plumbing -------------------------------------------------------------------------------

    def close(self) -> None:
        try:
            self._mm.close()
        finally:
            self._fh.close()

    def __enter__(self) -> ElfFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _unpack(self, fmt: struct.Struct, off: int) -> tuple[int, ...]:
        """`fmt` at file offset `off`; every ELF struct this reader unpacks has integer fields only."""
        if off < 0 or off + fmt.size > self.size:
            raise ElfError(f"{self.path}: truncated (wanted {fmt.size} bytes at offset {off}, file has {self.size})")
        return fmt.unpack_from(self._mm, off)

    def _offset(self, vaddr: int) -> int:
        """File offset of a virtual address, through the PT_LOAD segments (as mapped by the loader).

        Memoised: a handful of distinct addresses (the DT_ tables) are asked again for every symbol, and a
        crafted object may have 65,535 PT_LOADs."""
        hit = self._offsets.get(vaddr)
        if hit is not None:
            return hit
        for p_vaddr, p_offset, p_filesz in self._loads:
            if p_vaddr <= vaddr < p_vaddr + p_filesz:
                self._offsets[vaddr] = vaddr - p_vaddr + p_offset
                return vaddr - p_vaddr + p_offset
        raise ElfError(f"{self.path}: address {vaddr:#x} is not in any PT_LOAD segment")

    def _str(self, off: int) -> str:
        """A NUL-terminated string at `off` of the dynamic string table."""
        if self._strtab is None:
            raise ElfError(f"{self.path}: no DT_STRTAB")
        if not 0 <= off < self._strsz:
            raise ElfError(f"{self.path}: string offset {off} outside DT_STRTAB ({self._strsz} bytes)")
        start = self._strtab + off
        end = self._mm.find(b"\0", start, min(self._strtab + self._strsz, start + _MAX_STR + 1))
        if end < 0:
            raise ElfError(f"{self.path}: unterminated string in DT_STRTAB (or longer than {_MAX_STR} bytes)")
        self._str_budget -= end - start
        if self._str_budget < 0:
            raise ElfError(f"{self.path}: dynamic strings add up to more than {_STR_BUDGET >> 20} MiB")
        return self._mm[start:end].decode("utf-8", "surrogateescape")

    # -- parsing ----------------------------------------------------------------------------------

    def _parse(self) -> None:
        mm = self._mm
        if mm[:4] != b"\x7fELF":
            raise ElfError(f"{self.path}: not an ELF file (invalid ELF header)")
        ei_class, ei_data = mm[4], mm[5]
        if ei_class not in (1, 2):
            raise ElfError(f"{self.path}: invalid ELF class {ei_class}")
        if ei_data not in (1, 2):
            raise ElfError(f"{self.path}: invalid ELF data encoding {ei_data}")
        e = "<" if ei_data == 1 else ">"
        self.elf_class = 64 if ei_class == 2 else 32
        self.little_endian = ei_data == 1
        w = "Q" if ei_class == 2 else "I"
        if ei_class == 2:
            ehdr = struct.Struct(e + "HHIQQQIHHHHHH")
            self._phdr = struct.Struct(e + "IIQQQQQQ")  # type flags offset vaddr paddr filesz memsz align
            self._dyn = struct.Struct(e + "qQ")
            self._sym = struct.Struct(e + "IBBHQQ")  # name info other shndx value size
        else:
            ehdr = struct.Struct(e + "HHIIIIIHHHHHH")
            self._phdr = struct.Struct(e + "IIIIIIII")  # type offset vaddr paddr filesz memsz flags align
            self._dyn = struct.Struct(e + "iI")
            self._sym = struct.Struct(e + "IIIBBH")  # name value size info other shndx
        self._e, self._w = e, w
        (
            e_type,
            e_machine,
            _version,
            _entry,
            e_phoff,
            e_shoff,
            _flags,
            _ehsize,
            e_phentsize,
            e_phnum,
            e_shentsize,
            e_shnum,
            _e_shstrndx,
        ) = self._unpack(ehdr, 16)
        self.elf_type, self.machine = e_type, e_machine
        self._shoff, self._shentsize, self._shnum = e_shoff, e_shentsize, e_shnum
        if e_phnum and e_phentsize < self._phdr.size:
            raise ElfError(f"{self.path}: program header entries of {e_phentsize} bytes are too small")
        self._loads: list[tuple[int, int, int]] = []
        self._offsets: dict[int, int] = {}
        self._notes: list[tuple[int, int]] = []
        self._str_budget = _STR_BUDGET
        dynamic: Optional[tuple[int, int]] = None
        interp: Optional[str] = None
        if e_phnum and e_phoff + e_phnum * e_phentsize > self.size:
            raise ElfError(f"{self.path}: program headers ({e_phnum} at offset {e_phoff}) run past the end of the file")
        for i in range(e_phnum):
            ph = self._unpack(self._phdr, e_phoff + i * e_phentsize)
            if ei_class == 2:
                p_type, _pf, p_offset, p_vaddr, _pa, p_filesz, _pm, _al = ph
            else:
                p_type, p_offset, p_vaddr, _pa, p_filesz, _pm, _pf, _al = ph
            if p_type == PT_LOAD:
                self._loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == PT_DYNAMIC:
                dynamic = (p_offset, p_filesz)
            elif p_type == PT_INTERP:
                if p_offset + p_filesz > self.size:
                    raise ElfError(f"{self.path}: PT_INTERP at offset {p_offset} runs past the end of the file")
                stop = p_offset + min(p_filesz, _MAX_STR)
                end = mm.find(b"\0", p_offset, stop)
                interp = mm[p_offset : end if end >= 0 else stop].decode("utf-8", "surrogateescape")
            elif p_type == PT_NOTE:
                self._notes.append((p_offset, p_filesz))
        self.interpreter = interp
        tags: dict[int, int] = {}
        needed_offs: list[int] = []
        self._strtab: Optional[int] = None
        self._strsz = 0
        if dynamic is not None:
            off, size = dynamic
            step = self._dyn.size
            if size // step > _MAX_ENTRIES:
                raise ElfError(f"{self.path}: PT_DYNAMIC of {size} bytes holds over {_MAX_ENTRIES} entries")
            for pos in range(off, off + size - step + 1, step):
                tag, val = self._unpack(self._dyn, pos)
                if tag == DT_NULL:
                    break
                if tag == DT_NEEDED:
                    needed_offs.append(val)
                elif tag not in tags:
                    tags[tag] = val
        self._tags = tags
        if DT_STRTAB in tags:
            self._strtab = self._offset(tags[DT_STRTAB])
            self._strsz = tags.get(DT_STRSZ, self.size - self._strtab)
            self._strsz = min(self._strsz, self.size - self._strtab)
        self.needed = tuple(self._str(o) for o in needed_offs)
        self.soname = self._str(tags[DT_SONAME]) if DT_SONAME in tags else None
        self.rpath = tuple(self._str(tags[DT_RPATH]).split(":")) if DT_RPATH in tags else None
        self.runpath = tuple(self._str(tags[DT_RUNPATH]).split(":")) if DT_RUNPATH in tags else None
        if self.rpath == ("",):
            self.rpath = ()
        if self.runpath == ("",):
            self.runpath = ()
        self.flags_1 = tags.get(DT_FLAGS_1, 0)
        self._verdef_index: Optional[dict[int, str]] = None
        self._verneed_index: Optional[dict[int, str]] = None
        self.version_needs = self._read_verneed()
        self.version_defs = tuple(name for _ndx, flags, name in self._read_verdef() if not flags & VER_FLG_BASE)
        self.info = ElfInfo(
            path=self.path,
            elf_class=self.elf_class,
            little_endian=self.little_endian,
            machine=self.machine,
            elf_type=self.elf_type,
            interpreter=self.interpreter,
            soname=self.soname,
            needed=self.needed,
            rpath=self.rpath,
            runpath=self.runpath,
            flags_1=self.flags_1,
            version_needs=self.version_needs,
            version_defs=self.version_defs,
            has_gnu_hash=DT_GNU_HASH in tags,
            has_sysv_hash=DT_HASH in tags,
        )

    def _read_verneed(self) -> tuple[VersionNeed, ...]:
        if DT_VERNEED not in self._tags:
            return ()
        vn = struct.Struct(self._e + "HHIII")  # version cnt file aux next
        vna = struct.Struct(self._e + "IHHII")  # hash flags other name next
        out: list[VersionNeed] = []
        index: dict[int, str] = {}
        pos = self._offset(self._tags[DT_VERNEED])
        seen_aux: set = set()  # each Elf_Vernaux belongs to one chain: a shared or looping chain is malformed
        for count in range(self._tags.get(DT_VERNEEDNUM, _MAX_ENTRIES)):
            if count >= _MAX_ENTRIES:
                raise ElfError(f"{self.path}: more than {_MAX_ENTRIES} version-need entries")
            _ver, cnt, file_off, aux, nxt = self._unpack(vn, pos)
            names: list[str] = []
            apos = pos + aux
            for _j in range(cnt):
                if apos in seen_aux or len(seen_aux) >= _MAX_ENTRIES:
                    raise ElfError(
                        f"{self.path}: malformed .gnu.version_r (version-need aux entries shared, "
                        f"looping or over {_MAX_ENTRIES})"
                    )
                seen_aux.add(apos)
                _hash, _flags, other, name_off, anext = self._unpack(vna, apos)
                name = self._str(name_off)
                names.append(name)
                index[other & 0x7FFF] = name
                if not anext:
                    break
                apos += anext
            out.append(VersionNeed(self._str(file_off), tuple(names)))
            if not nxt:
                break
            pos += nxt
        self._verneed_index = index
        return tuple(out)

    def _read_verdef(self) -> list[tuple[int, int, str]]:
        if DT_VERDEF not in self._tags:
            self._verdef_index = {}
            return []
        vd = struct.Struct(self._e + "HHHHIII")  # version flags ndx cnt hash aux next
        vda = struct.Struct(self._e + "II")  # name next
        out: list[tuple[int, int, str]] = []
        pos = self._offset(self._tags[DT_VERDEF])
        for count in range(self._tags.get(DT_VERDEFNUM, _MAX_ENTRIES)):
            if count >= _MAX_ENTRIES:
                raise ElfError(f"{self.path}: more than {_MAX_ENTRIES} version-definition entries")
            _ver, flags, ndx, cnt, _hash, aux, nxt = self._unpack(vd, pos)
            if cnt:
                (name_off, _anext) = self._unpack(vda, pos + aux)
                out.append((ndx, flags, self._str(name_off)))
            if not nxt:
                break
            pos += nxt
        self._verdef_index = {ndx: name for ndx, _f, name in out}
        return out

    def build_id(self) -> Optional[str]:
        """The GNU build-id (NT_GNU_BUILD_ID in a PT_NOTE segment) in hex, None when there is none; bounded."""
        u32x3 = struct.Struct(self._e + "III")
        for off, size in self._notes:
            if off + size > self.size:
                raise ElfError(f"{self.path}: PT_NOTE at offset {off} ({size} bytes) runs past the end of the file")
            pos, end = off, off + min(size, 1 << 16)
            while pos + 12 <= end:
                namesz, descsz, ntype = self._unpack(u32x3, pos)
                name_end = pos + 12 + ((namesz + 3) & ~3)
                if ntype == 3 and namesz == 4 and self._mm[pos + 12 : pos + 16] == b"GNU\0":
                    return self._mm[name_end : min(name_end + descsz, end, name_end + 64)].hex()
                pos = name_end + ((descsz + 3) & ~3)
        return None


def lookup_symbols(path: str, names) -> dict[str, tuple[Symbol, ...]]:
    """{name: definitions and references found} for each wanted name, by hash lookup in one open of `path`."""
    with ElfFile(path) as elf:
        return {n: elf.lookup(n) for n in names}


def defines(path: str, name: str) -> bool:
    """Whether `path` exports a defined dynamic symbol `name` (hash lookup; False for unreadable files)."""
    try:
        return any(s.defined for s in lookup_symbols(path, [name])[name])
    except ElfError:
        return False
