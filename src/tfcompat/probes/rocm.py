"""AMD ROCm: the user-space version and each GPU's gfx target, read from files (nothing loaded)."""

from __future__ import annotations

import os
import re
from typing import Optional

from tfcompat.model import AmdGpu, Rocm, Unknown
from tfcompat.probes.rootfs import Root

ROCM_VERSION_FILES = ("/opt/rocm/.info/version", "/opt/rocm/.info/version-dev")
KFD_NODES = "/sys/class/kfd/kfd/topology/nodes"


def gfx_name(target_version: int) -> Optional[str]:
    """KFD's gfx_target_version (e.g. 90010, 110000) -> the LLVM target name (gfx90a, gfx1100)."""
    if target_version <= 0:
        return None  # CPU nodes report 0
    major, minor, step = target_version // 10000, (target_version // 100) % 100, target_version % 100
    return f"gfx{major}{minor:x}{step:x}"


def _rocm_version(root: Root) -> tuple[Optional[str], Optional[str]]:
    for path in ROCM_VERSION_FILES:
        try:
            text = root.read_text(path, limit=256).strip()  # bounded, regular files only
        except OSError:
            continue
        m = re.match(r"^(\d+\.\d+(?:\.\d+)?)", text)
        if m:
            return m.group(1), root.path(path)
    return None, None


def _node_number(name: str) -> int:
    return int(name) if name.isascii() and name.isdigit() else -1  # '²'.isdigit() is True; int('²') fails


def _kfd_gpus(root: Root) -> list[AmdGpu]:
    """Each KFD topology node's gfx target; nodes are listed and read through the root (a link in an image
    stays inside it; a FIFO, device or oversized file is skipped)."""
    gpus: list[AmdGpu] = []
    try:
        base = root.path(KFD_NODES)
        names = root.listdir(KFD_NODES)
    except OSError:
        return gpus
    for name in sorted(names, key=lambda n: (_node_number(n) < 0, _node_number(n), n)):
        props = {}
        try:
            text = root.read_bytes(f"{KFD_NODES}/{name}/properties", "sysfs").decode("utf-8", "replace")
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.strip().partition(" ")
            props[key] = value.strip()
        try:
            target = int(props.get("gfx_target_version", "0"))
        except ValueError:
            continue
        gfx = gfx_name(target)
        if gfx is None:
            continue
        gpus.append(AmdGpu(node=_node_number(name), gfx_target=gfx, source=os.path.join(base, name, "properties")))
    return gpus


def probe_rocm(root: Root) -> tuple[Optional[Rocm], list[Unknown]]:
    version, source = _rocm_version(root)
    gpus = _kfd_gpus(root)
    if version is None and not gpus:
        return None, [
            Unknown("rocm", f"no ROCm installed (/opt/rocm/.info/version not found) and no AMD GPU in {KFD_NODES}")
        ]
    unknowns = []
    if version is None:
        unknowns.append(Unknown("rocm.version", "AMD GPUs present but /opt/rocm/.info/version not found"))
    return Rocm(version=version, version_source=source, gpus=tuple(gpus)), unknowns
