"""Path resolution inside a sysroot (``--root``): every absolute path, symlinks included, stays inside it."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import PurePosixPath
from typing import BinaryIO, Optional

_MAX_LINKS = 40  # same bound as the kernel's ELOOP
_O_PATH = getattr(os, "O_PATH", os.O_RDONLY)  # Linux: a handle that opens nothing (no FIFO/device side effect)
# O_NONBLOCK: a FIFO swapped in after the check cannot block the open; O_NOCTTY: a tty never becomes ours.
_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY

# The most we read of each kind of file. Real files are far smaller (a TF METADATA is ~4 KiB, its RECORD
# ~2 MiB, build_info.py ~2 KiB); the caps only stop /dev/zero-like or crafted files from eating memory.
CAPS: dict[str, int] = {
    "metadata": 256 << 10,  # METADATA / PKG-INFO: the headers are all we parse
    "wheel": 64 << 10,
    "record": 64 << 20,
    "requires": 1 << 20,  # an egg-info's requires.txt
    "build_info": 1 << 20,  # tensorflow/python/platform/build_info.py
    "pyvenv_cfg": 64 << 10,
    "os_release": 64 << 10,
    "proc": 1 << 20,  # /proc and /sys files (cpuinfo, mounts, cgroup, driver version)
    "sysfs": 64 << 10,  # one sysfs attribute (KFD node properties)
    "version": 4 << 10,  # one-line version files (/opt/rocm/.info/version)
    "header": 1 << 20,  # C headers read for a version (cudnn_version.h)
    "ld_so_conf": 1 << 20,
    "ld_cache": 64 << 20,
    "report": 64 << 20,  # a node report or snapshot (JSON)
    "libc": 64 << 20,  # searched for glibc's banner
    "text": 1 << 20,
}


class Root:
    """A filesystem view. ``Root(None)`` is the live system; ``Root('/img')`` an unpacked image."""

    def __init__(self, root: Optional[str] = None):
        self.root = os.path.abspath(root) if root else None

    def __repr__(self) -> str:
        return f"Root({self.root!r})"

    @property
    def is_host(self) -> bool:
        return self.root is None

    def path(self, abspath: str) -> str:
        """The real path of `abspath` (as seen inside the root), symlinks resolved without escaping."""
        if self.root is None:
            return abspath
        inside = self.resolve(abspath)
        base = self.root.rstrip("/")  # --root / must not give //usr/lib
        return self.root if inside == "/" else base + inside

    def resolve(self, abspath: str) -> str:
        """Resolve `abspath` inside the root; returns a path relative to the root, starting with '/'."""
        if self.root is None:
            return os.path.realpath(abspath)
        parts = list(PurePosixPath("/", abspath).parts[1:])
        done: list = []
        links = 0
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if done:
                    done.pop()
                continue  # '..' at the root stays at the root, as in chroot
            candidate = self.root.rstrip("/") + "/" + "/".join(done + [part])
            if os.path.islink(candidate):
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(f"too many levels of symbolic links resolving {abspath} in {self.root}")
                target = os.readlink(candidate)
                if target.startswith("/"):
                    done = []  # absolute link: re-anchor at the root, never the host
                parts = list(PurePosixPath(target).parts) + parts
                if target.startswith("/"):
                    parts = parts[1:]
                continue
            done.append(part)
        return "/" + "/".join(done)

    def display(self, real: str) -> str:
        """How to show a real path to a user: inside-the-root form, with the root named once."""
        if self.root == "/":
            return real
        if self.root and (real == self.root or real.startswith(self.root + "/")):
            return real[len(self.root) :] or "/"
        return real

    def exists(self, abspath: str) -> bool:
        try:
            return os.path.exists(self.path(abspath))
        except OSError:
            return False

    # -- the one safe way to open and list files ------------------------------------------------

    def read_bytes(self, abspath: str, kind: str = "text", *, truncate: bool = False) -> bytes:
        """At most ``CAPS[kind]`` bytes of the regular file `abspath` (a path inside the root).

        Raises :class:`UnsafeFile` (an OSError) for a FIFO, device, socket or directory, or, unless
        `truncate`, for a file larger than its cap; OSError when it does not exist.
        """
        cap = CAPS[kind]
        fd = self._open_regular(abspath)
        try:
            chunks: list[bytes] = []
            got = 0
            while got <= cap:
                chunk = os.read(fd, min(1 << 20, cap + 1 - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        finally:
            os.close(fd)
        data = b"".join(chunks)
        if len(data) > cap:
            if not truncate:
                raise UnsafeFile(f"{abspath}: larger than the {_size(cap)} read for a {kind} file")
            data = data[:cap]
        return data

    def read_text(self, abspath: str, limit: int = 1 << 20, kind: Optional[str] = None) -> str:
        """Text of `abspath` (UTF-8, bad bytes replaced), its first `limit` bytes (or CAPS[kind])."""
        if kind is None:
            fd = self._open_regular(abspath)
            try:
                data = _read_upto(fd, limit)
            finally:
                os.close(fd)
        else:
            data = self.read_bytes(abspath, kind, truncate=True)
        return data.decode("utf-8", "replace")

    def open_binary(self, abspath: str) -> BinaryIO:
        """A binary file object on the regular file `abspath` (for mmap: ELF objects, libc); no size cap."""
        return os.fdopen(self._open_regular(abspath), "rb")

    def listdir(self, abspath: str) -> list[str]:
        """Names in the directory `abspath`, walked inside the root. Open the entries through this Root
        again: a link among them is then resolved inside the root, never followed out of it."""
        fd = self._walk(abspath, os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK)
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    def stat(self, abspath: str) -> os.stat_result:
        """stat() of `abspath` resolved inside the root (links followed inside it; nothing is opened)."""
        fd = self._walk(abspath, _O_PATH)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def is_dir(self, abspath: str) -> bool:
        try:
            return stat.S_ISDIR(self.stat(abspath).st_mode)
        except (OSError, ValueError):
            return False

    def is_file(self, abspath: str) -> bool:
        try:
            return stat.S_ISREG(self.stat(abspath).st_mode)
        except (OSError, ValueError):
            return False

    def inside(self, real: str) -> str:
        """The in-root form of a real path that :meth:`path` gave (identity on the host)."""
        if self.root is None:
            return real
        shown = self.display(real)
        if shown == real and real != "/" and self.root != "/":
            raise UnsafeFile(f"{real}: outside --root {self.root}")
        return shown

    def _open_regular(self, abspath: str) -> int:
        """An fd on `abspath`, only if it is a regular file; a FIFO or device is never opened."""
        if "\0" in abspath:
            raise UnsafeFile(f"{abspath!r}: NUL in path")
        if self.root is None:
            _check_regular(abspath, os.stat(abspath).st_mode)
            fd = os.open(abspath, _READ)
        else:
            fd = self._walk(abspath, _READ, check=True)
        try:
            st = os.fstat(fd)
            _check_regular(abspath, st.st_mode)  # re-checked on the open file: no swap in between
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _walk(self, abspath: str, flags: int, check: bool = False) -> int:
        """An fd on `abspath` opened with `flags`, every component resolved inside the root with
        openat() and O_NOFOLLOW: '..' stops at the root, absolute links re-anchor at it, and a link
        swapped in behind our back makes the open fail (ELOOP) instead of leaving the root."""
        if self.root is None:
            return os.open(abspath, flags | os.O_CLOEXEC)
        parts = _split(abspath)
        stack = [os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
        links = 0
        try:
            while parts:
                part = parts.pop(0)
                if part == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue  # '..' at the root stays at the root, as in chroot
                st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > _MAX_LINKS:
                        raise OSError(
                            errno.ELOOP, f"too many levels of symbolic links resolving {abspath} in {self.root}"
                        )
                    target = os.readlink(part, dir_fd=stack[-1])
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                    parts = _split(target) + parts
                    continue
                if parts:
                    if not stat.S_ISDIR(st.st_mode):
                        raise OSError(errno.ENOTDIR, f"{abspath}: not a directory")
                    stack.append(
                        os.open(part, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
                    )
                    continue
                if check:
                    _check_regular(abspath, st.st_mode)  # before opening: a device is never opened
                return os.open(part, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
            if check:
                _check_regular(abspath, stat.S_IFDIR)
            return os.open(".", flags | os.O_CLOEXEC, dir_fd=stack[-1])
        finally:
            for fd in stack:
                os.close(fd)


class UnsafeFile(OSError):
    """A file we refuse to read: not a regular file, over its size cap, or outside the root."""


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symbolic link",
}


def _check_regular(path: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise UnsafeFile(f"{path}: not a regular file ({_KINDS.get(stat.S_IFMT(mode), 'special file')})")


def _read_upto(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        chunk = os.read(fd, min(1 << 20, limit - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"
