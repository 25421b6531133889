"""Limits the job will run under: /dev/shm, rlimits, cgroup memory, host memory, visible devices.

Everything is read from files (or getrlimit); nothing is allocated. Under --root, files are read
inside the root (a node's filesystem mounted at /host works); the rlimits and environment
variables belong to a process, so they are only read for the live system.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Callable, Optional

from tfcompat.model import Resources, Unknown
from tfcompat.probes.rootfs import Root


def _rlimit_value(v: int) -> Optional[int]:
    import resource

    return None if v == resource.RLIM_INFINITY else int(v)


def _read(root: Root, path: str) -> Optional[str]:
    """A /proc or /sys file through the Root (regular files only: a FIFO or device is never opened), its
    first CAPS['proc'] bytes."""
    try:
        return root.read_text(path, kind="proc")
    except OSError:
        return None


def parse_size(text: str) -> Optional[int]:
    """tmpfs `size=` option: 65536k, 1g, 8589934592."""
    text = text.strip().lower()
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        return None


def shm_from_mounts(mounts: str) -> Optional[int]:
    """Size of the /dev/shm tmpfs from /proc/mounts (`size=65536k` is Docker's default 64 MB)."""
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "/dev/shm":
            for opt in parts[3].split(","):
                if opt.startswith("size="):
                    return parse_size(opt[5:])
    return None


def _shm(root: Root) -> tuple[Optional[int], Optional[int], Optional[str], Optional[str]]:
    """(size, free, source, reason-if-unknown)."""
    path = root.path("/dev/shm") if root.root else "/dev/shm"
    if root.is_host and os.path.isdir(path):
        try:
            st = os.statvfs(path)
            return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize, "statvfs /dev/shm", None
        except OSError as exc:
            return None, None, None, f"statvfs /dev/shm failed: {exc.strerror}"
    mounts = _read(root, "/proc/mounts") or _read(root, "/proc/self/mounts")
    size = shm_from_mounts(mounts) if mounts else None
    if size is not None:
        return size, None, root.path("/proc/mounts"), None
    return None, None, None, "no /dev/shm mount found" + (f" inside --root {root.root}" if root.root else "")


def parse_meminfo(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            out[key.strip()] = int(fields[0]) * (1024 if len(fields) > 1 and fields[1] == "kB" else 1)
    return out


def _cgroup_value(text: Optional[str]) -> tuple[bool, Optional[int]]:
    """(readable, value) where value None means 'max' (no limit)."""
    if text is None:
        return False, None
    text = text.strip()
    if text == "max":
        return True, None
    try:
        v = int(text)
    except ValueError:
        return False, None
    # cgroup v1 reports "no limit" as a huge page-aligned number (LONG_MAX rounded down).
    return True, (None if v >= 1 << 62 else v)


def cgroup_memory(root: Root) -> tuple[Optional[int], Optional[int], Optional[int], Optional[str], Optional[str]]:
    """(version, limit, current, source, reason-if-unknown) for this process's memory cgroup.

    v2: the smallest memory.max on the path from our cgroup up to the root (limits nest).
    v1: memory.limit_in_bytes of our memory cgroup. Inside a container (cgroup namespace) our path
    is '/' and the files sit at the hierarchy's top.
    """
    self_cgroup = _read(root, "/proc/self/cgroup")
    if self_cgroup is None:
        return None, None, None, None, "no /proc/self/cgroup" + (f" inside --root {root.root}" if root.root else "")
    v2_path, v1_path = None, None
    for line in self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2_path = parts[2]
        elif "memory" in parts[1].split(","):
            v1_path = parts[2]
    if v1_path is not None:
        for path in (v1_path, "/"):
            base = "/sys/fs/cgroup/memory" + ("" if path == "/" else path)
            ok, limit = _cgroup_value(_read(root, base + "/memory.limit_in_bytes"))
            if ok:
                _, current = _cgroup_value(_read(root, base + "/memory.usage_in_bytes"))
                return 1, limit, current, root.path(base + "/memory.limit_in_bytes"), None
        return 1, None, None, None, "cgroup v1 memory controller files not readable"
    if v2_path is not None:
        parts = [p for p in v2_path.split("/") if p]
        limit, source, current, found = None, None, None, False
        for depth in range(len(parts), -1, -1):
            base = "/sys/fs/cgroup" + "".join("/" + p for p in parts[:depth])
            ok, value = _cgroup_value(_read(root, base + "/memory.max"))
            if not ok:
                continue
            if not found:
                found = True
                _, current = _cgroup_value(_read(root, base + "/memory.current"))
                source = root.path(base + "/memory.max")
            if value is not None and (limit is None or value < limit):
                limit, source = value, root.path(base + "/memory.max")
        if found:
            return 2, limit, current, source, None
        # In a cgroup namespace our path may not exist under /sys/fs/cgroup: the top is ours.
        ok, limit = _cgroup_value(_read(root, "/sys/fs/cgroup/memory.max"))
        if ok:
            _, current = _cgroup_value(_read(root, "/sys/fs/cgroup/memory.current"))
            return 2, limit, current, root.path("/sys/fs/cgroup/memory.max"), None
        if _read(root, "/sys/fs/cgroup/cgroup.controllers") is not None:
            return 2, None, None, root.path("/sys/fs/cgroup"), None  # root cgroup: no memory.max, no limit
        return 2, None, None, None, "cgroup v2 memory files not readable"
    return None, None, None, None, "no memory cgroup in /proc/self/cgroup"


def rdma_devices(root: Root) -> Optional[tuple[str, ...]]:
    """The RDMA devices (InfiniBand/RoCE HCAs) the kernel lists in /sys/class/infiniband, by name. () where the
    directory is absent on the live system (ib_core not loaded: no RDMA); None under --root without it (a sysroot
    or image has no /sys: unknown)."""
    try:
        names = os.listdir(root.path("/sys/class/infiniband"))
    except FileNotFoundError:
        return () if root.is_host else None
    except (OSError, ValueError):
        return None
    return tuple(sorted(n for n in names if not n.startswith(".")))


def probe_resources(
    root: Root,
    environ: Optional[Mapping[str, str]] = None,
    getrlimit: Optional[Callable[[int], tuple[int, int]]] = None,
) -> tuple[Resources, list[Unknown]]:
    unknowns: list[Unknown] = []
    shm, shm_free, shm_source, shm_reason = _shm(root)
    if shm_reason:
        unknowns.append(Unknown("resources.shm", shm_reason))
    limits: dict[str, Optional[int]] = {}
    rlimit_source = None
    if root.is_host:
        import resource

        get = getrlimit or resource.getrlimit
        for name, res in (
            ("memlock", resource.RLIMIT_MEMLOCK),
            ("stack", resource.RLIMIT_STACK),
            ("nofile", resource.RLIMIT_NOFILE),
        ):
            soft, hard = get(res)
            limits[name + "_soft"], limits[name + "_hard"] = _rlimit_value(soft), _rlimit_value(hard)
        rlimit_source = (
            "getrlimit() of the checking process (a job started from the same shell, container or "
            "Slurm step inherits them)"
        )
    else:
        unknowns.append(
            Unknown(
                "resources.rlimits",
                f"process limits are not part of --root {root.root}; run the check inside the container or job step",
            )
        )
    version, limit, current, cg_source, cg_reason = cgroup_memory(root)
    if cg_reason:
        unknowns.append(Unknown("resources.cgroup", cg_reason))
    meminfo = parse_meminfo(_read(root, "/proc/meminfo") or "")
    env = (os.environ if environ is None else environ) if root.is_host else {}
    return Resources(
        shm_bytes=shm,
        shm_free_bytes=shm_free,
        shm_source=shm_source,
        memlock_soft=limits.get("memlock_soft"),
        memlock_hard=limits.get("memlock_hard"),
        stack_soft=limits.get("stack_soft"),
        nofile_soft=limits.get("nofile_soft"),
        nofile_hard=limits.get("nofile_hard"),
        rlimit_source=rlimit_source,
        cgroup_version=version,
        cgroup_memory_limit=limit,
        cgroup_memory_current=current,
        cgroup_source=cg_source,
        mem_total=meminfo.get("MemTotal"),
        mem_available=meminfo.get("MemAvailable"),
        cuda_visible_devices=env.get("CUDA_VISIBLE_DEVICES"),
        nvidia_visible_devices=env.get("NVIDIA_VISIBLE_DEVICES"),
        rdma_devices=rdma_devices(root),
    ), unknowns
