"""OS release, architecture, glibc, kernel and CPU of the target, from files under the root."""

from __future__ import annotations

import mmap
import os
import re
import struct
from typing import List, Optional, Tuple

from tfcompat.model import Platform, Unknown
from tfcompat.probes.native.elf import MACHINES
from tfcompat.probes.rootfs import Root

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
_GLIBC_BANNER = re.compile(rb"GNU C Library [^\n]*?version (\d+\.\d+)")


def _os_release(root: Root) -> Tuple[Optional[str], Optional[str]]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = root.read_text(path)
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
        if os.path.isfile(real):
            return real
    return None


def _elf_machine(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    endian = "<" if head[5] == 1 else ">"
    (machine,) = struct.unpack(endian + "H", head[18:20])
    name = MACHINES.get(machine, f"elf-machine-{machine}")
    return "ppc64le" if name == "ppc64" and endian == "<" else name  # as `uname -m` says it


def glibc_version(libc_path: str) -> Optional[str]:
    """The version in glibc's own banner ("GNU C Library ... release version 2.36.")."""
    try:
        with open(libc_path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            m = _GLIBC_BANNER.search(mm)
            return m.group(1).decode() if m else None
    except (OSError, ValueError):
        return None


def _cpu(root: Root) -> Tuple[Optional[str], Tuple[str, ...]]:
    try:
        text = root.read_text("/proc/cpuinfo", limit=1 << 16)  # the first processor's block is enough
    except OSError:
        return None, ()
    model, flags = None, ()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = tuple(sorted(value.split()))
        if model and flags:
            break
    return model, flags


def probe_platform(root: Root) -> Tuple[Platform, List[Unknown]]:
    unknowns: List[Unknown] = []
    pretty, release_path = _os_release(root)
    if pretty is None:
        unknowns.append(Unknown("platform.os_release", "no /etc/os-release or /usr/lib/os-release"))
    libc = find_libc(root)
    glibc = glibc_version(libc) if libc else None
    arch = _elf_machine(libc) if libc else None
    if root.is_host and arch is None:
        arch = os.uname().machine
    if glibc is None:
        where = "in " + ", ".join(LIB_DIRS)
        reason = f"cannot read the glibc version of {root.display(libc)}" if libc else f"no libc.so.6 {where} (musl or not Linux?)"
        unknowns.append(Unknown("platform.glibc", reason))
    kernel = os.uname().release if root.is_host else None
    model, flags = _cpu(root)
    if not flags:
        unknowns.append(Unknown(
            "platform.cpu_flags",
            "no /proc/cpuinfo" + (" inside --root (an image has no CPU; check the node itself)" if root.root else ""),
        ))
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
