"""How TensorFlow and the NVIDIA stack load native code, and the resource checks' defaults, as data.

These were constants in the probes and rules; now they are tables of data/compat_matrix.toml
([[library]], [[dlopen]], [[tensorrt_dlopen]], [[cudnn_sublibraries]], [cpu_needs],
[[tensorflow_distribution]], [[companion_module]], [driver_libraries], [[threshold]]) with a source
each, reachable as `Matrix.facts`. A matrix file without one of these tables has an empty one.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Optional

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

Sources = tuple[str, ...]


def _minor(version: str) -> Optional[Version]:
    """major.minor of a version ("2.15.0.post1" -> 2.15), which the dlopen tables are keyed by."""
    try:
        release = Version(version).release
    except InvalidVersion:
        return None
    return Version(f"{release[0]}.{release[1] if len(release) > 1 else 0}")


@dataclasses.dataclass(frozen=True)
class Soname:
    """One library TensorFlow dlopen()s: what the probes resolve and the rules name."""

    name: str  # "cudart"
    soname: str  # "libcudart.so.12"
    role: str  # "driver", "gpu", "feature", "optional"
    purpose: str  # "CUDA runtime"
    fallbacks: tuple[str, ...] = ()  # names TF tries when the soname is not found


@dataclasses.dataclass(frozen=True)
class DlopenLibrary:
    """One library of a [[dlopen]] or [[tensorrt_dlopen]] table, maybe only for some CUDA or TF releases."""

    name: str
    soname: str  # may hold "{cudnn_major}"
    role: str
    fallbacks: tuple[str, ...] = ()
    cuda: Optional[SpecifierSet] = None  # only for these CUDA major.minor versions
    tensorflow: Optional[SpecifierSet] = None  # only for these TensorFlow major.minor versions

    def applies(self, cuda: Optional[Version], tf: Optional[Version]) -> bool:
        """For a build of CUDA `cuda` and TF `tf` (major.minor; cuda None: build_info.py states only the major).
        With both narrowings, the CUDA minor decides where it is known (a source build), the TF release where it
        is not (the 1.15, 2.0 and 2.2 wheels write "10")."""
        in_tf = self.tensorflow is None or (tf is not None and self.tensorflow.contains(tf, prereleases=True))
        if self.cuda is None:
            return in_tf
        if cuda is not None:
            return self.cuda.contains(cuda, prereleases=True)
        return self.tensorflow is not None and in_tf


@dataclasses.dataclass(frozen=True)
class DlopenTable:
    """[[dlopen]] (keyed by CUDA major) or [[tensorrt_dlopen]] (keyed by a TF specifier)."""

    libraries: tuple[DlopenLibrary, ...]
    source: Sources
    checked: datetime.date
    label: str
    cuda_major: Optional[int] = None
    tensorflow: Optional[SpecifierSet] = None
    note: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class CudnnSublibraries:
    """[[cudnn_sublibraries]]: the sub-libraries libcudnn.so.<major> dlopen()s."""

    cudnn_major: int
    sonames: tuple[str, ...]
    source: Sources
    checked: datetime.date
    label: str


@dataclasses.dataclass(frozen=True)
class CpuNeeds:
    """[cpu_needs]: the CPU instructions the wheels of `machine` are compiled for (a distribution may state its own)."""

    machine: str  # the only machine whose wheels are judged ("x86_64")
    default: tuple[str, ...]
    cited_as: str
    source: Sources
    checked: datetime.date
    label: str = "[cpu_needs]"
    note: Optional[str] = None

    @property
    def evidence(self) -> str:
        """How evidence names the source: "TensorFlow 1.6.0 release notes (https://...)"."""
        return f"{self.cited_as} ({self.source[0]})"


@dataclasses.dataclass(frozen=True)
class TFDistribution:
    """[[tensorflow_distribution]]: a distribution that installs (or wraps) the `tensorflow` package."""

    name: str  # canonical distribution name
    gpu: str  # "cuda", "rocm", "directml", "none"
    source: Sources
    checked: datetime.date
    label: str
    cpu_needs: tuple[str, ...] = ()  # beyond [cpu_needs] default
    note: Optional[str] = None
    local_version: Optional[str] = None  # the PEP 440 local label its vendor's builds carry ("nv": 1.15.5+nv22.9)


@dataclasses.dataclass(frozen=True)
class LibraryPurpose:
    """[[library]]: what a library TensorFlow dlopen()s is for (cudart: "CUDA runtime")."""

    name: str
    purpose: str
    source: Sources
    checked: datetime.date
    label: str


@dataclasses.dataclass(frozen=True)
class CompanionModule:
    """[[companion_module]]: the Python module a companion distribution installs."""

    module: str
    distribution: str
    source: Sources
    checked: datetime.date
    label: str


@dataclasses.dataclass(frozen=True)
class DriverLibraries:
    """[driver_libraries]: the NVIDIA driver's user-space libraries tfcompat looks for."""

    sonames: tuple[str, ...]
    source: Sources
    checked: datetime.date
    label: str = "[driver_libraries]"


@dataclasses.dataclass(frozen=True)
class Threshold:
    """[[threshold]]: one default of the 8xx resource rules, by key (a site overlay can override it)."""

    key: str
    value: int
    source: Sources
    checked: datetime.date
    label: str
    note: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class WorldFacts:
    """The tables of this module, as read from the matrix file (`Matrix.facts`)."""

    libraries: tuple[LibraryPurpose, ...] = ()
    dlopen: tuple[DlopenTable, ...] = ()
    tensorrt: tuple[DlopenTable, ...] = ()
    cudnn: tuple[CudnnSublibraries, ...] = ()
    cpu: Optional[CpuNeeds] = None
    distributions: tuple[TFDistribution, ...] = ()
    companion_modules: tuple[CompanionModule, ...] = ()
    driver: Optional[DriverLibraries] = None
    threshold_entries: tuple[Threshold, ...] = ()

    # -- what TensorFlow dlopen()s
    def purpose(self, name: str) -> str:
        return next((p.purpose for p in self.libraries if p.name == name), name)

    def dlopen_table(self, cuda_major: int) -> Optional[DlopenTable]:
        return next((t for t in self.dlopen if t.cuda_major == cuda_major), None)

    def cuda_majors_of(self, soname: str) -> frozenset[int]:
        """The CUDA majors whose [[dlopen]] table names `soname` (libcublas.so.11: {11}; libcusolver.so.11, in
        CUDA 11 and 12: {11, 12}); empty for a name TensorFlow does not dlopen()."""
        return frozenset(
            t.cuda_major for t in self.dlopen if t.cuda_major is not None for lib in t.libraries if lib.soname == soname
        )

    def sonames(self, cuda: str, tf: str, cudnn_major: Optional[int]) -> Optional[tuple[Soname, ...]]:
        """The sonames a CUDA `cuda` build of TensorFlow `tf` dlopen()s, in TF's order, the driver first;
        cuDNN left out when `cudnn_major` is None. None: no [[dlopen]] table for that CUDA major."""
        try:
            major = Version(cuda).major
        except InvalidVersion:
            return None
        table = self.dlopen_table(major)
        if table is None:
            return None
        major_only = len(Version(cuda).release) == 1  # "10": the minor is unknown
        out = []
        for lib in table.libraries:
            if not lib.applies(None if major_only else _minor(cuda), _minor(tf)):
                continue
            if "{cudnn_major}" in lib.soname:
                if cudnn_major is None:
                    continue
                soname = lib.soname.replace("{cudnn_major}", str(cudnn_major))
            else:
                soname = lib.soname
            out.append(Soname(lib.name, soname, lib.role, self.purpose(lib.name), lib.fallbacks))
        return tuple(out)

    def tensorrt_sonames(self, tf: str) -> Optional[tuple[Soname, ...]]:
        """The TensorRT sonames a TensorRT build of TensorFlow `tf` dlopen()s; None: not known."""
        v = _minor(tf)
        if v is None:
            return None
        table = next(
            (t for t in self.tensorrt if t.tensorflow is not None and t.tensorflow.contains(v, prereleases=True)), None
        )
        if table is None:
            return None
        return tuple(
            Soname(lib.name, lib.soname, lib.role, self.purpose(lib.name), lib.fallbacks) for lib in table.libraries
        )

    def cudnn_sublibraries(self, cudnn_major: int) -> tuple[str, ...]:
        """The sub-libraries libcudnn.so.<major> dlopen()s (empty: not known)."""
        return next((c.sonames for c in self.cudnn if c.cudnn_major == cudnn_major), ())

    # -- CPU, distributions, driver
    def cpu_needs(self, distribution: str, machine: str) -> tuple[str, ...]:
        """The CPU instructions TensorFlow `distribution` needs on `machine` (empty: none known)."""
        if self.cpu is None or machine != self.cpu.machine:
            return ()
        dist = self.distribution(distribution)
        return dist.cpu_needs if dist is not None and dist.cpu_needs else self.cpu.default

    @property
    def cpu_needs_source(self) -> str:
        return self.cpu.evidence if self.cpu is not None else ""

    @property
    def tf_distribution_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.distributions)

    def distribution(self, name: str) -> Optional[TFDistribution]:
        return next((d for d in self.distributions if d.name == name), None)

    def companion_distribution(self, module: Optional[str]) -> Optional[str]:
        return next((c.distribution for c in self.companion_modules if c.module == module), None)

    @property
    def companion_distributions(self) -> dict[str, str]:
        """module -> distribution, as rules/probe.py COMPANION_DISTRIBUTIONS was."""
        return {c.module: c.distribution for c in self.companion_modules}

    @property
    def driver_sonames(self) -> tuple[str, ...]:
        return self.driver.sonames if self.driver is not None else ()

    # -- resource thresholds
    @property
    def thresholds(self) -> Mapping[str, int]:
        """The 8xx rules' defaults, key -> value (a site overlay's [thresholds] override them)."""
        return {t.key: t.value for t in self.threshold_entries}


__all__ = [
    "CompanionModule",
    "CpuNeeds",
    "CudnnSublibraries",
    "DlopenLibrary",
    "DlopenTable",
    "DriverLibraries",
    "LibraryPurpose",
    "Soname",
    "TFDistribution",
    "Threshold",
    "WorldFacts",
]
