"""Root: paths inside a sysroot resolve inside it, whatever the symlinks say."""

import os

import pytest
from probe_helpers import symlink, write

from tfcompat.probes.rootfs import Root


@pytest.fixture
def img(tmp_path):
    root = tmp_path / "img"
    write(root / "usr/lib/x86_64-linux-gnu/libc.so.6", "libc")
    write(root / "etc/os-release", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    return root


def test_plain_path(img):
    r = Root(str(img))
    assert r.resolve("/etc/os-release") == "/etc/os-release"
    assert r.path("/etc/os-release") == f"{img}/etc/os-release"
    assert r.path("/") == str(img)
    assert not r.is_host


def test_absolute_symlink_is_reanchored_in_root(img):
    symlink(img / "lib", "/usr/lib")  # a merged-/usr image with an absolute link
    r = Root(str(img))
    assert r.resolve("/lib/x86_64-linux-gnu/libc.so.6") == "/usr/lib/x86_64-linux-gnu/libc.so.6"
    assert r.path("/lib/x86_64-linux-gnu/libc.so.6") == f"{img}/usr/lib/x86_64-linux-gnu/libc.so.6"
    with open(r.path("/lib/x86_64-linux-gnu/libc.so.6")) as fh:
        assert fh.read() == "libc"


def test_relative_symlink(img):
    symlink(img / "lib", "usr/lib")  # Debian's own form
    symlink(img / "usr/lib/x86_64-linux-gnu/libc-current.so", "./libc.so.6")
    symlink(img / "opt/app/lib", "../../usr/lib/x86_64-linux-gnu")
    r = Root(str(img))
    assert r.resolve("/lib/x86_64-linux-gnu/libc.so.6") == "/usr/lib/x86_64-linux-gnu/libc.so.6"
    assert r.resolve("/usr/lib/x86_64-linux-gnu/libc-current.so") == "/usr/lib/x86_64-linux-gnu/libc.so.6"
    assert r.resolve("/opt/app/lib/libc.so.6") == "/usr/lib/x86_64-linux-gnu/libc.so.6"


def test_dotdot_above_root_stays_in_root(img):
    r = Root(str(img))
    assert r.resolve("/../../../etc/os-release") == "/etc/os-release"
    assert r.resolve("/usr/../../../etc/./os-release") == "/etc/os-release"
    assert r.path("/../..") == str(img)
    # a relative link that climbs above the root stops at the root, as in a chroot
    symlink(img / "usr/escape", "../../../../../../etc/os-release")
    assert r.resolve("/usr/escape") == "/etc/os-release"
    assert r.read_text("/usr/escape").startswith('PRETTY_NAME="Debian')


def test_symlink_loop_raises_oserror(img):
    symlink(img / "a", "/b")
    symlink(img / "b", "a")
    r = Root(str(img))
    with pytest.raises(OSError, match="too many levels of symbolic links"):
        r.resolve("/a/anything")
    assert r.exists("/a") is False  # exists() turns the loop into "no"


def test_self_loop_raises_oserror(img):
    symlink(img / "loop", "loop")
    with pytest.raises(OSError):
        Root(str(img)).path("/loop")


def test_link_to_host_passwd_stays_inside_root(img):
    assert os.path.exists("/etc/passwd")  # the host file the link names
    symlink(img / "etc/passwd-link", "/etc/passwd")
    symlink(img / "hostetc", "/etc")
    r = Root(str(img))
    assert r.path("/etc/passwd-link") == f"{img}/etc/passwd"
    assert r.path("/hostetc/passwd") == f"{img}/etc/passwd"
    # the image has no /etc/passwd: reading through the link must fail, not read the host's
    assert r.exists("/etc/passwd-link") is False
    with pytest.raises(FileNotFoundError):
        r.read_text("/etc/passwd-link")
    write(img / "etc/passwd", "root:x:0:0:image root:/root:/bin/sh\n")
    assert r.read_text("/etc/passwd-link") == "root:x:0:0:image root:/root:/bin/sh\n"


def test_host_root_is_identity():
    r = Root(None)
    assert r.is_host
    assert r.path("/etc/passwd") == "/etc/passwd"
    assert r.display("/etc/passwd") == "/etc/passwd"


def test_display_strips_root(img):
    r = Root(str(img))
    assert r.display(f"{img}/etc/os-release") == "/etc/os-release"
    assert r.display(str(img)) == "/"
    assert r.display(f"{img}-other/etc") == f"{img}-other/etc"


def test_root_slash_gives_plain_paths():
    from tfcompat.probes.rootfs import Root

    r = Root("/")
    assert r.path("/usr/lib") == os.path.realpath("/usr/lib")
    assert not r.path("/usr/lib").startswith("//")
    assert r.display("/usr/lib") == "/usr/lib"
