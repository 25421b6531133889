"""OS release, architecture, glibc, kernel and CPU of the target, from files under the root."""

from __future__ import annotations

import mmap
import os
import re
import stat
import struct
from typing import Optional

from tfcompat.model import Platform, Unknown
from tfcompat.probes.native.elf import MACHINES
from tfcompat.probes.rootfs import CAPS, Root

LIB_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)
_BANNER = b"GNU C Library "
_BANNER_WINDOW = 1024  # real banners put "version X.Y" ~60 bytes after it, on the same line
_VERSION = re.compile(rb"version (\d+\.\d+)")


def _os_release(root: Root) -> tuple[Optional[str], Optional[str]]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = root.read_text(path, kind="os_release")
        except OSError:
            continue
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                fields[key.strip()] = value.strip().strip("\"'")
        name = fields.get("PRETTY_NAME") or " ".join(filter(None, (fields.get("NAME"), fields.get("VERSION_ID"))))
        return (name or None), path
    return None, None


def find_libc(root: Root) -> Optional[str]:
    for d in LIB_DIRS:
        try:
            real = root.path(d + "/libc.so.6")
        except OSError:
            continue
        if root.is_file(d + "/libc.so.6"):
            return real
    return None


def _elf_machine(path: str, root: Optional[Root] = None) -> Optional[str]:
    root = root or Root(None)
    try:
        with root.open_binary(root.inside(path)) as fh:
            head = fh.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    endian = "<" if head[5] == 1 else ">"
    (machine,) = struct.unpack(endian + "H", head[18:20])
    name = MACHINES.get(machine, f"elf-machine-{machine}")
    return "ppc64le" if name == "ppc64" and endian == "<" else name  # as `uname -m` says it


def glibc_version(libc_path: str, root: Optional[Root] = None) -> Optional[str]:
    """The version in glibc's own banner ("GNU C Library ... release version 2.36.")."""
    root = root or Root(None)
    try:
        with root.open_binary(root.inside(libc_path)) as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size > CAPS["libc"] or st.st_size == 0:
                return None
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return find_banner_version(mm)
    except (OSError, ValueError):
        return None


def find_banner_version(data) -> Optional[str]:
    """Linear scan: each "GNU C Library " is looked at once, with a bounded window up to its line's end;
    the next search starts after that window (a regex with a lazy `[^\n]*?` was quadratic on crafted input)."""
    pos = data.find(_BANNER)
    while pos >= 0:
        start = pos + len(_BANNER)
        end = min(start + _BANNER_WINDOW, len(data))
        newline = data.find(b"\n", start, end)
        end = newline if newline >= 0 else end
        m = _VERSION.search(data[start:end])
        if m:
            return m.group(1).decode()
        pos = data.find(_BANNER, max(end, start))
    return None


def _cpu(root: Root) -> tuple[Optional[str], tuple[str, ...]]:
    try:
        text = root.read_text("/proc/cpuinfo", limit=1 << 16)  # the first processor's block is enough
    except OSError:
        return None, ()
    model: Optional[str] = None
    flags: tuple[str, ...] = ()
    for line in text.splitlines():
        key, _sep, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = tuple(sorted(value.split()))
        if model and flags:
            break
    return model, flags


def probe_platform(root: Root) -> tuple[Platform, list[Unknown]]:
    unknowns: list[Unknown] = []
    pretty, release_path = _os_release(root)
    if pretty is None:
        unknowns.append(Unknown("platform.os_release", "no /etc/os-release or /usr/lib/os-release"))
    libc = find_libc(root)
    glibc = glibc_version(libc, root) if libc else None
    arch = _elf_machine(libc, root) if libc else None
    if root.is_host and arch is None:
        arch = os.uname().machine
    if glibc is None:
        where = "in " + ", ".join(LIB_DIRS)
        reason = (
            f"cannot read the glibc version of {root.display(libc)}"
            if libc
            else f"no libc.so.6 {where} (musl or not Linux?)"
        )
        unknowns.append(Unknown("platform.glibc", reason))
    kernel = os.uname().release if root.is_host else None
    model, flags = _cpu(root)
    if not flags:
        unknowns.append(
            Unknown(
                "platform.cpu_flags",
                "no /proc/cpuinfo"
                + (" inside --root (an image has no CPU; check the node itself)" if root.root else ""),
            )
        )
    return (
        Platform(
            os_release=pretty,
            os_release_path=root.path(release_path) if release_path else None,
            arch=arch,
            glibc=glibc,
            glibc_source=libc,
            kernel=kernel,
            cpu_model=model,
            cpu_flags=flags,
        ),
        unknowns,
    )
