"""ELF files for the loader tests: a tiny writer (no toolchain needed) and a gcc builder (skips without gcc).

`write_so` emits a minimal but valid shared object: ELF header, one PT_LOAD covering the file
(virtual address = file offset), PT_DYNAMIC, a dynamic string table, DT_NEEDED / DT_SONAME / DT_RPATH /
DT_RUNPATH / DT_FLAGS_1 and .gnu.version_r / .gnu.version_d data, in 32 or 64 bits, either byte order,
for any e_machine. pyelftools reads these files too (tests/test_elf.py checks it). It has no symbols:
symbol lookups are tested on gcc-built objects (`gcc_so`).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Iterable, Sequence
from typing import Optional

import pytest

EM_X86_64, EM_AARCH64, EM_386 = 62, 183, 3


def elf_hash(name: str) -> int:
    h = 0
    for c in name.encode():
        h = ((h << 4) + c) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


def build_so(
    soname: Optional[str] = None,
    needed: Sequence[str] = (),
    rpath: Optional[str] = None,
    runpath: Optional[str] = None,
    elf_class: int = 64,
    machine: int = EM_X86_64,
    little: bool = True,
    version_needs: Optional[dict[str, Sequence[str]]] = None,
    version_defs: Sequence[str] = (),
    e_type: int = 3,
    flags_1: int = 0,
) -> bytes:
    e = "<" if little else ">"
    is64 = elf_class == 64
    strtab = bytearray(b"\0")
    index: dict[str, int] = {}

    def s(text: str) -> int:
        if text not in index:
            index[text] = len(strtab)
            strtab.extend(text.encode() + b"\0")
        return index[text]

    dyn = [(1, s(n)) for n in needed]
    if soname:
        dyn.append((14, s(soname)))
    if rpath is not None:
        dyn.append((15, s(rpath)))
    if runpath is not None:
        dyn.append((29, s(runpath)))
    if flags_1:
        dyn.append((0x6FFFFFFB, flags_1))
    # .gnu.version_r: Elf_Verneed (16 bytes) + Elf_Vernaux (16 bytes) each
    verneed = bytearray()
    other = 2
    needs = list((version_needs or {}).items())
    for i, (file, versions) in enumerate(needs):
        size = 16 + 16 * len(versions)
        verneed += struct.pack(e + "HHIII", 1, len(versions), s(file), 16, size if i < len(needs) - 1 else 0)
        for j, v in enumerate(versions):
            verneed += struct.pack(e + "IHHII", elf_hash(v), 0, other, s(v), 16 if j < len(versions) - 1 else 0)
            other += 1
    # .gnu.version_d: base entry (the soname) then one per version; Elf_Verdef (20) + Elf_Verdaux (8)
    verdef = bytearray()
    defs = ([soname or "base"] + list(version_defs)) if version_defs else []
    for i, name in enumerate(defs):
        verdef += struct.pack(
            e + "HHHHIII", 1, 1 if i == 0 else 0, i + 1, 1, elf_hash(name), 20, 28 if i < len(defs) - 1 else 0
        )
        verdef += struct.pack(e + "II", s(name), 0)
    ehsize, phentsize = (64, 56) if is64 else (52, 32)
    dynent = 16 if is64 else 8
    off = ehsize + 2 * phentsize
    str_off = off
    off += len(strtab)
    off = (off + 7) & ~7
    vn_off = off
    off += len(verneed)
    off = (off + 7) & ~7
    vd_off = off
    off += len(verdef)
    off = (off + 7) & ~7
    dyn += [(5, str_off), (10, len(strtab))]
    if verneed:
        dyn += [(0x6FFFFFFE, vn_off), (0x6FFFFFFF, len(needs))]
    if verdef:
        dyn += [(0x6FFFFFFC, vd_off), (0x6FFFFFFD, len(defs))]
    dyn.append((0, 0))
    dyn_off = off
    load_end = dyn_off + dynent * len(dyn)
    # Section headers (not needed by the loader, but pyelftools and readelf want them for versions).
    shstr = bytearray(b"\0")

    def n(text: str) -> int:
        shstr.extend(text.encode() + b"\0")
        return len(shstr) - len(text) - 1

    sections = [(0, 0, 0, 0, 0, 0, 0, 0)]  # name type offset size link info align entsize
    sections.append((n(".dynstr"), 3, str_off, len(strtab), 0, 0, 1, 0))
    if verneed:
        sections.append((n(".gnu.version_r"), 0x6FFFFFFE, vn_off, len(verneed), 1, len(needs), 8, 0))
    if verdef:
        sections.append((n(".gnu.version_d"), 0x6FFFFFFD, vd_off, len(verdef), 1, len(defs), 8, 0))
    sections.append((n(".dynamic"), 6, dyn_off, dynent * len(dyn), 1, 0, 8, dynent))
    shstr_index = len(sections)
    name_shstrtab = n(".shstrtab")
    shstr_off = load_end
    sh_off = (shstr_off + len(shstr) + 7) & ~7
    sections.append((name_shstrtab, 3, shstr_off, len(shstr), 0, 0, 1, 0))
    shentsize = 64 if is64 else 40
    total = sh_off + shentsize * len(sections)
    out = bytearray(total)
    for i, (nm, typ, soff, size, lnk, info, align, ent) in enumerate(sections):
        if is64:
            sh = struct.pack(
                e + "IIQQQQIIQQ",
                nm,
                typ,
                2 if typ not in (0, 3) or i == 1 else 0,
                soff if i else 0,
                soff,
                size,
                lnk,
                info,
                align,
                ent,
            )
        else:
            sh = struct.pack(
                e + "IIIIIIIIII",
                nm,
                typ,
                2 if typ not in (0, 3) or i == 1 else 0,
                soff if i else 0,
                soff,
                size,
                lnk,
                info,
                align,
                ent,
            )
        out[sh_off + i * shentsize : sh_off + (i + 1) * shentsize] = sh
    out[shstr_off : shstr_off + len(shstr)] = shstr
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1 if little else 2, 1, 0]) + b"\0" * 8
    if is64:
        hdr = struct.pack(
            e + "HHIQQQIHHHHHH",
            e_type,
            machine,
            1,
            0,
            ehsize,
            sh_off,
            0,
            ehsize,
            phentsize,
            2,
            shentsize,
            len(sections),
            shstr_index,
        )
        ph_load = struct.pack(e + "IIQQQQQQ", 1, 5, 0, 0, 0, load_end, load_end, 0x1000)
        ph_dyn = struct.pack(e + "IIQQQQQQ", 2, 6, dyn_off, dyn_off, dyn_off, dynent * len(dyn), dynent * len(dyn), 8)
    else:
        hdr = struct.pack(
            e + "HHIIIIIHHHHHH",
            e_type,
            machine,
            1,
            0,
            ehsize,
            sh_off,
            0,
            ehsize,
            phentsize,
            2,
            shentsize,
            len(sections),
            shstr_index,
        )
        ph_load = struct.pack(e + "IIIIIIII", 1, 0, 0, 0, load_end, load_end, 5, 0x1000)
        ph_dyn = struct.pack(e + "IIIIIIII", 2, dyn_off, dyn_off, dyn_off, dynent * len(dyn), dynent * len(dyn), 6, 4)
    out[0:16] = ident
    out[16:ehsize] = hdr
    out[ehsize : ehsize + phentsize] = ph_load
    out[ehsize + phentsize : ehsize + 2 * phentsize] = ph_dyn
    out[str_off : str_off + len(strtab)] = strtab
    out[vn_off : vn_off + len(verneed)] = verneed
    out[vd_off : vd_off + len(verdef)] = verdef
    for i, (tag, val) in enumerate(dyn):
        out[dyn_off + i * dynent : dyn_off + (i + 1) * dynent] = struct.pack(e + ("qQ" if is64 else "iI"), tag, val)
    return bytes(out)


def write_so(path: os.PathLike, soname: Optional[str] = "", **kw) -> str:
    """Write a shared object at `path`; its SONAME defaults to the file name ('' ), None for none."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(build_so(os.path.basename(path) if soname == "" else soname, **kw))
    return path


def link(path: os.PathLike, target: str) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)
    return path


# -- gcc ------------------------------------------------------------------------------------------------

GCC = shutil.which("gcc")
GXX = shutil.which("g++")
# conftest.py turns these into failures under CI=true (a runner without a compiler must not pass silently).
needs_gcc = pytest.mark.needs_tool("gcc")
needs_gxx = pytest.mark.needs_tool("g++")


def gcc_so(
    out: os.PathLike,
    source: str,
    soname: Optional[str] = None,
    flags: Iterable[str] = (),
    cxx: bool = False,
    version_script: Optional[str] = None,
) -> str:
    """Compile `source` (C, or C++ with cxx=True) into a shared object at `out`."""
    out = os.fspath(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    src = out + (".cc" if cxx else ".c")
    with open(src, "w") as fh:
        fh.write(source)
    cmd = [GXX if cxx else GCC, "-shared", "-fPIC", "-o", out, src]
    if soname:
        cmd.append(f"-Wl,-soname,{soname}")
    if version_script is not None:
        vs = out + ".map"
        with open(vs, "w") as fh:
            fh.write(version_script)
        cmd.append(f"-Wl,--version-script,{vs}")
    cmd += list(flags)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        from conftest import missing_tool

        missing_tool(f"compiler failed: {proc.stderr.strip()[:300]}")
    os.unlink(src)
    return out


def ldconfig() -> Optional[str]:
    for c in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        p = shutil.which(c)
        if p:
            return p
    return None


def make_cache(root: str, dirs: Sequence[str], fmt: str, cache: str = "/etc/ld.so.cache") -> tuple[bool, str]:
    """Run the real ldconfig on `root` (-r) for `dirs` in format `fmt`; (ok, stderr)."""
    exe = ldconfig()
    if exe is None:
        return False, "no ldconfig"
    conf = "/etc/ld.so.conf.test"
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    with open(os.path.join(root, conf.lstrip("/")), "w") as fh:
        fh.write("\n".join(dirs) + "\n")
    proc = subprocess.run([exe, "-X", "-c", fmt, "-r", root, "-C", cache, "-f", conf], capture_output=True, text=True)
    return proc.returncode == 0 and os.path.exists(os.path.join(root, cache.lstrip("/"))), proc.stderr
