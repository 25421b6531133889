"""[[forward_compat_package]] and [[driver_gpu_support]]: the facts behind a cuda-compat libcuda.

A cuda-compat package is a newer user-mode driver (libcuda.so.<branch>.*) for an older kernel module. NVIDIA
states which kernel-module branches each package supports (CUDA Compatibility guide, "Use the Right CUDA Forward
Compatibility Package") and which driver branch last supports each GPU architecture (Data Center Drivers,
"CUDA Toolkit, Driver, and Architecture Matrix"). The rules in `tfcompat.rules.forward_compat` judge with them.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any, Optional

from packaging.version import InvalidVersion, Version

from tfcompat.matrix.arch import is_cc
from tfcompat.matrix.fields import Ctx, common_tail, table_list, unique


@dataclasses.dataclass(frozen=True)
class ForwardCompatPackage:
    """One row of NVIDIA's forward-compatibility table: cuda-compat-12-8 is built from the R570 driver and is
    compatible ("C") with kernel modules of the branches in `compatible`. Its own branch is "N/A" (no package
    is needed there); any other branch is not a supported target ("X": a kernel module newer than the package;
    a branch not listed: end of life or a New Feature Branch)."""

    package: str  # "cuda-compat-12-8"
    cuda: Version  # 12.8
    branch: int  # 570: the driver branch its libcuda.so.570.* comes from
    compatible: tuple[int, ...]  # kernel-module branches it supports
    source: tuple[str, ...]
    checked: datetime.date
    label: str
    confirmed: bool = True
    note: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class DriverGpuSupport:
    """The last NVIDIA driver branch that supports GPUs of these compute capabilities (Kepler 3.5/3.7: R470)."""

    architecture: str
    capabilities: tuple[str, ...]
    last_branch: int
    source: tuple[str, ...]
    checked: datetime.date
    label: str
    confirmed: bool = True
    note: Optional[str] = None


_PACKAGE_KEYS = {
    "package": True,
    "cuda": True,
    "branch": True,
    "compatible": True,
    "source": True,
    "checked": True,
    "confirmed": False,
    "note": False,
}


def _branches(ctx: Ctx, field: str) -> tuple[int, ...]:
    value = ctx.entry.get(field)
    if not isinstance(value, list) or not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in value):
        raise ctx.fail(field, "must be a list of driver branches (positive integers like 535)")
    return tuple(value)


def forward_compat_package(ctx: Ctx) -> ForwardCompatPackage:
    ctx.check_keys(_PACKAGE_KEYS)
    cuda = ctx.version("cuda")
    branch = ctx.integer("branch", minimum=1)
    assert cuda is not None and branch is not None
    package = ctx.string("package") or ""
    if package != f"cuda-compat-{cuda.major}-{cuda.minor}":
        raise ctx.fail(
            "package", f"{package!r} is not the package of CUDA {cuda} (cuda-compat-{cuda.major}-{cuda.minor})"
        )
    compatible = _branches(ctx, "compatible")
    if any(b >= branch for b in compatible):
        raise ctx.fail("compatible", f"names a branch at or above the package's own R{branch}")
    source, checked, note, confirmed = common_tail(ctx)
    return ForwardCompatPackage(package, cuda, branch, compatible, source, checked, ctx.label, confirmed, note)


_GPU_KEYS = {
    "architecture": True,
    "capabilities": True,
    "last_branch": True,
    "source": True,
    "checked": True,
    "confirmed": False,
    "note": False,
}


def driver_gpu_support(ctx: Ctx) -> DriverGpuSupport:
    ctx.check_keys(_GPU_KEYS)
    caps = ctx.strings("capabilities", is_cc, "a compute capability like '3.7'")
    last = ctx.integer("last_branch", minimum=1)
    assert last is not None
    source, checked, note, confirmed = common_tail(ctx)
    return DriverGpuSupport(ctx.string("architecture") or "", caps, last, source, checked, ctx.label, confirmed, note)


def parse_forward_compat_tables(
    path: str, doc: dict[str, Any]
) -> tuple[tuple[ForwardCompatPackage, ...], tuple[DriverGpuSupport, ...]]:
    packages: tuple[ForwardCompatPackage, ...] = table_list(
        path, doc, "forward_compat_package", "package", forward_compat_package
    )
    unique(path, "forward_compat_package", [(str(p.branch), p) for p in packages])
    gpus: tuple[DriverGpuSupport, ...] = table_list(path, doc, "driver_gpu_support", "architecture", driver_gpu_support)
    unique(path, "driver_gpu_support", [(c, g) for g in gpus for c in g.capabilities])
    return packages, gpus


def branch_of(driver: Optional[str]) -> Optional[int]:
    """580.95.05 -> 580; None where it is not a driver version."""
    if not driver:
        return None
    try:
        return Version(driver).release[0]
    except InvalidVersion:
        return None


def compat_package_of(packages: Sequence[ForwardCompatPackage], libcuda: str) -> Optional[ForwardCompatPackage]:
    """The confirmed package whose libcuda a cuda-compat libcuda.so.<version> is (by its driver branch)."""
    branch = branch_of(libcuda)
    return next((p for p in packages if p.branch == branch and p.confirmed), None)


def gpu_support_of(rows: Sequence[DriverGpuSupport], capability: Optional[str]) -> Optional[DriverGpuSupport]:
    """The confirmed [[driver_gpu_support]] row of a compute capability ("3.7"), if the matrix has one."""
    return next((r for r in rows if capability in r.capabilities and r.confirmed), None)
