"""AMD ROCm: the user-space version and each GPU's gfx target, read from files (nothing loaded)."""

from __future__ import annotations

import glob
import os
import re
from typing import List, Optional, Tuple

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


def _rocm_version(root: Root) -> Tuple[Optional[str], Optional[str]]:
    for path in ROCM_VERSION_FILES:
        try:
            text = root.read_text(path, limit=256).strip()
        except OSError:
            continue
        m = re.match(r"^(\d+\.\d+(?:\.\d+)?)", text)
        if m:
            return m.group(1), root.path(path)
    return None, None


def _kfd_gpus(root: Root) -> List[AmdGpu]:
    gpus: List[AmdGpu] = []
    try:
        base = root.path(KFD_NODES)
    except OSError:
        return gpus
    for node in sorted(glob.glob(os.path.join(base, "*")), key=lambda p: int(os.path.basename(p))
                       if os.path.basename(p).isdigit() else 1 << 30):
        props = {}
        try:
            with open(os.path.join(node, "properties"), encoding="utf-8") as fh:
                for line in fh:
                    key, _, value = line.strip().partition(" ")
                    props[key] = value.strip()
        except OSError:
            continue
        try:
            target = int(props.get("gfx_target_version", "0"))
        except ValueError:
            continue
        name = gfx_name(target)
        if name is None:
            continue
        gpus.append(AmdGpu(node=int(os.path.basename(node)) if os.path.basename(node).isdigit() else -1,
                           gfx_target=name, source=os.path.join(node, "properties")))
    return gpus


def probe_rocm(root: Root) -> Tuple[Optional[Rocm], List[Unknown]]:
    version, source = _rocm_version(root)
    gpus = _kfd_gpus(root)
    if version is None and not gpus:
        return None, [Unknown("rocm", "no ROCm installed (/opt/rocm/.info/version not found) and no AMD GPU in "
                                      f"{KFD_NODES}")]
    unknowns = []
    if version is None:
        unknowns.append(Unknown("rocm.version", "AMD GPUs present but /opt/rocm/.info/version not found"))
    return Rocm(version=version, version_source=source, gpus=tuple(gpus)), unknowns
