"""The `Matrix`: every table of the file, and the questions rules and `tfcompat matrix` ask across them."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Optional

from packaging.version import InvalidVersion, Version

from tfcompat.matrix.arch import cc_text
from tfcompat.matrix.entries import (
    Companion,
    ComputeCapability,
    CudaMajor,
    CudaToolkit,
    CudnnRelease,
    CudnnRuntime,
    DriverBranch,
    DriverNeed,
    ForwardCompatibility,
    RocmRelease,
    RocmSoname,
    TFPlatformBuild,
    TFRelease,
    TFRocmRelease,
)
from tfcompat.matrix.facts import WorldFacts
from tfcompat.matrix.forward_compat import DriverGpuSupport, ForwardCompatPackage
from tfcompat.matrix.overlay import KnownBadDriver, Overlay, Waiver


@dataclasses.dataclass(frozen=True)
class CudnnSupport:
    """What the matrix documents for one installed cuDNN release (Matrix.cudnn_support).

    `basis`: "exact" (entries whose versions match it), "same_minor" (none match, but entries of the
    same major.minor do: 9.10.1 -> the 9.10.2 rows), "gap" (no entry of its major.minor: the release is
    unknown, `older` is the newest documented release before it, for context only) or "none"."""

    version: str
    basis: str
    entries: tuple[CudnnRelease, ...] = ()
    older: tuple[CudnnRelease, ...] = ()


def cudnn_low(e: CudnnRelease) -> Optional[Version]:
    """The lowest version an entry's == / >= / ~= specifiers name."""
    lows = []
    for s in e.versions:
        if s.operator in ("==", ">=", "~="):
            try:
                lows.append(Version(s.version.rstrip(".*")))
            except InvalidVersion:
                continue
    return min(lows) if lows else None


def _pad(v: Version) -> Version:
    parts = list(v.release) + [0] * (3 - len(v.release))
    return Version(".".join(str(p) for p in parts))


@dataclasses.dataclass(frozen=True)
class Matrix:
    """The compatibility matrix as loaded: every table of the file, with any site overlays applied."""

    path: str
    updated: datetime.date
    tensorflow: tuple[TFRelease, ...]
    cuda: tuple[CudaToolkit, ...]
    cuda_majors: tuple[CudaMajor, ...]
    forward_compatibility: Optional[ForwardCompatibility] = None
    compute_capabilities: tuple[ComputeCapability, ...] = ()
    cudnn: tuple[CudnnRelease, ...] = ()
    cudnn_runtime: Optional[CudnnRuntime] = None
    tensorflow_rocm: tuple[TFRocmRelease, ...] = ()
    rocm: tuple[RocmRelease, ...] = ()
    tensorflow_platforms: tuple[TFPlatformBuild, ...] = ()
    driver_branches: tuple[DriverBranch, ...] = ()
    companions: tuple[Companion, ...] = ()
    known_bad_drivers: tuple[KnownBadDriver, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    thresholds: Mapping[str, int] = dataclasses.field(default_factory=dict)
    overlays: tuple[str, ...] = ()
    facts: WorldFacts = dataclasses.field(
        default_factory=WorldFacts
    )  # sonames, TensorRT, cuDNN sub-libraries, CPU needs, distributions, thresholds
    rocm_sonames: tuple[RocmSoname, ...] = ()  # [[rocm_soname]]: ROCm library sonames -> the ROCm releases with them
    # cuda-compat packages x kernel-module branches, and the last driver branch of each GPU architecture
    forward_compat_packages: tuple[ForwardCompatPackage, ...] = ()
    driver_gpu_support: tuple[DriverGpuSupport, ...] = ()

    # -- TensorFlow
    def tf_release(self, version: str) -> Optional[TFRelease]:
        """The [[tensorflow]] entry (official CUDA/CPU wheels) of `version`. A tensorflow-rocm version
        (`<TF>.<ROCm without dots>`, "2.14.0.600") is none of them, though it sorts inside 2.14.0's range:
        no TensorFlow release has a fourth release segment. `tf_rocm_release` answers for those."""
        try:
            v = Version(version)
        except InvalidVersion:
            return None
        if len(v.release) > 3 or self.tf_rocm_release(version) is not None:
            return None
        for rel in self.tensorflow:
            if rel.matches(version):
                return rel
        return None

    def tf_platform_builds(self, version: str) -> list[TFPlatformBuild]:
        """The [[tensorflow_platform]] entries (Linux aarch64 wheels) that cover TensorFlow `version`."""
        return [p for p in self.tensorflow_platforms if p.matches(version)]

    def driver_branch(self, driver: str) -> Optional[DriverBranch]:
        """The [[driver_branch]] entry of driver `driver` (580.95.05 -> R580), if the matrix has one."""
        try:
            major = Version(driver).release[0]
        except (InvalidVersion, IndexError):
            return None
        return next((b for b in self.driver_branches if b.branch == major), None)

    def tf_rocm_release(self, version: str) -> Optional[TFRocmRelease]:
        """The [[tensorflow_rocm]] entry that lists `version` ("2.14.0.600")."""
        try:
            v = Version(version)
        except InvalidVersion:
            return None
        for rel in self.tensorflow_rocm:
            if any(Version(r) == v for r in rel.releases):
                return rel
        return None

    def rocm_soname(self, soname: str) -> Optional[RocmSoname]:
        """The [[rocm_soname]] entry of a ROCm library's DT_NEEDED name ("libamdhip64.so.5")."""
        return next((s for s in self.rocm_sonames if s.soname == soname), None)

    def numpy_abi(self, version: str) -> tuple[Optional[int], tuple[str, ...]]:
        """The NumPy C-ABI major release `version` was built against, from its [[tensorflow]] or
        [[tensorflow_rocm]] entry, and that entry's sources; (None, ()) when neither states it."""
        for rel in (self.tf_release(version), self.tf_rocm_release(version)):
            if rel is not None and rel.numpy_abi is not None:
                return rel.numpy_abi, rel.source
        return None, ()

    def newest_known_tf(self) -> Optional[Version]:
        """The newest release line the matrix describes (upper bound of the last entry)."""
        best: Optional[Version] = None
        for rel in self.tensorflow:
            for spec in rel.versions:
                if spec.operator in (">=", "=="):
                    v = Version(spec.version)
                    best = v if best is None or v > best else best
        return best

    def tf_releases(self) -> list[str]:
        """Every published release the matrix lists, oldest first."""
        return sorted({r for rel in self.tensorflow for r in rel.releases}, key=Version)

    def resolve_tf(self, query: str) -> Optional[str]:
        """`2.15` -> the newest known 2.15 release ("2.15.1"); `2.15.0` -> itself when known."""
        try:
            want = Version(query)
        except InvalidVersion:
            return None
        known = self.tf_releases()
        if query in known or str(want) in known:
            return query if query in known else str(want)
        if len(want.release) == 2 and not (want.pre or want.post or want.dev):
            same = [r for r in known if Version(r).release[:2] == want.release]
            return same[-1] if same else None
        return None

    # -- CUDA and the driver
    def cuda_toolkit(self, version: str) -> Optional[CudaToolkit]:
        """The toolkit release `version` names: exact, else the newest update of that major.minor that is
        not newer than it ("12.5.1" -> 12.5 Update 1; "12.5.2" -> 12.5 Update 1). A major.minor alone
        names that minor's GA release ("12.5" -> 12.5 GA, "11.0" -> 11.0.2 GA, not the 11.0.1 RC)."""
        try:
            want = Version(version)
        except InvalidVersion:
            return None
        same_minor = [t for t in self.cuda if t.version.release[:2] == want.release[:2]]
        if not same_minor:
            return None
        if len(want.release) <= 2:
            ga = [t for t in same_minor if t.update == "GA"]
            return min(ga, key=lambda t: t.version) if ga else None
        not_newer = [t for t in same_minor if t.version <= _pad(want) and t.update != "RC"]
        exact = [t for t in same_minor if t.version == _pad(want)]
        if exact:
            return exact[0]
        return max(not_newer, key=lambda t: t.version) if not_newer else None

    def cuda_major(self, major: int) -> Optional[CudaMajor]:
        """The driver floor of CUDA `major` under minor-version compatibility; None where the major has
        none (CUDA 10: every minor needs its own driver) or the matrix does not know it."""
        m = self.cuda_major_info(major)
        return m if m is not None and m.min_driver is not None else None

    def cuda_major_info(self, major: int) -> Optional[CudaMajor]:
        for m in self.cuda_majors:
            if m.major == major:
                return m
        return None

    def driver_need(self, cuda: str) -> DriverNeed:
        """The driver a build with CUDA `cuda` needs: its toolkit's own driver (every feature) and the
        lowest it starts on: the lower of that and the major's minor-version-compatibility floor (CUDA
        11.0 shipped with 450.51.05, below the 11.x floor 450.80.02; before CUDA 11 there is no floor)."""
        toolkit = self.cuda_toolkit(cuda)
        try:
            major_n = Version(cuda).major
        except InvalidVersion:
            return DriverNeed(cuda, None, None, None, None, None, None)
        major = self.cuda_major_info(major_n)
        full, full_text = (toolkit.min_driver, toolkit.min_driver_text) if toolkit else (None, None)
        floor, floor_text = full, full_text
        if major is not None and major.min_driver is not None and (floor is None or major.min_driver < floor):
            floor, floor_text = major.min_driver, major.min_driver_text
        return DriverNeed(cuda, toolkit, major, full_text, full, floor_text, floor)

    # -- GPUs, cuDNN, companions, site facts
    def compute_capability(self, cc: str) -> Optional[ComputeCapability]:
        want = cc_text(cc) if cc.startswith(("sm_", "compute_")) else cc
        for entry in self.compute_capabilities:
            if want in entry.capabilities:
                return entry
        return None

    def cudnn_support(self, version: str, cuda_major: int) -> CudnnSupport:
        """The support-matrix rows for cuDNN `version` built for CUDA `cuda_major`: the rows that match it,
        else the rows of the same major.minor (nearest first), else a gap: architectures are added as well
        as dropped, so a release the matrix does not describe inherits no verdict from an older one."""
        try:
            v = Version(version)
        except InvalidVersion:
            return CudnnSupport(version, "none")
        rows = [e for e in self.cudnn if e.cuda_major == cuda_major]
        exact = tuple(e for e in rows if e.versions.contains(v, prereleases=True))
        if exact:
            return CudnnSupport(version, "exact", exact)
        lows = [(e, low) for e in rows for low in [cudnn_low(e)] if low is not None]
        same = [(e, low) for e, low in lows if low.release[:2] == v.release[:2]]
        if same:
            # the nearest documented release of the same minor (older ones first on a tie)
            best = min(same, key=lambda el: (abs(_pad(el[1]).release[2] - _pad(v).release[2]), el[1] > v))[1]
            return CudnnSupport(version, "same_minor", tuple(e for e, low in same if low == best))
        older = [(e, low) for e, low in lows if low < v]
        if not older:
            return CudnnSupport(version, "none")
        newest = max(low for _, low in older)
        return CudnnSupport(version, "gap", older=tuple(e for e, low in older if low == newest))

    def cudnn_compatible(self, loaded: str, compiled: str) -> Optional[bool]:
        """The cuDNN runtime rule TF enforces; None when the matrix states no rule or a version is bad."""
        if self.cudnn_runtime is None:
            return None
        try:
            return self.cudnn_runtime.compatible(Version(loaded), Version(compiled))
        except InvalidVersion:
            return None

    def companions_for(self, tf_version: str) -> list[Companion]:
        """Companion entries whose TensorFlow requirement admits `tf_version`."""
        v = Version(tf_version)
        return [c for c in self.companions if c.tensorflow is not None and c.tensorflow.contains(v, prereleases=True)]

    def known_bad(self, driver: str) -> list[KnownBadDriver]:
        return [k for k in self.known_bad_drivers if k.matches(driver)]

    def with_overlay(self, overlay: Overlay) -> Matrix:
        """This matrix plus a site overlay's facts (the overlay's thresholds win)."""
        return dataclasses.replace(
            self,
            known_bad_drivers=self.known_bad_drivers + overlay.known_bad_drivers,
            waivers=self.waivers + overlay.waivers,
            thresholds={**dict(self.thresholds), **dict(overlay.thresholds)},
            overlays=self.overlays + (overlay.path,),
        )

    def waiver_reasons(self) -> dict[str, str]:
        """Overlay waivers as `--ignore` prefixes -> reason (the engine shows them as waived)."""
        return {w.rule: f"{w.reason} (site overlay {w.origin})" for w in self.waivers}
