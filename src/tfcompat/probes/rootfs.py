"""Path resolution inside a sysroot (``--root``): every absolute path, symlinks included, stays inside it."""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Optional

_MAX_LINKS = 40  # same bound as the kernel's ELOOP


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
            return real[len(self.root):] or "/"
        return real

    def read_text(self, abspath: str, limit: int = 1 << 20) -> str:
        with open(self.path(abspath), "r", encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)

    def exists(self, abspath: str) -> bool:
        try:
            return os.path.exists(self.path(abspath))
        except OSError:
            return False
