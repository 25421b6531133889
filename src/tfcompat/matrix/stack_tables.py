"""The parsers of data/compat_matrix.toml's tables for the rest of the stack: cuDNN, ROCm and tensorflow-rocm,
TensorFlow builds for other platforms, NVIDIA driver branches, companion packages (errors name the file, the
entry and the field)."""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement

from tfcompat.matrix.arch import is_cc
from tfcompat.matrix.entries import (
    Companion,
    CudnnRelease,
    CudnnRuntime,
    DriverBranch,
    RocmRelease,
    RocmSoname,
    TFPlatformBuild,
    TFRocmRelease,
)
from tfcompat.matrix.fields import (
    GFX_RE,
    PKG_RE,
    Ctx,
    common_tail,
    is_version,
)

_CUDNN_KEYS = {
    "versions": True,
    "cuda_major": True,
    "cuda": True,
    "min_driver": False,
    "min_driver_windows": False,
    "driver_branch": False,
    "compute_capabilities": False,
    "min_compute_capability": False,
    "max_compute_capability": False,
    "dropped_compute_capabilities": False,
    "forward_compatible": False,
    "source": True,
    "checked": True,
    "confirmed": False,
    "note": False,
}


def cudnn_release(ctx: Ctx) -> CudnnRelease:
    ctx.check_keys(_CUDNN_KEYS)
    versions, cuda = ctx.specifier("versions"), ctx.specifier("cuda")
    major = ctx.integer("cuda_major", minimum=1)
    assert versions is not None and cuda is not None and major is not None
    driver, text = ctx.driver("min_driver")
    _, win_text = ctx.driver("min_driver_windows")
    ccs = ctx.strings("compute_capabilities", is_cc, "a compute capability like '8.6'")
    low, high = ctx.string("min_compute_capability"), ctx.string("max_compute_capability")
    for field, value in (("min_compute_capability", low), ("max_compute_capability", high)):
        if value is not None and not is_cc(value):
            raise ctx.fail(field, f"{value!r} is not a compute capability like '8.6'")
    dropped = ctx.strings("dropped_compute_capabilities", is_cc, "a compute capability like '6.0'")
    if not ccs and low is None and not dropped:
        raise ctx.fail("compute_capabilities", "or min_compute_capability or dropped_compute_capabilities is required")
    if ccs and (low is not None or high is not None):
        raise ctx.fail("compute_capabilities", "and min/max_compute_capability are two ways to say one thing: use one")
    both = set(ccs) & set(dropped)
    if both:
        raise ctx.fail("dropped_compute_capabilities", f"{sorted(both)} are also in compute_capabilities")
    if driver is None and ctx.string("driver_branch") is None:
        raise ctx.fail("min_driver", "or driver_branch is required")
    source, checked, note, confirmed = common_tail(ctx)
    return CudnnRelease(
        versions,
        major,
        cuda,
        source,
        checked,
        ctx.label,
        driver,
        text,
        win_text,
        ctx.string("driver_branch"),
        ccs,
        low,
        high,
        note,
        dropped,
        bool(ctx.boolean("forward_compatible", False)),
        confirmed,
    )


_CUDNN_RT_KEYS = {
    "same_major": True,
    "minor_at_least_compiled": True,
    "patch_ignored": True,
    "error": True,
    "source": True,
    "checked": True,
    "note": False,
}


def cudnn_runtime(ctx: Ctx) -> CudnnRuntime:
    ctx.check_keys(_CUDNN_RT_KEYS)
    return CudnnRuntime(
        bool(ctx.boolean("same_major")),
        bool(ctx.boolean("minor_at_least_compiled")),
        bool(ctx.boolean("patch_ignored")),
        ctx.string("error") or "",
        ctx.sources(),
        ctx.date(),
        ctx.string("note"),
    )


_TF_ROCM_KEYS = {
    "releases": True,
    "rocm": True,
    "gfx": False,
    "python": False,
    "manylinux": False,
    "glibc": False,
    "numpy_abi": False,
    "source": True,
    "checked": True,
    "note": False,
}


def tf_rocm_release(ctx: Ctx) -> TFRocmRelease:
    ctx.check_keys(_TF_ROCM_KEYS)
    rocm = ctx.version("rocm")
    assert rocm is not None
    return TFRocmRelease(
        ctx.strings("releases", is_version, "a version"),
        rocm,
        ctx.sources(),
        ctx.date(),
        ctx.label,
        ctx.strings("gfx", lambda s: bool(GFX_RE.match(s)), "a gfx target like 'gfx90a'"),
        ctx.string("note"),
        python=ctx.specifier("python"),
        manylinux=ctx.string("manylinux"),
        glibc=ctx.version("glibc"),
        numpy_abi=ctx.integer("numpy_abi", allowed=(1, 2)),
    )


_ROCM_KEYS = {
    "rocm": True,
    "tensorflow": True,
    "gfx": False,
    "source": True,
    "checked": True,
    "confirmed": False,
    "note": False,
}


def rocm_release(ctx: Ctx) -> RocmRelease:
    ctx.check_keys(_ROCM_KEYS)
    rocm = ctx.specifier("rocm")
    assert rocm is not None
    source, checked, note, confirmed = common_tail(ctx)
    return RocmRelease(
        rocm,
        ctx.strings("tensorflow", is_version, "a version"),
        source,
        checked,
        ctx.label,
        ctx.strings("gfx", lambda s: bool(GFX_RE.match(s)), "a gfx target like 'gfx90a'"),
        confirmed,
        note,
    )


_ROCM_SONAME_KEYS = {"soname": True, "rocm": True, "source": True, "checked": True, "confirmed": False, "note": False}
_SONAME_RE = re.compile(r"^lib[A-Za-z0-9_+-]+\.so(\.\d+)*$")


def rocm_soname(ctx: Ctx) -> RocmSoname:
    ctx.check_keys(_ROCM_SONAME_KEYS)
    soname = ctx.string("soname")
    if soname is None or not _SONAME_RE.match(soname):
        raise ctx.fail("soname", "is not a library soname like 'libamdhip64.so.5'")
    rocm = ctx.specifier("rocm")
    assert rocm is not None
    source, checked, note, confirmed = common_tail(ctx)
    return RocmSoname(soname, rocm, source, checked, ctx.label, confirmed, note)


_TF_PLATFORM_KEYS = {
    "package": True,
    "platform": True,
    "versions": True,
    "releases": True,
    "manylinux": False,
    "glibc": False,
    "cuda_build": False,
    "wrapper": False,
    "source": True,
    "checked": True,
    "confirmed": False,
    "note": False,
}
TF_PLATFORMS = ("aarch64",)


def tf_platform_build(ctx: Ctx) -> TFPlatformBuild:
    ctx.check_keys(_TF_PLATFORM_KEYS)
    package = ctx.string("package") or ""
    if not PKG_RE.match(package):
        raise ctx.fail("package", f"{package!r} is not a distribution name")
    platform = ctx.string("platform") or ""
    if platform not in TF_PLATFORMS:
        raise ctx.fail("platform", f"{platform!r} is none of {', '.join(TF_PLATFORMS)}")
    versions = ctx.specifier("versions")
    assert versions is not None
    releases = ctx.strings("releases", is_version, "a version")
    outside = [r for r in releases if not versions.contains(r, prereleases=True)]
    if outside:
        raise ctx.fail("releases", f"{outside[0]} is outside versions {versions}")
    source, checked, note, confirmed = common_tail(ctx)
    return TFPlatformBuild(
        package,
        platform,
        versions,
        releases,
        source,
        checked,
        ctx.label,
        manylinux=ctx.string("manylinux"),
        glibc=ctx.version("glibc"),
        cuda_build=ctx.boolean("cuda_build"),
        wrapper=bool(ctx.boolean("wrapper", False)),
        confirmed=confirmed,
        note=note,
    )


_DRIVER_BRANCH_KEYS = {
    "branch": True,
    "designation": True,
    "end_of_life": False,
    "source": True,
    "checked": True,
    "confirmed": False,
    "note": False,
}
DRIVER_BRANCH_DESIGNATIONS = ("lts", "production", "new-feature")
_MONTH_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def driver_branch(ctx: Ctx) -> DriverBranch:
    ctx.check_keys(_DRIVER_BRANCH_KEYS)
    branch = ctx.integer("branch")
    assert branch is not None
    designation = ctx.string("designation") or ""
    if designation not in DRIVER_BRANCH_DESIGNATIONS:
        raise ctx.fail("designation", f"{designation!r} is none of {', '.join(DRIVER_BRANCH_DESIGNATIONS)}")
    eol = ctx.string("end_of_life")
    if eol is not None and not _MONTH_RE.match(eol):
        raise ctx.fail("end_of_life", f"{eol!r} is not a month like '2028-06'")
    source, checked, note, confirmed = common_tail(ctx)
    return DriverBranch(branch, designation, source, checked, ctx.label, eol, confirmed, note)


_COMPANION_KEYS = {
    "package": True,
    "versions": True,
    "tensorflow": False,
    "abi_tensorflow": False,
    "native": True,
    "python": False,
    "requires": False,
    "requires_same_version": False,
    "source": True,
    "checked": True,
    "confirmed": False,
    "note": False,
}


def companion(ctx: Ctx) -> Companion:
    ctx.check_keys(_COMPANION_KEYS)
    package = ctx.string("package")
    if package is None or not PKG_RE.match(package):
        raise ctx.fail("package", f"{package!r} is not a package name")
    versions = ctx.specifier("versions")
    assert versions is not None
    requires = ctx.strings("requires")
    for r in requires:
        try:
            Requirement(r)
        except InvalidRequirement:
            raise ctx.fail("requires", f"{r!r} is not a PEP 508 requirement") from None
    source, checked, note, confirmed = common_tail(ctx)
    return Companion(
        package,
        versions,
        ctx.specifier("tensorflow"),
        bool(ctx.boolean("native")),
        source,
        checked,
        f"{ctx.label} {package}",
        ctx.specifier("abi_tensorflow"),
        ctx.specifier("python"),
        requires,
        ctx.strings("requires_same_version", lambda s: bool(PKG_RE.match(s)), "a package name"),
        confirmed,
        note,
    )
