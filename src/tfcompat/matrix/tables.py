"""The parsers of data/compat_matrix.toml's TensorFlow and CUDA tables, one per table: each checks its keys and
fields and builds the entry (errors name the file, the entry and the field). The rest of the stack (cuDNN, ROCm,
platforms, driver branches, companions): stack_tables. `load` runs them over a file."""

from __future__ import annotations

import re

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tfcompat.matrix.arch import is_build_cc, is_cc
from tfcompat.matrix.entries import (
    ComputeCapability,
    CudaMajor,
    CudaToolkit,
    ForwardCompatibility,
    TFRelease,
)
from tfcompat.matrix.fields import (
    PKG_RE,
    Ctx,
    common_tail,
    is_version,
)

_TF_KEYS = {
    "versions": True,
    "releases": False,
    "python": True,
    "cuda": False,
    "cudnn": False,
    "compute_capabilities": False,
    "numpy_abi": False,
    "tensorrt": False,
    "tensorrt_lib": False,
    "numpy": False,
    "protobuf": False,
    "keras": False,
    "ml_dtypes": False,
    "h5py": False,
    "glibc": False,
    "glibcxx": False,
    "cxxabi": False,
    "manylinux": False,
    "cxx11_abi": False,
    "compiler": False,
    "and_cuda": False,
    "and_cuda_cuda": False,
    "protoc": False,
    "numpy_built_with": False,
    "cudnn_minor": False,
    "source": True,
    "checked": True,
    "note": False,
    "confirmed": False,
}


def tf_release(ctx: Ctx) -> TFRelease:
    ctx.check_keys(_TF_KEYS)
    ccs = ctx.entry.get("compute_capabilities", [])
    if not isinstance(ccs, list) or not all(isinstance(c, str) and is_build_cc(c) for c in ccs):
        raise ctx.fail("compute_capabilities", f"{ccs!r} must be a list like ['sm_80', 'compute_90']")
    numpy_abi = ctx.integer("numpy_abi", allowed=(1, 2))
    versions = ctx.specifier("versions")
    python = ctx.specifier("python")
    assert versions is not None and python is not None  # required keys
    releases = ctx.strings("releases", is_version, "a version")
    for r in releases:
        if not versions.contains(Version(r), prereleases=True):
            raise ctx.fail("releases", f"{r!r} is not matched by versions {str(versions)!r}")
    and_cuda = ctx.entry.get("and_cuda", {})
    if not isinstance(and_cuda, dict):
        raise ctx.fail("and_cuda", "must be a table of package = specifier")
    pins: list[tuple[str, SpecifierSet]] = []
    for name, spec in and_cuda.items():
        if not PKG_RE.match(name):
            raise ctx.fail(f"and_cuda.{name}", "is not a package name")
        pin = ctx.specifier(f"and_cuda.{name}", spec)
        assert pin is not None  # a value is present
        pins.append((name, pin))
    manylinux = ctx.string("manylinux")
    if manylinux is not None and not all(p.startswith("manylinux") for p in manylinux.split(".")):
        raise ctx.fail("manylinux", f"{manylinux!r} is not a manylinux platform tag")
    cudnn_minor = ctx.string("cudnn_minor")
    if cudnn_minor not in (None, "exact"):
        raise ctx.fail("cudnn_minor", f'{cudnn_minor!r} must be "exact" (or absent: equal or newer minor)')
    source, checked, note, confirmed = common_tail(ctx)
    return TFRelease(
        versions=versions,
        python=python,
        cuda=ctx.version("cuda"),
        cudnn=ctx.version("cudnn"),
        compute_capabilities=tuple(ccs),
        numpy_abi=numpy_abi,
        numpy=ctx.specifier("numpy"),
        protobuf=ctx.specifier("protobuf"),
        keras=ctx.specifier("keras"),
        ml_dtypes=ctx.specifier("ml_dtypes"),
        glibc=ctx.version("glibc"),
        source=source,
        checked=checked,
        label=ctx.label,
        releases=releases,
        tensorrt=ctx.boolean("tensorrt"),
        tensorrt_lib=ctx.string("tensorrt_lib"),
        h5py=ctx.specifier("h5py"),
        glibcxx=ctx.version("glibcxx"),
        cxxabi=ctx.version("cxxabi"),
        manylinux=manylinux,
        cxx11_abi=ctx.integer("cxx11_abi", allowed=(0, 1)),
        compiler=ctx.string("compiler"),
        and_cuda=tuple(pins),
        and_cuda_cuda=ctx.version("and_cuda_cuda"),
        note=note,
        confirmed=confirmed,
        protoc=ctx.version("protoc"),
        numpy_built_with=ctx.version("numpy_built_with"),
        cudnn_minor=cudnn_minor,
    )


_CUDA_KEYS = {
    "version": True,
    "update": False,
    "label": False,
    "min_driver": True,
    "min_driver_windows": False,
    "source": True,
    "checked": True,
    "note": False,
}
_UPDATE_RE = re.compile(r"^(GA|GA2|RC|Update \d+)$")  # GA2: CUDA 8.0.61, 8.0's second general release


def cuda_toolkit(ctx: Ctx) -> CudaToolkit:
    ctx.check_keys(_CUDA_KEYS)
    version = ctx.version("version")
    driver, driver_text = ctx.driver("min_driver")
    win, win_text = ctx.driver("min_driver_windows")
    update = ctx.string("update") or "GA"
    if not _UPDATE_RE.match(update):
        raise ctx.fail("update", f"{update!r} must be 'GA', 'RC' or 'Update N'")
    assert version is not None and driver is not None and driver_text is not None
    return CudaToolkit(
        version,
        driver,
        driver_text,
        ctx.sources()[0],
        ctx.date(),
        update=update,
        label=ctx.string("label") or "",
        min_driver_windows=win,
        min_driver_windows_text=win_text,
        note=ctx.string("note"),
    )


_MAJOR_KEYS = {
    "major": True,
    "min_driver": False,
    "min_driver_windows": False,
    "minor_version_compatibility": False,
    "source": True,
    "checked": True,
    "note": False,
}


def cuda_major(ctx: Ctx) -> CudaMajor:
    ctx.check_keys(_MAJOR_KEYS)
    major = ctx.entry["major"]
    if not isinstance(major, int) or isinstance(major, bool) or major <= 0:
        raise ctx.fail("major", f"{major!r} is not a positive integer")
    mvc = ctx.boolean("minor_version_compatibility", True)
    driver, text = ctx.driver("min_driver")
    if mvc and driver is None:
        raise ctx.fail("min_driver", "is required unless minor_version_compatibility = false")
    if not mvc and driver is not None:
        raise ctx.fail("min_driver", "makes no sense with minor_version_compatibility = false")
    sources = ctx.sources()
    _, win_text = ctx.driver("min_driver_windows")
    return CudaMajor(
        major,
        driver,
        text,
        sources[0],
        ctx.date(),
        minor_version_compatibility=bool(mvc),
        min_driver_windows_text=win_text,
        note=ctx.string("note"),
        sources=sources,
    )


_FC_KEYS = {
    "since_cuda": True,
    "package": True,
    "gpus": True,
    "consumer_gpus": True,
    "statement": True,
    "source": True,
    "checked": True,
    "note": False,
}


def forward_compat(ctx: Ctx) -> ForwardCompatibility:
    ctx.check_keys(_FC_KEYS)
    since = ctx.version("since_cuda")
    assert since is not None
    return ForwardCompatibility(
        since,
        ctx.string("package") or "",
        ctx.strings("gpus"),
        bool(ctx.boolean("consumer_gpus")),
        ctx.string("statement") or "",
        ctx.sources(),
        ctx.date(),
        ctx.string("note"),
    )


_CC_KEYS = {
    "capabilities": True,
    "architecture": True,
    "examples": False,
    "first_cuda": False,
    "last_cuda": False,
    "source": True,
    "checked": True,
    "note": False,
}


def compute_capability(ctx: Ctx) -> ComputeCapability:
    ctx.check_keys(_CC_KEYS)
    caps = ctx.strings("capabilities", is_cc, "a compute capability like '8.6'")
    first, last = ctx.version("first_cuda"), ctx.version("last_cuda")
    if first is not None and last is not None and last < first:
        raise ctx.fail("last_cuda", f"{last} is older than first_cuda {first}")
    return ComputeCapability(
        caps,
        ctx.string("architecture") or "",
        first,
        last,
        ctx.sources(),
        ctx.date(),
        ctx.label,
        ctx.string("examples"),
        ctx.string("note"),
    )
