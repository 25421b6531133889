"""probes/elf.py: the struct-over-mmap ELF reader, checked against pyelftools and gcc's output."""

import os
import shutil
import subprocess

import pytest
from elf_fixtures import (
    EM_AARCH64,
    EM_X86_64,
    build_so,
    gcc_so,
    needs_gcc,
    needs_gxx,
    write_so,
)
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection

from tfcompat.probes.native import elf
from tfcompat.probes.native.elf import (
    ElfError,
    ElfFile,
    SymbolName,
    clear_cache,
    gnu_hash,
    read_elf,
    sysv_hash,
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def pyelftools_view(path):
    """The same facts, read by pyelftools (slow, eager: fine for tiny files)."""
    with open(path, "rb") as fh:
        f = ELFFile(fh)
        out = {
            "class": f.elfclass,
            "machine": f["e_machine"],
            "needed": [],
            "soname": None,
            "rpath": None,
            "runpath": None,
            "verneed": {},
            "verdef": [],
        }
        for sec in f.iter_sections():
            if isinstance(sec, DynamicSection):
                for tag in sec.iter_tags():
                    if tag.entry.d_tag == "DT_NEEDED":
                        out["needed"].append(tag.needed)
                    elif tag.entry.d_tag == "DT_SONAME":
                        out["soname"] = tag.soname
                    elif tag.entry.d_tag == "DT_RPATH":
                        out["rpath"] = tuple(tag.rpath.split(":"))
                    elif tag.entry.d_tag == "DT_RUNPATH":
                        out["runpath"] = tuple(tag.runpath.split(":"))
            elif isinstance(sec, GNUVerNeedSection):
                for verneed, aux in sec.iter_versions():
                    out["verneed"][verneed.name] = [a.name for a in aux]
            elif isinstance(sec, GNUVerDefSection):
                for verdef, aux in sec.iter_versions():
                    if not verdef["vd_flags"] & 1:
                        out["verdef"].append(next(iter(aux)).name)
        return out


def assert_same_as_pyelftools(path):
    mine = read_elf(path)
    ref = pyelftools_view(path)
    assert mine.elf_class == ref["class"]
    assert list(mine.needed) == ref["needed"]
    assert mine.soname == ref["soname"]
    assert mine.rpath == ref["rpath"]
    assert mine.runpath == ref["runpath"]
    assert {v.file: list(v.versions) for v in mine.version_needs} == ref["verneed"]
    assert list(mine.version_defs) == ref["verdef"]
    return mine


# -- the tiny writer's files (no toolchain) ------------------------------------------------------------


@pytest.mark.parametrize("elf_class,little,machine", [(64, True, EM_X86_64), (32, True, 3), (64, False, EM_AARCH64)])
def test_written_so_reads_like_pyelftools(tmp_path, elf_class, little, machine):
    path = write_so(
        tmp_path / "libfoo.so.1",
        needed=("libc.so.6", "libstdc++.so.6"),
        runpath="$ORIGIN/../lib:/opt/x",
        elf_class=elf_class,
        little=little,
        machine=machine,
        version_needs={"libc.so.6": ("GLIBC_2.17", "GLIBC_2.27"), "libstdc++.so.6": ("GLIBCXX_3.4.22",)},
        version_defs=("FOO_1.0", "FOO_2.0"),
    )
    info = assert_same_as_pyelftools(path)
    assert info.elf_class == elf_class and info.little_endian is little and info.machine == machine
    assert info.soname == "libfoo.so.1"
    assert info.runpath == ("$ORIGIN/../lib", "/opt/x") and info.rpath is None
    assert info.needs_from("libc.so.6") == ("GLIBC_2.17", "GLIBC_2.27")
    assert info.version_defs == ("FOO_1.0", "FOO_2.0")


def test_rpath_and_empty_runpath(tmp_path):
    info = read_elf(write_so(tmp_path / "a.so", rpath="/r1::/r2", runpath=""))
    assert info.rpath == ("/r1", "", "/r2")  # an empty element is the working directory, kept
    assert info.runpath == ()  # present but empty: it still disables DT_RPATH


def test_not_elf_and_truncated(tmp_path):
    (tmp_path / "script.so").write_text("/* GNU ld script */ INPUT(libfoo.so.1)\n")
    with pytest.raises(ElfError, match="not an ELF file"):
        read_elf(str(tmp_path / "script.so"))
    data = build_so("libt.so.1", needed=("libc.so.6",))
    (tmp_path / "trunc.so").write_bytes(data[:100])
    with pytest.raises(ElfError, match=r"truncated|outside|not in any"):
        read_elf(str(tmp_path / "trunc.so"))
    (tmp_path / "tiny").write_bytes(b"\x7fELF")
    with pytest.raises(ElfError, match="too short"):
        read_elf(str(tmp_path / "tiny"))
    with pytest.raises(ElfError):
        read_elf(str(tmp_path / "missing.so"))


def test_cache_follows_file_changes(tmp_path):
    path = write_so(tmp_path / "libc1.so.1", needed=("liba.so.1",))
    first = read_elf(path)
    assert read_elf(path) is first  # cached
    os.unlink(path)
    write_so(tmp_path / "libc1.so.1", needed=("liba.so.1", "libb.so.1"))
    assert read_elf(path).needed == ("liba.so.1", "libb.so.1")  # new inode/size: re-read


def test_hash_functions():
    # Reference values from the ELF gABI (SysV) and the GNU hash definition (dl_new_hash).
    assert sysv_hash(b"") == 0 and gnu_hash(b"") == 5381
    assert sysv_hash(b"printf") == 0x077905A6
    assert gnu_hash(b"printf") == 0x156B2BB8


# -- gcc-built files -----------------------------------------------------------------------------------

LIB_SRC = """
int foo_v1(void) { return 1; }
int foo_v2(void) { return 2; }
__asm__(".symver foo_v1,foo@FOO_1.0");
__asm__(".symver foo_v2,foo@@FOO_2.0");
int visible(void) { return 3; }
static int hidden_static(void) { return 4; }
int uses(void) { return hidden_static(); }
"""
VERSION_SCRIPT = "FOO_1.0 { global: visible; uses; foo; local: *; };\nFOO_2.0 { global: foo; } FOO_1.0;\n"


@needs_gcc
@pytest.mark.parametrize("hash_style", ["gnu", "sysv", "both"])
def test_gcc_library_and_symbol_lookup(tmp_path, hash_style):
    path = gcc_so(
        tmp_path / "libfoo.so.1",
        LIB_SRC,
        soname="libfoo.so.1",
        version_script=VERSION_SCRIPT,
        flags=[f"-Wl,--hash-style={hash_style}", "-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags"],
    )
    info = assert_same_as_pyelftools(path)
    assert info.soname == "libfoo.so.1"
    assert info.runpath == ("$ORIGIN/../lib",) and info.rpath is None
    assert info.has_gnu_hash == (hash_style in ("gnu", "both"))
    assert info.has_sysv_hash == (hash_style in ("sysv", "both"))
    assert set(info.version_defs) == {"FOO_1.0", "FOO_2.0"}
    with ElfFile(path) as f:
        foo = {(s.version, s.hidden) for s in f.lookup("foo")}
        assert foo == {("FOO_1.0", True), ("FOO_2.0", False)}
        (v,) = f.lookup("visible")
        assert v.defined and v.type == "FUNC" and v.version == "FOO_1.0"
        assert f.lookup("hidden_static") == () and f.lookup("nope") == ()
        names = {s.name for s in f.dynamic_symbols()}
        assert {"foo", "visible", "uses"} <= names and "hidden_static" not in names
        assert f.symbol_count() == len(list(f.dynamic_symbols())) + 1


@needs_gcc
def test_gcc_rpath_vs_runpath(tmp_path):
    old = read_elf(
        gcc_so(tmp_path / "libold.so", "int x;", flags=["-Wl,-rpath,/opt/a:/opt/b", "-Wl,--disable-new-dtags"])
    )
    new = read_elf(gcc_so(tmp_path / "libnew.so", "int x;", flags=["-Wl,-rpath,/opt/a", "-Wl,--enable-new-dtags"]))
    assert old.rpath == ("/opt/a", "/opt/b") and old.runpath is None
    assert new.runpath == ("/opt/a",) and new.rpath is None


@needs_gxx
def test_gxx_needs_glibcxx_versions(tmp_path):
    src = (
        '#include <string>\n#include <stdexcept>\nstd::string f(int n) { if (n < 0) throw std::runtime_error("x"); '
        "return std::to_string(n); }\n"
    )
    path = gcc_so(tmp_path / "libcxx.so", src, cxx=True)
    info = assert_same_as_pyelftools(path)
    assert "libstdc++.so.6" in info.needed
    assert any(v.startswith("GLIBCXX_3.4") for v in info.needs_from("libstdc++.so.6"))
    with ElfFile(path) as f:
        (sym,) = f.lookup("_Z1fB5cxx11i")
        assert sym.defined
        # undefined references are not in the hash table: the linear walk (fine for small objects) finds them
        (ref,) = [s for s in f.dynamic_symbols() if s.name == "_ZNSt13runtime_errorC1EPKc"]
        assert not ref.defined and ref.version.startswith("GLIBCXX_")


def test_system_libc_and_libstdcxx_agree_with_pyelftools():
    for path in (
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib64/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    ):
        if os.path.exists(path):
            info = assert_same_as_pyelftools(os.path.realpath(path))
            assert info.version_defs
            return
    pytest.skip("no glibc found in the usual places")


def test_defines_helper(tmp_path):
    path = write_so(tmp_path / "libno.so")
    assert elf.defines(path, "anything") is False
    assert elf.defines(str(tmp_path / "missing.so"), "x") is False


# -- lookups with names hashed once (custom_ops asks many files the same names) --------------------------


def _defined_by_lookup(f, name, version):
    """The answer custom_ops used to compute from lookup(): the reference for ElfFile.defines()."""
    return any(s.defined and (version is None or s.version is None or s.version == version) for s in f.lookup(name))


def test_symbol_name_hashes_once():
    key = SymbolName("printf")
    assert key.raw == b"printf" and key.gnu == gnu_hash(b"printf") and key.sysv == sysv_hash(b"printf")
    assert SymbolName("caf\udce9").raw == b"caf\xe9"  # surrogateescape, as lookup() encodes


@needs_gcc
@pytest.mark.parametrize("hash_style", ["gnu", "sysv", "both"])
def test_defines_and_undefined_symbols_agree_with_the_reference(tmp_path, hash_style):
    src = LIB_SRC + "extern int ext(void); extern int weak_ext(void) __attribute__((weak));\n"
    src += "int calls(void) { return ext() + (weak_ext ? weak_ext() : 0); }\n"
    path = gcc_so(
        tmp_path / "libfoo.so.1",
        src,
        soname="libfoo.so.1",
        version_script=VERSION_SCRIPT.replace("uses;", "uses; calls;"),
        flags=[f"-Wl,--hash-style={hash_style}"],
    )
    with ElfFile(path) as f:
        syms = list(f.dynamic_symbols())
        names = {s.name for s in syms} | {"nope", "hidden_static", "", "foo@FOO_1.0"}
        for name in sorted(names):
            key = SymbolName(name)
            for version in (None, "FOO_1.0", "FOO_2.0", "GLIBC_2.2.5", "NOPE_9"):
                assert f.defines(key, version) == _defined_by_lookup(f, name, version), (name, version)
            assert f.lookup(key) == f.lookup(name)
        assert f.defines(SymbolName("foo"), "FOO_2.0") and not f.defines(SymbolName("ext"))
        reference = [s for s in syms if not s.defined and s.binding != "WEAK"]
        assert elf.undefined_symbols(f) == reference
        assert "ext" in {s.name for s in reference} and "weak_ext" not in {s.name for s in reference}
        with open(path, "rb") as fh:
            want = {
                (s.name, s.entry["st_info"]["type"])
                for s in ELFFile(fh).get_section_by_name(".dynsym").iter_symbols()
                if s.entry["st_shndx"] == "SHN_UNDEF" and s.name and s.entry["st_info"]["bind"] != "STB_WEAK"
            }
        assert {(s.name, "STT_" + s.type) for s in reference} == want


def test_defines_agrees_with_lookup_on_system_libraries():
    for path in ("/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"):
        if os.path.exists(path):
            break
    else:
        pytest.skip("no libstdc++ found in the usual places")
    with ElfFile(os.path.realpath(path)) as f:
        refs = elf.undefined_symbols(f)
        assert refs == [s for s in f.dynamic_symbols() if not s.defined and s.binding != "WEAK"]
        names = [s.name for s in refs][:200] + ["_ZNSt6thread4joinEv", "_ZSt4cout", "_ZNSs4swapERSs", "nope"]
        for name in names:
            for version in (None, "GLIBCXX_3.4", "GLIBCXX_3.4.21", "GLIBC_2.2.5"):
                assert f.defines(SymbolName(name), version) == _defined_by_lookup(f, name, version)


@needs_gcc
def test_undefined_symbols_of_a_32_bit_object(tmp_path):
    """Elf32_Sym puts st_shndx at another offset: the column read must follow it."""
    src = tmp_path / "m32.c"
    src.write_text(
        "extern int ext(void); extern int w(void) __attribute__((weak));\nint f(void) { return ext() + w(); }\n"
    )
    out = str(tmp_path / "libm32.so")
    proc = subprocess.run(
        [shutil.which("gcc") or "gcc", "-m32", "-shared", "-fPIC", "-nostdlib", "-o", out, str(src)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"gcc -m32 cannot build here: {proc.stderr.strip()[:200]}")
    with ElfFile(out) as f:
        assert f.elf_class == 32
        reference = [s for s in f.dynamic_symbols() if not s.defined and s.binding != "WEAK"]
        assert elf.undefined_symbols(f) == reference and [s.name for s in reference] == ["ext"]
        assert f.defines(SymbolName("f")) and not f.defines(SymbolName("ext"))
