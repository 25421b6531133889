"""The loader model of one target: its architecture, ld.so.cache, ld.so.conf, default directories, hwcaps.

Built once per scan (:meth:`LoaderConfig.for_target`) and shared by every probe that asks the loader a
question (libraries, custom ops, the driver libraries). The architecture is what the target's own
binaries say (the ELF header of its python, of its ``/bin/sh``, of its libc.so.6 or ld.so), never this
process's ``uname``: ``--root`` may be an arm64 image checked on an x86-64 machine.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from typing import Optional

from tfcompat.probes.native.elf import ElfError, read_elf
from tfcompat.probes.native.ldcache import (
    LdCache,
    LdCacheError,
    read_ld_cache,
    read_ld_so_conf,
)
from tfcompat.probes.rootfs import Root

# The default ("trusted") directories, by glibc's configured slibdir/libdir. ld.so --help prints them.
_DEFAULT_DIRS = {
    "debian": lambda triplet: (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib"),
    "lib64": lambda triplet: ("/lib64", "/usr/lib64"),
    "lib": lambda triplet: ("/lib", "/usr/lib"),
}
_TRIPLETS = {
    "x86_64": "x86_64-linux-gnu",
    "aarch64": "aarch64-linux-gnu",
    "ppc64": "powerpc64le-linux-gnu",
    "s390x": "s390x-linux-gnu",
    "i386": "i386-linux-gnu",
    "riscv64": "riscv64-linux-gnu",
}

# x86-64 micro-architecture levels (glibc sysdeps/x86/get-isa-level.h) as /proc/cpuinfo flag names.
_X86_V2 = ("cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3")
_X86_V3 = _X86_V2 + ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave")
_X86_V4 = _X86_V3 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")


def glibc_hwcaps(machine: str, cpu_flags: Iterable[str]) -> tuple[str, ...]:
    """Supported glibc-hwcaps subdirectories, most preferred first (what ``ld.so --help`` lists)."""
    flags = set(cpu_flags)
    if machine != "x86_64" or not flags:
        return ()
    levels = []
    for name, need in (("x86-64-v4", _X86_V4), ("x86-64-v3", _X86_V3), ("x86-64-v2", _X86_V2)):
        if all(f in flags for f in need):
            levels.append(name)
    return tuple(levels)


@dataclasses.dataclass(frozen=True)
class TargetArch:
    """The machine and ELF class of the target's processes, and which file said so."""

    machine: str  # as ElfInfo.machine_name: x86_64, aarch64, ppc64, ...
    elf_class: int  # 32 or 64
    source: str


# Binaries of the target's own architecture, most telling first (after its python): an executable every
# image has, then its libc.so.6 (a multiarch i386 libc last), then its dynamic loader.
_ARCH_WITNESSES = (
    ("/bin/sh", "/usr/bin/env")
    + tuple(
        f"{d}/{t}/libc.so.6"
        for t in sorted(_TRIPLETS.values(), key=lambda t: t.startswith("i386"))
        for d in ("/lib", "/usr/lib")
    )
    + ("/lib64/libc.so.6", "/usr/lib64/libc.so.6", "/lib/libc.so.6", "/usr/lib/libc.so.6")
    + (
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/ld-linux-aarch64.so.1",
        "/lib64/ld64.so.2",
        "/lib/ld64.so.1",
        "/lib/ld-linux-riscv64-lp64d.so.1",
        "/lib/ld-linux.so.2",
    )
)


def target_arch(root: Root, executable: Optional[str] = None) -> TargetArch:
    """What the target's binaries say: its python (`executable`, an inside-root path), else its /bin/sh,
    libc.so.6 or ld.so. Only a target without any readable one falls back: to this machine's on the
    host, to x86-64 under --root."""
    for path in ((executable,) if executable else ()) + _ARCH_WITNESSES:
        try:
            real = root.path(path) if not root.is_host else os.path.realpath(path)
            info = read_elf(real)
        except (OSError, ElfError):
            continue
        return TargetArch(info.machine_name, info.elf_class, f"ELF header of {path}")
    if root.is_host:
        return TargetArch(os.uname().machine, 64, "assumed: this machine (no readable python, /bin/sh or libc)")
    return TargetArch("x86_64", 64, "assumed: x86-64 (no readable python, /bin/sh or libc inside --root)")


@dataclasses.dataclass(frozen=True)
class LoaderConfig:
    """The modelled loader's setup for the target: its arch, LD_LIBRARY_PATH, preloads, default dirs, ld.so.cache."""

    root: Root
    machine: str = "x86_64"
    elf_class: int = 64
    ld_library_path: tuple[str, ...] = ()  # elements, in order; '' is the working directory
    ld_preload: tuple[str, ...] = ()
    preload_file: tuple[str, ...] = ()  # entries of /etc/ld.so.preload
    executable: Optional[str] = None  # inside-root path of the main program
    default_dirs: tuple[str, ...] = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")
    default_dirs_source: str = ""
    lib_token: str = "lib/x86_64-linux-gnu"  # what $LIB expands to
    platform_token: str = "x86_64"  # what $PLATFORM expands to (AT_PLATFORM)
    hwcaps: tuple[str, ...] = ()
    cache: Optional[LdCache] = None
    cache_problem: Optional[str] = None  # why no cache is used
    conf_dirs: tuple[str, ...] = ()
    cwd: Optional[str] = None  # for relative and empty path elements; None under --root
    arch_source: str = ""  # which file told the machine and class

    @classmethod
    def for_target(
        cls,
        root: Root,
        executable: Optional[str] = None,
        environ: Optional[Mapping[str, str]] = None,
        cpu_flags: Iterable[str] = (),
    ) -> LoaderConfig:
        """The loader of the target, its architecture read from the target's own binaries (once per scan)."""
        arch = target_arch(root, executable)
        config = cls.detect(root, arch.machine, arch.elf_class, environ, executable, cpu_flags)
        return dataclasses.replace(config, arch_source=arch.source)

    @classmethod
    def detect(
        cls,
        root: Root,
        machine: str = "x86_64",
        elf_class: int = 64,
        environ: Optional[Mapping[str, str]] = None,
        executable: Optional[str] = None,
        cpu_flags: Iterable[str] = (),
    ) -> LoaderConfig:
        """The loader of the target: its cache, ld.so.conf, default dirs; the environment on the host only."""
        env = dict(environ or {}) if root.is_host else {}
        cache, problem = None, None
        try:
            cache = read_ld_cache(root)
            if cache is None:
                problem = "no /etc/ld.so.cache" + (" inside --root" if root.root else "")
        except LdCacheError as exc:
            problem = f"unreadable ld.so.cache: {exc}"
        style, source = _default_dir_style(root, machine)
        triplet = _TRIPLETS.get(machine, f"{machine}-linux-gnu")
        lib_token = {"debian": f"lib/{triplet}", "lib64": "lib64"}.get(style, "lib")
        ld_library_path = tuple(_split_path(env.get("LD_LIBRARY_PATH"))) if env.get("LD_LIBRARY_PATH") else ()
        preload = tuple(p for p in re.split(r"[ :]", env.get("LD_PRELOAD", "")) if p)
        try:
            preload_file = tuple(root.read_text("/etc/ld.so.preload", kind="ld_so_conf").split())
        except OSError:
            preload_file = ()
        return cls(
            root=root,
            machine=machine,
            elf_class=elf_class,
            ld_library_path=ld_library_path,
            ld_preload=preload,
            preload_file=preload_file,
            executable=executable,
            default_dirs=_DEFAULT_DIRS[style](triplet),
            default_dirs_source=source,
            lib_token=lib_token,
            platform_token=machine,
            hwcaps=glibc_hwcaps(machine, cpu_flags),
            cache=cache,
            cache_problem=problem,
            conf_dirs=tuple(read_ld_so_conf(root)),
            cwd=_cwd() if root.is_host else None,
        )


def _cwd() -> Optional[str]:
    try:
        return os.getcwd()
    except OSError:  # the working directory was removed
        return None


def _split_path(value: Optional[str]) -> list[str]:
    # ld.so splits LD_LIBRARY_PATH on ':' and ';'; an empty element is the working directory.
    return re.split(r"[:;]", value) if value is not None else []


def _default_dir_style(root: Root, machine: str) -> tuple[str, str]:
    """Which default-dir layout the target's glibc has, from where its libc.so.6 lives."""
    triplet = _TRIPLETS.get(machine, f"{machine}-linux-gnu")
    for style, d in (
        ("debian", f"/lib/{triplet}"),
        ("debian", f"/usr/lib/{triplet}"),
        ("lib64", "/lib64"),
        ("lib64", "/usr/lib64"),
        ("lib", "/lib"),
        ("lib", "/usr/lib"),
    ):
        if root.is_file(d + "/libc.so.6"):
            return style, f"libc.so.6 in {d}"
    return ("debian" if machine in _TRIPLETS else "lib64"), "assumed (no libc.so.6 found)"
