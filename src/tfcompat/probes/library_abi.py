"""The symbol versions an object needs (GLIBC_*, GLIBCXX_*, CXXABI_*) against those its providers define."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Optional

from tfcompat.model import VersionNeedCheck
from tfcompat.probes.native.loader import LoadedObject, Loader


def abi_checks(loader: Loader, objects: Iterable[LoadedObject]) -> list[VersionNeedCheck]:
    """For each object, each library it needs symbol versions from: the versions, the provider the loader picked,
    the versions it lacks, and the highest of each family it has (GLIBCXX_3.4.30 when 3.4.32 is needed)."""
    out: list[VersionNeedCheck] = []
    for obj in objects:
        for need in obj.elf.version_needs:
            provider = obj.deps.get(need.file)
            if provider is None and need.file in loader.loaded:
                provider = loader.loaded[need.file]
            if provider is not None:
                defined = set(provider.elf.version_defs)
                missing = tuple(v for v in need.versions if v not in defined)
                highest = tuple(_highest(provider.elf.version_defs, v) for v in _families(need.versions))
                out.append(
                    VersionNeedCheck(
                        obj.real,
                        need.file,
                        tuple(sorted(need.versions, key=_vkey)),
                        provider.real,
                        provider.step,
                        missing,
                        tuple(h for h in highest if h),
                    )
                )
            else:
                out.append(
                    VersionNeedCheck(
                        obj.real,
                        need.file,
                        tuple(sorted(need.versions, key=_vkey)),
                        None,
                        None,
                        tuple(need.versions),
                        (),
                    )
                )
    return out


def is_driver_library(soname: str) -> bool:
    """Installed with the NVIDIA driver, not with TensorFlow: the driver rules judge those."""
    return soname.startswith(("libcuda.so", "libnvidia-", "libnvcuvid", "libcudadebugger"))


def _vkey(v: str) -> tuple:
    prefix, _, num = v.rpartition("_")
    return (prefix, tuple(int(x) if x.isdigit() else 0 for x in num.split(".")))


def _families(versions: Iterable[str]) -> list[str]:
    return sorted({v.rpartition("_")[0] for v in versions if "_" in v and v.rpartition("_")[0]})


def _highest(defined: Iterable[str], family: str) -> Optional[str]:
    same = [v for v in defined if v.rpartition("_")[0] == family and re.match(r"^[\d.]+$", v.rpartition("_")[2])]
    return max(same, key=_vkey) if same else None
