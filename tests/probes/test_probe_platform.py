"""OS release, arch, glibc and CPU flags from files under a root (and from the live host)."""

import os
import sys

import pytest
from probe_helpers import dedent, make_fake_libc, symlink, write

from tfcompat.probes.platform import find_libc, glibc_version, probe_platform
from tfcompat.probes.rootfs import Root

GLIBC_BANNER = b"GNU C Library (Debian GLIBC 2.36-9) stable release version 2.36."

OS_RELEASE = dedent("""
    PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
    NAME="Debian GNU/Linux"
    VERSION_ID="12"
    VERSION="12 (bookworm)"
    ID=debian
    """)

CPUINFO = dedent("""
    processor	: 0
    vendor_id	: GenuineIntel
    cpu family	: 6
    model		: 143
    model name	: Intel(R) Xeon(R) Platinum 8480+
    flags		: fpu vme sse4_2 avx2 avx512f avx512_bf16 amx_tile fma

    processor	: 1
    vendor_id	: GenuineIntel
    model name	: Some Other CPU
    flags		: fpu
    """)


def facts(unknowns):
    return sorted(u.fact for u in unknowns)


@pytest.fixture
def image(tmp_path):
    root = tmp_path / "img"
    write(root / "etc/os-release", OS_RELEASE)
    # Debian layout, but with absolute links: /lib -> /usr/lib, libc.so.6 -> /usr/lib/.../libc-2.36.so
    libc = make_fake_libc(root / "usr/lib/x86_64-linux-gnu/libc-2.36.so", GLIBC_BANNER)
    symlink(root / "lib", "/usr/lib")
    symlink(root / "usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc-2.36.so")
    write(root / "proc/cpuinfo", CPUINFO)
    return root, libc


def test_probe_platform_in_image(image):
    root, libc = image
    platform, unknowns = probe_platform(Root(str(root)))
    assert unknowns == []
    assert platform.os_release == "Debian GNU/Linux 12 (bookworm)"
    assert platform.os_release_path == str(root / "etc/os-release")
    assert platform.glibc == "2.36"
    assert platform.glibc_source == libc  # the image's file, reached through the links, not the host's
    assert platform.arch == "x86_64"
    assert platform.kernel is None  # an image has no kernel
    assert platform.cpu_model == "Intel(R) Xeon(R) Platinum 8480+"
    assert platform.cpu_flags == ("amx_tile", "avx2", "avx512_bf16", "avx512f", "fma", "fpu", "sse4_2", "vme")


def test_find_libc_resolves_inside_root(image):
    root, libc = image
    found = find_libc(Root(str(root)))
    assert found == libc
    assert found.startswith(str(root) + os.sep)


def test_aarch64_libc_and_os_release_name_fallback(tmp_path):
    root = tmp_path / "img"
    write(root / "usr/lib/os-release", 'NAME="Ubuntu"\nVERSION_ID="22.04"\n')
    make_fake_libc(
        root / "usr/lib/aarch64-linux-gnu/libc.so.6",
        b"GNU C Library (Ubuntu GLIBC 2.35-0ubuntu3.8) stable release version 2.35.",
        e_machine=0xB7,
    )
    write(root / "proc/cpuinfo", "processor\t: 0\nFeatures\t: fp asimd sve\nCPU implementer\t: 0x41\n")
    platform, unknowns = probe_platform(Root(str(root)))
    assert unknowns == []
    assert platform.os_release == "Ubuntu 22.04"
    assert platform.os_release_path == str(root / "usr/lib/os-release")
    assert (platform.arch, platform.glibc) == ("aarch64", "2.35")
    assert platform.cpu_flags == ("asimd", "fp", "sve")


def test_libc_without_banner(tmp_path):
    root = tmp_path / "img"
    make_fake_libc(root / "lib64/libc.so.6", b"musl libc (x86_64)")
    platform, unknowns = probe_platform(Root(str(root)))
    assert platform.glibc is None
    assert platform.arch == "x86_64"
    glibc = [u for u in unknowns if u.fact == "platform.glibc"]
    assert len(glibc) == 1 and glibc[0].reason == "cannot read the glibc version of /lib64/libc.so.6"


def test_empty_libc_file(tmp_path):
    path = write(tmp_path / "libc.so.6", "")
    assert glibc_version(path) is None  # mmap of an empty file must not raise


def test_empty_root_records_unknowns(tmp_path):
    platform, unknowns = probe_platform(Root(str(tmp_path)))
    assert facts(unknowns) == ["platform.cpu_flags", "platform.glibc", "platform.os_release"]
    reasons = {u.fact: u.reason for u in unknowns}
    assert "no libc.so.6 in /lib/x86_64-linux-gnu" in reasons["platform.glibc"]
    assert "inside --root" in reasons["platform.cpu_flags"]
    assert (platform.os_release, platform.glibc, platform.arch, platform.kernel, platform.cpu_flags) == (
        None,
        None,
        None,
        None,
        (),
    )


def test_link_loop_in_lib_dirs_is_not_fatal(tmp_path):
    root = tmp_path / "img"
    symlink(root / "lib", "/lib")
    platform, unknowns = probe_platform(Root(str(root)))
    assert platform.glibc is None
    assert "platform.glibc" in facts(unknowns)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux host only")
def test_live_host():
    platform, unknowns = probe_platform(Root(None))
    assert platform.arch == os.uname().machine
    assert platform.kernel == os.uname().release
    try:
        libc_version = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        libc_version = None
    if not libc_version or not libc_version.startswith("glibc "):
        pytest.skip("not a glibc host (os.confstr('CS_GNU_LIBC_VERSION') unavailable)")
    assert platform.glibc == libc_version.split()[1]
    assert os.path.isfile(platform.glibc_source)
    assert "platform.glibc" not in facts(unknowns)
