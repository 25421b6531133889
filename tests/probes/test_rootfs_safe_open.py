"""Root.read_bytes / read_text / listdir / stat: the one safe way to open files (#17 items 2, 3, 5).

Everything is resolved inside the root with an openat() walk, only regular files are opened (a FIFO
or a device is refused before it is opened, so nothing blocks), and each kind of file has a size cap.
"""

import os
import threading

import pytest
from probe_helpers import symlink, write

from tfcompat.probes.rootfs import CAPS, Root, UnsafeFile


@pytest.fixture
def img(tmp_path):
    root = tmp_path / "img"
    write(root / "etc/os-release", 'NAME="Image"\n')
    write(tmp_path / "host-secret", "host secret\n")
    return root


def _quick(fn, *args, **kw):
    """Run fn in a thread and fail (instead of hanging the suite) if it blocks."""
    out = {}

    def run():
        try:
            out["value"] = fn(*args, **kw)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), f"{fn.__name__} blocked"
    if "error" in out:
        raise out["error"]
    return out.get("value")


@pytest.mark.parametrize("host", [False, True])
def test_fifo_is_refused_without_blocking(img, host):
    os.mkfifo(img / "etc/fifo")
    r = Root(None) if host else Root(str(img))
    path = str(img / "etc/fifo") if host else "/etc/fifo"
    with pytest.raises(UnsafeFile, match="not a regular file \\(a FIFO\\)"):
        _quick(r.read_bytes, path, "os_release")
    with pytest.raises(UnsafeFile):
        _quick(r.read_text, path)
    assert not _quick(r.is_file, path)


def test_fifo_behind_a_link_is_refused(img):
    os.mkfifo(img / "etc/fifo")
    symlink(img / "etc/os-release2", "fifo")
    with pytest.raises(UnsafeFile, match="FIFO"):
        _quick(Root(str(img)).read_bytes, "/etc/os-release2", "os_release")


def test_character_device_on_the_host_is_refused():
    with pytest.raises(UnsafeFile, match="character device"):
        _quick(Root(None).read_bytes, "/dev/zero", "metadata")


def test_link_to_dev_zero_in_an_image_stays_in_the_image(img):
    symlink(img / "METADATA", "/dev/zero")
    with pytest.raises(FileNotFoundError):
        Root(str(img)).read_bytes("/METADATA", "metadata")
    os.makedirs(img / "dev")
    write(img / "dev/zero", "image's own file")
    assert Root(str(img)).read_bytes("/METADATA", "metadata") == b"image's own file"


def test_directory_is_refused(img):
    with pytest.raises(UnsafeFile, match="a directory"):
        Root(str(img)).read_bytes("/etc", "text")
    with pytest.raises(UnsafeFile, match="a directory"):
        Root(str(img)).read_bytes("/", "text")


def test_size_cap_refuses_or_truncates(img):
    write(img / "big", "x" * (CAPS["wheel"] + 10))
    r = Root(str(img))
    with pytest.raises(UnsafeFile, match="larger than the 64 KiB read for a wheel file"):
        r.read_bytes("/big", "wheel")
    assert len(r.read_bytes("/big", "wheel", truncate=True)) == CAPS["wheel"]
    assert len(r.read_text("/big", limit=100)) == 100
    assert len(r.read_text("/big", kind="wheel")) == CAPS["wheel"]


@pytest.mark.parametrize("link", ["{host}", "../../../../../../../../{host}", "/../..{host}"])
def test_links_to_the_host_are_resolved_inside(img, tmp_path, link):
    host = str(tmp_path / "host-secret")
    symlink(img / "etc/escape", link.format(host=host))
    r = Root(str(img))
    with pytest.raises(FileNotFoundError):
        r.read_bytes("/etc/escape", "text")
    assert not r.is_file("/etc/escape")


def test_dotdot_in_the_path_stays_inside(img):
    r = Root(str(img))
    assert r.read_bytes("/../../../../etc/os-release", "os_release") == b'NAME="Image"\n'
    assert r.read_bytes("/etc/../../etc/./os-release", "os_release") == b'NAME="Image"\n'


def test_listdir_through_a_link_lists_inside(img, tmp_path):
    os.makedirs(tmp_path / "hostdir")
    write(tmp_path / "hostdir/host.dist-info/METADATA", "Name: host\n")
    write(img / "srv/site/a.dist-info/METADATA", "Name: a\n")
    symlink(img / "site", "/srv/site")
    symlink(img / "srv/site/b.dist-info", str(tmp_path / "hostdir/host.dist-info"))
    r = Root(str(img))
    assert sorted(r.listdir("/site")) == ["a.dist-info", "b.dist-info"]
    assert r.is_dir("/site/a.dist-info")
    assert not r.is_dir("/site/b.dist-info")  # the entry's link is resolved inside the root: nothing there
    with pytest.raises(FileNotFoundError):
        r.read_bytes("/site/b.dist-info/METADATA", "metadata")
    symlink(img / "hostlink", str(tmp_path / "hostdir"))
    with pytest.raises(FileNotFoundError):
        r.listdir("/hostlink")


def test_symlink_loop_in_walk(img):
    symlink(img / "a", "/b")
    symlink(img / "b", "a")
    with pytest.raises(OSError, match="too many levels"):
        Root(str(img)).read_bytes("/a/x", "text")


def test_file_as_directory_component(img):
    with pytest.raises(NotADirectoryError):
        Root(str(img)).read_bytes("/etc/os-release/x", "text")


def test_inside_maps_real_paths_back(img, tmp_path):
    r = Root(str(img))
    assert r.inside(f"{img}/etc/os-release") == "/etc/os-release"
    with pytest.raises(UnsafeFile, match="outside"):
        r.inside(str(tmp_path / "host-secret"))
    assert Root(None).inside("/etc/x") == "/etc/x"


def test_open_binary_is_a_regular_file_handle(img):
    with Root(str(img)).open_binary("/etc/os-release") as fh:
        assert fh.read() == b'NAME="Image"\n'
    with pytest.raises(UnsafeFile):
        Root(None).open_binary("/dev/null")
