"""probes/ldcache.py: /etc/ld.so.cache in the old, new and compat formats; ld.so.conf with includes."""

import os
import struct

import pytest
from elf_fixtures import ldconfig, link, make_cache, write_so

from tfcompat.probes.native.ldcache import (
    EXTENSION_MAGIC,
    LdCacheError,
    arch_flags,
    parse_ld_cache,
    read_ld_cache,
    read_ld_so_conf,
)
from tfcompat.probes.rootfs import Root

X86_64 = 0x0303


# -- bytes from the documented layouts (glibc sysdeps/generic/dl-cache.h, elf/cache.c) ---------------


def _strings(entries, extra=()):
    table = bytearray()
    offsets = {}
    for text in [t for e in entries for t in e[1:3]] + list(extra):
        if text not in offsets:
            offsets[text] = len(table)
            table += text.encode() + b"\0"
    return table, offsets


def old_cache(entries):
    """entries: (flags, soname, path)."""
    table, off = _strings(entries)
    out = bytearray(b"ld.so-1.7.0\0") + struct.pack("<I", len(entries))
    for flags, soname, path in entries:
        out += struct.pack("<iII", flags, off[soname], off[path])
    return bytes(out + table)


def new_cache_body(entries, hwcaps=(), generator="test-generator"):
    """entries: (flags, soname, path, hwcaps_index or None); returns the new-format bytes (base offset 0)."""
    n = len(entries)
    table, off = _strings(entries, hwcaps)
    head = 48 + 24 * n  # strings follow the entries; offsets count from the header
    body = bytearray()
    for flags, soname, path, hw in entries:
        hwcap = ((1 << 62) | hw) if hw is not None else 0
        body += struct.pack("<iIIIQ", flags, head + off[soname], head + off[path], 0, hwcap)
    ext_off = (head + len(table) + 3) & ~3
    ext = bytearray()
    sections = [(0, ext_off + 8 + 16 * (2 if hwcaps else 1) + 4 * len(hwcaps), len(generator))]
    if hwcaps:
        sections.append((1, ext_off + 8 + 16 * 2, 4 * len(hwcaps)))
    ext += struct.pack("<II", EXTENSION_MAGIC, len(sections))
    for tag, o, size in sections:
        ext += struct.pack("<IIII", tag, 0, o, size)
    for h in hwcaps:
        ext += struct.pack("<I", head + off[h])
    ext += generator.encode()
    header = b"glibc-ld.so.cache1.1" + struct.pack("<IIB3xI12x", n, len(table), 2, ext_off)
    out = bytearray(header) + body + table
    out += b"\0" * (ext_off - len(out))
    return bytes(out + ext)


def test_old_format():
    data = old_cache(
        [(X86_64, "libfoo.so.1", "/usr/lib/libfoo.so.1"), (0x0003, "libfoo.so.1", "/usr/lib32/libfoo.so.1")]
    )
    c = parse_ld_cache(data)
    assert c.format == "old" and c.generator is None
    assert c.lookup("libfoo.so.1", X86_64).path == "/usr/lib/libfoo.so.1"
    assert c.lookup("libfoo.so.1", 0x0003).path == "/usr/lib32/libfoo.so.1"
    assert c.lookup("libbar.so.1", X86_64) is None


def test_new_format_with_hwcaps():
    data = new_cache_body(
        [
            (X86_64, "libfoo.so.1", "/usr/lib/glibc-hwcaps/x86-64-v3/libfoo.so.1", 1),
            (X86_64, "libfoo.so.1", "/usr/lib/glibc-hwcaps/x86-64-v2/libfoo.so.1", 0),
            (X86_64, "libfoo.so.1", "/usr/lib/libfoo.so.1", None),
        ],
        hwcaps=("x86-64-v2", "x86-64-v3"),
    )
    c = parse_ld_cache(data)
    assert c.format == "new" and c.generator == "test-generator"
    assert [e.hwcaps for e in c.entries] == ["x86-64-v3", "x86-64-v2", None]
    assert c.lookup("libfoo.so.1", X86_64, ("x86-64-v4", "x86-64-v3", "x86-64-v2")).hwcaps == "x86-64-v3"
    assert c.lookup("libfoo.so.1", X86_64, ("x86-64-v2",)).hwcaps == "x86-64-v2"
    assert c.lookup("libfoo.so.1", X86_64, ()).path == "/usr/lib/libfoo.so.1"
    assert c.lookup("libfoo.so.1", 0x0A03) is None  # aarch64 flags


def test_compat_format_uses_the_new_part():
    new = new_cache_body([(X86_64, "libnew.so.1", "/new/libnew.so.1", None)])
    old_entries = [(X86_64, "libold.so.1", "/old/libold.so.1"), (X86_64, "libold.so.1", "/old/libold.so.1")]
    head = bytearray(b"ld.so-1.7.0\0") + struct.pack("<I", 2)
    for flags, _s, _p in old_entries:
        head += struct.pack("<iII", flags, 0, 0)  # (old string offsets unused here)
    assert len(head) % 8 == 0
    c = parse_ld_cache(bytes(head) + new)
    assert c.format == "compat"
    assert [e.soname for e in c.entries] == ["libnew.so.1"]


@pytest.mark.parametrize(
    "data,match",
    [
        (b"garbage", "not an ld.so.cache"),
        (b"ld.so-1.7.0\0\xff\xff\xff\x00", "do not fit"),
        (b"glibc-ld.so.cache1.1" + b"\0" * 10, "truncated"),
        (b"glibc-ld.so.cache1.1" + struct.pack("<IIB3xI12x", 1000, 0, 2, 0), "do not fit"),
        (b"glibc-ld.so.cache1.1" + struct.pack("<IIB3xI12x", 0, 0, 1, 0), "invalid"),
    ],
)
def test_corrupt_caches(data, match):
    with pytest.raises(LdCacheError, match=match):
        parse_ld_cache(data)


def test_string_offset_outside_the_file():
    data = bytearray(new_cache_body([(X86_64, "libfoo.so.1", "/usr/lib/libfoo.so.1", None)]))
    struct.pack_into("<I", data, 48 + 4, 10_000)  # key offset
    with pytest.raises(LdCacheError, match="outside"):
        parse_ld_cache(bytes(data))


def test_read_from_root(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "ld.so.cache").write_bytes(old_cache([(X86_64, "libz.so.1", "/lib/libz.so.1")]))
    c = read_ld_cache(Root(str(tmp_path)))
    assert c.path == "/etc/ld.so.cache" and c.entries[0].path == "/lib/libz.so.1"
    assert read_ld_cache(Root(str(tmp_path / "nothing"))) is None


def test_arch_flags():
    assert arch_flags("x86_64", 64) == 0x0303
    assert arch_flags("aarch64", 64) == 0x0A03
    assert arch_flags("i386", 32) == 0x0003
    assert arch_flags("mips", 64) is None


# -- real ldconfig output, all three formats --------------------------------------------------------


@pytest.mark.skipif(ldconfig() is None, reason="ldconfig is not installed")
@pytest.mark.parametrize("fmt", ["old", "new", "compat"])
def test_real_ldconfig_caches(tmp_path, fmt):
    root = str(tmp_path)
    write_so(tmp_path / "usr/lib/libfoo.so.1", needed=("libc.so.6",))
    write_so(tmp_path / "usr/lib/glibc-hwcaps/x86-64-v3/libfoo.so.1", needed=("libc.so.6",))
    write_so(tmp_path / "opt/cuda/lib64/libcudart.so.12", needed=("libc.so.6",))
    write_so(tmp_path / "opt/lib32/libbar.so.2", elf_class=32, machine=3, needed=("libc.so.6",))
    ok, err = make_cache(root, ["/usr/lib", "/opt/cuda/lib64", "/opt/lib32"], fmt)
    if not ok:
        pytest.skip(f"ldconfig -c {fmt} failed here: {err.strip()[:200]}")
    c = read_ld_cache(Root(root))
    assert c.format == fmt
    sonames = {(e.soname, e.path, e.flags) for e in c.entries}
    assert ("libcudart.so.12", "/opt/cuda/lib64/libcudart.so.12", X86_64) in sonames
    assert ("libbar.so.2", "/opt/lib32/libbar.so.2", 0x0003) in sonames
    assert c.lookup("libbar.so.2", X86_64) is None  # a 32-bit entry never serves a 64-bit process
    plain = c.lookup("libfoo.so.1", X86_64, ())
    assert plain is not None
    if fmt != "old":
        assert plain.path == "/usr/lib/libfoo.so.1"
        assert (
            c.lookup("libfoo.so.1", X86_64, ("x86-64-v3", "x86-64-v2")).path
            == "/usr/lib/glibc-hwcaps/x86-64-v3/libfoo.so.1"
        )
        assert c.generator and "ldconfig" in c.generator


@pytest.mark.skipif(ldconfig() is None, reason="ldconfig is not installed")
def test_our_new_format_bytes_match_ldconfig(tmp_path):
    """The test's byte builder (used above) follows the same layout as the real ldconfig."""
    write_so(tmp_path / "usr/lib/libfoo.so.1", needed=("libc.so.6",))
    ok, err = make_cache(str(tmp_path), ["/usr/lib"], "new")
    if not ok:
        pytest.skip(err)
    real = (tmp_path / "etc/ld.so.cache").read_bytes()
    ours = new_cache_body([(X86_64, "libfoo.so.1", "/usr/lib/libfoo.so.1", None)])
    assert real[:24] == ours[:24]  # magic, version, nlibs
    assert real[28] == ours[28]  # endianness flag
    # same entry layout: flags, then key/value string offsets counted from the header
    flags, key, value, _osv, _hwcap = struct.unpack_from("<iIIIQ", real, 48)
    assert flags == X86_64 and real[key : real.index(b"\0", key)] == b"libfoo.so.1"
    assert real[value : real.index(b"\0", value)] == b"/usr/lib/libfoo.so.1"
    assert parse_ld_cache(real).entries == parse_ld_cache(ours).entries


# -- ld.so.conf ------------------------------------------------------------------------------------------


def test_ld_so_conf_includes_inside_root(tmp_path):
    root = tmp_path / "img"
    (root / "etc/ld.so.conf.d").mkdir(parents=True)
    (root / "etc/ld.so.conf").write_text(
        "# comment\n/usr/local/lib\ninclude /etc/ld.so.conf.d/*.conf\ninclude rel.d/*.conf\nhwcap 0 nosegneg\n"
        "/opt/a:/opt/b,/opt/c\t/opt/d=libc6\n"
    )
    (root / "etc/ld.so.conf.d/cuda.conf").write_text("/usr/local/cuda/lib64\n/usr/local/cuda/lib64\n")
    (root / "etc/ld.so.conf.d/a.conf").write_text("/first  # trailing comment\n")
    (root / "etc/ld.so.conf.d/ignored.txt").write_text("/never\n")
    (root / "etc/rel.d").mkdir()
    (root / "etc/rel.d/x.conf").write_text("/relative/include\n")
    # An include directory that is an absolute symlink: resolved inside the root, not on the host.
    (root / "etc/more").mkdir()
    (root / "etc/more/evil.conf").write_text("/from/the/image\n")
    link(root / "etc/linked.d", "/etc/more")
    (root / "etc/ld.so.conf").write_text((root / "etc/ld.so.conf").read_text() + "include /etc/linked.d/*.conf\n")
    dirs = read_ld_so_conf(Root(str(root)))
    assert dirs == [
        "/usr/local/lib",
        "/first",
        "/usr/local/cuda/lib64",
        "/relative/include",
        "/opt/a",
        "/opt/b",
        "/opt/c",
        "/opt/d",
        "/from/the/image",
    ]


def test_ld_so_conf_include_loop_and_missing(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/ld.so.conf").write_text("include /etc/ld.so.conf\n/x\ninclude /etc/none/*.conf\n")
    assert read_ld_so_conf(Root(str(tmp_path))) == ["/x"]
    assert read_ld_so_conf(Root(str(tmp_path / "nothing"))) == []


def test_ld_so_conf_host_symlink_escape(tmp_path):
    """A conf file that is an absolute symlink to a host path is read inside the root instead."""
    root = tmp_path / "img"
    (root / "etc").mkdir(parents=True)
    host_conf = tmp_path / "hostconf"
    host_conf.write_text("/host/only\n")
    os.symlink(str(host_conf), root / "etc/ld.so.conf")
    assert read_ld_so_conf(Root(str(root))) == []  # /tmp/.../hostconf does not exist inside the root
    inside = root / str(host_conf).lstrip("/")
    inside.parent.mkdir(parents=True)
    inside.write_text("/image/copy\n")
    assert read_ld_so_conf(Root(str(root))) == ["/image/copy"]
