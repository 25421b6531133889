"""What the ELF reader returns, and the constants it reads by: no I/O here.

ELF header fields, dynamic tags and symbol attributes as the System V ABI and glibc's ``elf.h`` number
them; the loader's view of one file (:class:`ElfInfo`), one dynamic symbol (:class:`Symbol`), and the two
symbol hash functions.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from tfcompat.errors import TfcompatError

ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
DT_NULL, DT_NEEDED, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ, DT_SYMENT = 0, 1, 4, 5, 6, 10, 11
DT_SONAME, DT_RPATH, DT_RUNPATH, DT_FLAGS = 14, 15, 29, 30
DT_GNU_HASH = 0x6FFFFEF5
DT_VERSYM, DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM = (
    0x6FFFFFF0,
    0x6FFFFFFC,
    0x6FFFFFFD,
    0x6FFFFFFE,
    0x6FFFFFFF,
)
DT_FLAGS_1 = 0x6FFFFFFB
DF_1_NODEFLIB = 0x800
VER_FLG_BASE = 0x1
SHN_UNDEF = 0

MACHINES = {
    3: "i386",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    40: "arm",
    62: "x86_64",
    183: "aarch64",
    243: "riscv64",
}
_BINDINGS = {0: "LOCAL", 1: "GLOBAL", 2: "WEAK", 10: "GNU_UNIQUE"}
_TYPES = {0: "NOTYPE", 1: "OBJECT", 2: "FUNC", 3: "SECTION", 4: "FILE", 5: "COMMON", 6: "TLS", 10: "IFUNC"}


class ElfError(TfcompatError):
    """Not an ELF file, or a truncated / malformed one. The message says which."""


@dataclasses.dataclass(frozen=True)
class VersionNeed:
    """One ``.gnu.version_r`` entry: the versions an object needs from one of its DT_NEEDED files."""

    file: str  # "libstdc++.so.6"
    versions: tuple[str, ...]  # ("GLIBCXX_3.4.22", "CXXABI_1.3.11", ...)


@dataclasses.dataclass(frozen=True)
class ElfInfo:
    """What the loader reads from one ELF file."""

    path: str
    elf_class: int  # 32 or 64
    little_endian: bool
    machine: int  # e_machine
    elf_type: int  # ET_DYN, ET_EXEC, ...
    interpreter: Optional[str]
    soname: Optional[str]
    needed: tuple[str, ...]
    rpath: Optional[tuple[str, ...]]  # None: no DT_RPATH (an empty DT_RPATH is ())
    runpath: Optional[tuple[str, ...]]  # None: no DT_RUNPATH; its mere presence disables DT_RPATH
    flags_1: int
    version_needs: tuple[VersionNeed, ...]
    version_defs: tuple[str, ...]  # names defined in .gnu.version_d, the base (file) entry excluded
    has_gnu_hash: bool
    has_sysv_hash: bool

    @property
    def machine_name(self) -> str:
        return MACHINES.get(self.machine, f"elf-machine-{self.machine}")

    @property
    def nodeflib(self) -> bool:
        return bool(self.flags_1 & DF_1_NODEFLIB)

    def needs_from(self, file: str) -> tuple[str, ...]:
        for need in self.version_needs:
            if need.file == file:
                return need.versions
        return ()


@dataclasses.dataclass(frozen=True)
class Symbol:
    """A dynamic symbol of an ELF file: its binding, type, whether it is defined, and its version."""

    name: str
    value: int
    size: int
    binding: str  # GLOBAL, WEAK, ...
    type: str  # FUNC, OBJECT, ...
    defined: bool  # st_shndx != SHN_UNDEF
    version: Optional[str]  # "GLIBCXX_3.4.21", None when unversioned
    hidden: bool  # a non-default version (name@VER rather than name@@VER)


def gnu_hash(name: bytes) -> int:
    h = 5381
    for c in name:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


def sysv_hash(name: bytes) -> int:
    h = 0
    for c in name:
        h = ((h << 4) + c) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


class SymbolName:
    """A name to look up in many objects: encoded once, its GNU hash computed once, its SysV hash on first use."""

    __slots__ = ("_sysv", "gnu", "name", "raw")

    def __init__(self, name: str):
        self.name = name
        self.raw = name.encode("utf-8", "surrogateescape")
        self.gnu = gnu_hash(self.raw)
        self._sysv: Optional[int] = None

    @property
    def sysv(self) -> int:
        if self._sysv is None:
            self._sysv = sysv_hash(self.raw)
        return self._sysv


# Bounds on what one object may make us do (#17: crafted files must cost bounded time and memory). Real
# objects are far below them: libtensorflow_cc has ~40 dynamic entries, ~200 version needs, chains of < 50.
_MAX_ENTRIES = 1 << 16  # dynamic entries, version needs/defs, their aux entries, hash chain steps
_MAX_STR = 1 << 16  # one dynamic string (a soname, a path list, a version or symbol name)
_STR_BUDGET = 16 << 20  # all strings read from one object's dynamic data
