"""The dynamic symbol table half of the ELF reader: hash lookups (DT_GNU_HASH, DT_HASH), symbol versions,
the undefined symbols of a plugin. Mixed into :class:`tfcompat.probes.native.elf.ElfFile`, which maps the
file and reads the dynamic segment; every chain and count is bounded (crafted files cost bounded work).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from typing import Optional, Union

from tfcompat.probes.native.elfdefs import (
    _BINDINGS,
    _MAX_ENTRIES,
    _MAX_STR,
    _TYPES,
    DT_GNU_HASH,
    DT_HASH,
    DT_SYMENT,
    DT_SYMTAB,
    DT_VERSYM,
    SHN_UNDEF,
    ElfError,
    Symbol,
    SymbolName,
)

# The fixed-layout words the lookups read, one Struct per byte order (not one per lookup).
_U16 = {e: struct.Struct(e + "H") for e in "<>"}
_U32 = {e: struct.Struct(e + "I") for e in "<>"}
_GNU_HEADER = {e: struct.Struct(e + "IIII") for e in "<>"}
_BLOOM = {(e, w): struct.Struct(e + w) for e in "<>" for w in "IQ"}
_CHUNK = 1 << 16  # table entries read at once by the whole-table passes


class SymbolTable:
    """Symbol lookups over the fields ElfFile sets when it parses the dynamic segment."""

    path: str
    size: int
    elf_class: int
    _mm: mmap.mmap
    _e: str
    _w: str
    _sym: struct.Struct
    _tags: dict[int, int]
    _strtab: Optional[int]
    _strsz: int
    _verdef_index: Optional[dict[int, str]]
    _verneed_index: Optional[dict[int, str]]
    _gnu_header: Optional[tuple[int, int, int, int, int]] = None  # base, nbuckets, symoffset, bloom size, shift

    def _unpack(self, fmt: struct.Struct, off: int) -> tuple[int, ...]:
        """`fmt` at file offset `off`; every ELF struct this reader unpacks has integer fields only."""
        raise NotImplementedError

    def _offset(self, vaddr: int) -> int:
        raise NotImplementedError

    def _symbol(self, index: int) -> tuple[int, int, int, int, int, int]:
        """(st_name, st_value, st_size, bind, type, shndx) of dynamic symbol `index`."""
        base = self._offset(self._tags[DT_SYMTAB])
        entsize = self._tags.get(DT_SYMENT, self._sym.size)
        if entsize < self._sym.size:
            raise ElfError(f"{self.path}: DT_SYMENT {entsize} is smaller than a symbol ({self._sym.size} bytes)")
        fields = self._unpack(self._sym, base + index * entsize)
        if self.elf_class == 64:
            st_name, st_info, _other, shndx, value, size = fields
        else:
            st_name, value, size, st_info, _other, shndx = fields
        return st_name, value, size, st_info >> 4, st_info & 0xF, shndx

    def _version_of(self, index: int) -> tuple[Optional[str], bool]:
        if DT_VERSYM not in self._tags:
            return None, False
        (ver,) = self._unpack(_U16[self._e], self._offset(self._tags[DT_VERSYM]) + 2 * index)
        hidden = bool(ver & 0x8000)
        ver &= 0x7FFF
        if ver in (0, 1):  # local / global (unversioned)
            return None, hidden
        name = (self._verdef_index or {}).get(ver) or (self._verneed_index or {}).get(ver)
        return name, hidden

    def _make_symbol(self, index: int, name: str) -> Symbol:
        _n, value, size, bind, typ, shndx = self._symbol(index)
        version, hidden = self._version_of(index)
        return Symbol(
            name,
            value,
            size,
            _BINDINGS.get(bind, str(bind)),
            _TYPES.get(typ, str(typ)),
            shndx != SHN_UNDEF,
            version,
            hidden,
        )

    def lookup(self, name: Union[str, SymbolName]) -> tuple[Symbol, ...]:
        """Every dynamic symbol named `name` (several when versioned: memcpy@GLIBC_2.2.5, memcpy@@GLIBC_2.14).

        Uses DT_GNU_HASH, else DT_HASH: a few page reads whatever the size of the table. Undefined
        entries are not in the hash chains of most linkers' output, but are returned if they are.
        A :class:`SymbolName` carries its hashes, computed once for all the files it is looked up in.
        """
        key = name if isinstance(name, SymbolName) else SymbolName(name)
        return tuple(self._make_symbol(i, key.name) for i in self._chain(key))

    def defines(self, key: SymbolName, version: Optional[str] = None) -> bool:
        """Whether a defined `key` is here that a reference asking for `version` binds to.

        The same answer as any(s.defined and (version is None or s.version in (None, version)) for s in
        lookup(key)), with the same reads (and the same errors for a malformed file), no Symbol built."""
        found_one = False
        for index in self._chain(key):  # the whole chain is walked and every match read, as lookup() does
            defined = self._symbol(index)[5] != SHN_UNDEF
            found, _hidden = self._version_of(index)
            if defined and (version is None or found is None or found == version):
                found_one = True
        return found_one

    def _chain(self, key: SymbolName) -> Iterator[int]:
        """The indices of the symbols named `key`, through DT_GNU_HASH, else DT_HASH."""
        if DT_SYMTAB not in self._tags or self._strtab is None:
            return iter(())
        if DT_GNU_HASH in self._tags:
            return self._gnu_chain(key.raw, key.gnu)
        if DT_HASH in self._tags:
            return self._sysv_chain(key.raw, key.sysv)
        return iter(())

    def _name_at(self, st_name: int) -> bytes:
        if self._strtab is None:  # callers check first; no string table, no names
            return b""
        start = self._strtab + st_name
        end = self._mm.find(b"\0", start, min(self._strtab + self._strsz, start + _MAX_STR + 1))
        return self._mm[start:end] if end >= 0 else b""

    def _gnu_chain(self, want: bytes, h: int) -> Iterator[int]:
        header = self._gnu_header
        if header is None:  # read once per file, not once per name
            base = self._offset(self._tags[DT_GNU_HASH])
            nbuckets, symoffset, bloom_size, bloom_shift = self._unpack(_GNU_HEADER[self._e], base)
            header = self._gnu_header = (base, nbuckets, symoffset, bloom_size, bloom_shift)
        base, nbuckets, symoffset, bloom_size, bloom_shift = header
        if nbuckets == 0:
            return
        if bloom_size == 0:
            raise ElfError(f"{self.path}: malformed DT_GNU_HASH (bloom filter of size 0)")
        word = 8 if self.elf_class == 64 else 4
        bits = word * 8
        # The Bloom filter first: most files of the scope do not define a given name, and say so here.
        (bloom,) = self._unpack(_BLOOM[self._e, self._w], base + 16 + word * ((h // bits) % bloom_size))
        if not (bloom >> (h % bits)) & 1 or not (bloom >> ((h >> bloom_shift) % bits)) & 1:
            return
        buckets = base + 16 + word * bloom_size
        u32 = _U32[self._e]
        (index,) = self._unpack(u32, buckets + 4 * (h % nbuckets))
        if index < symoffset:
            return
        chains = buckets + 4 * nbuckets
        for _step in range(_MAX_ENTRIES):
            (ch,) = self._unpack(u32, chains + 4 * (index - symoffset))
            if (ch | 1) == (h | 1) and self._name_at(self._symbol(index)[0]) == want:
                yield index
            if ch & 1:
                return
            index += 1
        raise ElfError(f"{self.path}: DT_GNU_HASH chain longer than {_MAX_ENTRIES} (unterminated?)")

    def _sysv_chain(self, want: bytes, h: int) -> Iterator[int]:
        base = self._offset(self._tags[DT_HASH])
        u32 = _U32[self._e]
        (nbucket,) = self._unpack(u32, base)
        (nchain,) = self._unpack(u32, base + 4)
        if nbucket == 0:
            return
        if base + 8 + 4 * (nbucket + nchain) > self.size:
            raise ElfError(f"{self.path}: DT_HASH ({nbucket} buckets, {nchain} chains) runs past the end of the file")
        (index,) = self._unpack(u32, base + 8 + 4 * (h % nbucket))
        seen: set = set()
        while index:
            if index >= nchain or index in seen or len(seen) >= _MAX_ENTRIES:
                raise ElfError(
                    f"{self.path}: malformed DT_HASH chain (index {index}: out of range, a loop, "
                    f"or over {_MAX_ENTRIES} steps)"
                )
            seen.add(index)
            if self._name_at(self._symbol(index)[0]) == want:
                yield index
            (index,) = self._unpack(u32, base + 8 + 4 * nbucket + 4 * index)

    def symbol_count(self) -> int:
        """Number of dynamic symbols (from DT_HASH, else the GNU hash chains, else the section headers)."""
        count = self._symbol_count()
        if count and DT_SYMTAB in self._tags:  # the table must fit in the file: no loop over 2^32 phantoms
            entsize = self._tags.get(DT_SYMENT, self._sym.size)
            if entsize < self._sym.size or self._offset(self._tags[DT_SYMTAB]) + count * entsize > self.size:
                raise ElfError(f"{self.path}: {count} dynamic symbols of {entsize} bytes run past the end of the file")
        return count

    def _symbol_count(self) -> int:
        if DT_HASH in self._tags:
            return self._unpack(_U32[self._e], self._offset(self._tags[DT_HASH]) + 4)[0]
        if DT_GNU_HASH in self._tags:
            base = self._offset(self._tags[DT_GNU_HASH])
            nbuckets, symoffset, bloom_size, _shift = self._unpack(_GNU_HEADER[self._e], base)
            word = 8 if self.elf_class == 64 else 4
            buckets = base + 16 + word * bloom_size
            if buckets + 4 * nbuckets > self.size:
                raise ElfError(f"{self.path}: DT_GNU_HASH ({nbuckets} buckets) runs past the end of the file")
            u32 = _U32[self._e]
            last = 0
            for start in range(0, nbuckets, _CHUNK):  # a chunk at a time: bounded memory whatever nbuckets says
                n = min(_CHUNK, nbuckets - start)
                last = max(last, *struct.unpack_from(f"{self._e}{n}I", self._mm, buckets + 4 * start))
            if last < symoffset:
                return symoffset
            chains = buckets + 4 * nbuckets
            for _step in range(_MAX_ENTRIES):
                if self._unpack(u32, chains + 4 * (last - symoffset))[0] & 1:
                    return last + 1
                last += 1
            raise ElfError(f"{self.path}: DT_GNU_HASH chain longer than {_MAX_ENTRIES} (unterminated?)")
        return 0

    def dynamic_symbols(self) -> Iterator[Symbol]:
        """Every dynamic symbol, in table order. Linear in the table: for small objects (plugins), not TF's cores."""
        if DT_SYMTAB not in self._tags or self._strtab is None:
            return
        for i in range(1, self.symbol_count()):
            st_name = self._symbol(i)[0]
            yield self._make_symbol(i, self._name_at(st_name).decode("utf-8", "surrogateescape"))


def undefined_symbols(elf: SymbolTable) -> list[Symbol]:
    """The non-weak undefined dynamic symbols of `elf` (what a plugin needs from others), in table order."""
    return [
        s if isinstance(s, Symbol) else Symbol(s[0], s[1], s[2], _binding(s[3]), _type(s[3]), False, s[4], s[5])
        for s in _undefined(elf)
    ]


def undefined_refs(elf: SymbolTable) -> list[tuple[str, Optional[str]]]:
    """(name, version asked for) of each of undefined_symbols(elf), without building Symbols."""
    return [(s.name, s.version) if isinstance(s, Symbol) else (s[0], s[4]) for s in _undefined(elf)]


def _binding(st_info: int) -> str:
    return _BINDINGS.get(st_info >> 4, str(st_info >> 4))


def _type(st_info: int) -> str:
    return _TYPES.get(st_info & 0xF, str(st_info & 0xF))


def _zero_words(data: bytes) -> list[int]:
    """Indices of the 16-bit words of `data` that are 0 (bytes.find does the scanning)."""
    out: list[int] = []
    find = data.find
    pos = find(b"\0\0")
    while pos >= 0:
        if pos & 1:  # straddles two words
            pos = find(b"\0\0", pos + 1)
            continue
        out.append(pos >> 1)
        pos = find(b"\0\0", pos + 2)
    return out


_Entry = tuple[str, int, int, int, Optional[str], bool]  # name, value, size, st_info, version, hidden


def _undefined(elf: SymbolTable) -> Union[list[Symbol], list[_Entry]]:
    """The non-weak undefined dynamic symbols, as Symbols from the linear walk when the table is odd, else
    as entries read the fast way: the st_shndx column of the whole table is copied out in one C-level pass
    (a strided memoryview) and searched for zeros, and only the undefined entries are unpacked, named and
    versioned (the same fields, bounds and errors as _make_symbol): a plugin exporting 10,000 symbols
    costs well under a millisecond, not a second."""
    if DT_SYMTAB not in elf._tags or elf._strtab is None:
        return []
    count = elf.symbol_count()
    base = elf._offset(elf._tags[DT_SYMTAB])
    entsize = elf._tags.get(DT_SYMENT, elf._sym.size)
    if count <= 1 or entsize != elf._sym.size or base + count * entsize > elf.size:
        return [s for s in elf.dynamic_symbols() if not s.defined and s.binding != "WEAK"]
    shndx_at = 6 if elf.elf_class == 64 else 14  # byte offset of st_shndx (a 16-bit word) in Elf64_Sym / Elf32_Sym
    end = base + count * entsize
    undefined: list[int] = []
    with (
        memoryview(elf._mm) as mv,
        mv[base:end] as table,
        table.cast("H") as u16s,
        u16s[shndx_at // 2 :: entsize // 2] as col,
    ):
        for start in range(0, count, _CHUNK):  # a chunk at a time: bounded memory whatever the count
            with col[start : start + _CHUNK] as part:
                undefined += [start + i for i in _zero_words(part.tobytes())]  # SHN_UNDEF is 0 in either byte order
    versym_tag = elf._tags.get(DT_VERSYM)
    versym: Optional[int] = None  # its file offset, on first use (as _version_of finds it)
    in_file = False  # whether .gnu.version holds a word for every entry up to the last undefined one
    u16 = _U16[elf._e]
    defs, needs = elf._verdef_index or {}, elf._verneed_index or {}
    wide = elf.elf_class == 64
    out: list[_Entry] = []
    for i in undefined:
        fields = elf._sym.unpack_from(elf._mm, base + i * entsize)
        if wide:
            st_name, st_info, _other, _shndx, value, size = fields
        else:
            st_name, value, size, st_info, _other, _shndx = fields
        if i == 0 or st_name == 0 or (st_info >> 4) == 2:  # STB_WEAK
            continue
        name = elf._name_at(st_name).decode("utf-8", "surrogateescape")
        version: Optional[str] = None
        hidden = False
        if versym_tag is not None:
            if versym is None:
                versym = elf._offset(versym_tag)
                in_file = versym + 2 * (undefined[-1] + 1) <= elf.size  # else each word bounds-checked
            ver = u16.unpack_from(elf._mm, versym + 2 * i)[0] if in_file else elf._unpack(u16, versym + 2 * i)[0]
            hidden = bool(ver & 0x8000)
            ver &= 0x7FFF
            if ver not in (0, 1):  # local / global (unversioned)
                version = defs.get(ver) or needs.get(ver)
        out.append((name, value, size, st_info, version, hidden))
    return out
