"""Parse and validate the world-fact tables (see `facts`): same field rules as every other table."""

from __future__ import annotations

import re
from typing import Any

from tfcompat.matrix.facts import (
    CompanionModule,
    CpuNeeds,
    CudnnSublibraries,
    DlopenLibrary,
    DlopenTable,
    DriverLibraries,
    LibraryPurpose,
    TFDistribution,
    Threshold,
    WorldFacts,
)
from tfcompat.matrix.fields import PKG_RE, Ctx, single, table_list, unique

FACT_TABLES = (
    "library",
    "dlopen",
    "tensorrt_dlopen",
    "cudnn_sublibraries",
    "cpu_needs",
    "tensorflow_distribution",
    "companion_module",
    "driver_libraries",
    "threshold",
)

_SONAME_RE = re.compile(r"^lib[A-Za-z0-9_+-]+\.so(\.[0-9]+)*(\.\{cudnn_major\})?$")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INSTRUCTION_RE = re.compile(r"^[a-z0-9_.]+$")  # /proc/cpuinfo flag names
_ROLES = ("driver", "gpu", "feature", "optional")
_GPU_STACKS = ("cuda", "rocm", "directml", "none")
_TAIL = {"source": True, "checked": True}


def _is_soname(s: str) -> bool:
    return bool(_SONAME_RE.match(s))


def _library(ctx: Ctx) -> LibraryPurpose:
    ctx.check_keys({"name": True, "purpose": True, **_TAIL})
    return LibraryPurpose(ctx.string("name") or "", ctx.string("purpose") or "", ctx.sources(), ctx.date(), ctx.label)


_DLOPEN_LIB_KEYS = {"name": True, "soname": True, "role": True, "fallbacks": False, "cuda": False, "tensorflow": False}


def _dlopen_library(ctx: Ctx, known: dict[str, Any]) -> DlopenLibrary:
    ctx.check_keys(_DLOPEN_LIB_KEYS)
    name = ctx.string("name") or ""
    if known and name not in known:
        raise ctx.fail("name", f"{name!r} has no [[library]] entry")
    soname = ctx.string("soname") or ""
    if not _is_soname(soname):
        raise ctx.fail("soname", f"{soname!r} is not a soname like 'libcudart.so.12'")
    role = ctx.string("role") or ""
    if role not in _ROLES:
        raise ctx.fail("role", f"{role!r} must be one of {', '.join(_ROLES)}")
    return DlopenLibrary(
        name,
        soname,
        role,
        ctx.strings("fallbacks", _is_soname, "a soname"),
        ctx.specifier("cuda"),
        ctx.specifier("tensorflow"),
    )


def _dlopen_table(ctx: Ctx, known: dict[str, Any], tensorrt: bool) -> DlopenTable:
    ctx.check_keys({("tensorflow" if tensorrt else "cuda_major"): True, "libraries": True, "note": False, **_TAIL})
    libraries = tuple(_dlopen_library(c, known) for c in ctx.children("libraries"))
    return DlopenTable(
        libraries,
        ctx.sources(),
        ctx.date(),
        ctx.label,
        cuda_major=None if tensorrt else ctx.integer("cuda_major", minimum=1),
        tensorflow=ctx.specifier("tensorflow") if tensorrt else None,
        note=ctx.string("note"),
    )


def _cudnn_sublibraries(ctx: Ctx) -> CudnnSublibraries:
    ctx.check_keys({"cudnn_major": True, "sonames": True, **_TAIL})
    major = ctx.integer("cudnn_major", minimum=1)
    assert major is not None
    # [] is a fact too: that major is one library (cuDNN 7)
    sonames = () if ctx.entry.get("sonames") == [] else ctx.strings("sonames", _is_soname, "a soname")
    for s in sonames:
        if not s.endswith(f".so.{major}"):
            raise ctx.fail("sonames", f"{s!r} does not end in .so.{major}")
    return CudnnSublibraries(major, sonames, ctx.sources(), ctx.date(), ctx.label)


def _instructions(ctx: Ctx, field: str):
    return ctx.strings(field, lambda s: bool(_INSTRUCTION_RE.match(s)), "a CPU flag name like 'avx2'")


def _cpu_needs(ctx: Ctx) -> CpuNeeds:
    ctx.check_keys({"machine": True, "default": True, "cited_as": True, "note": False, **_TAIL})
    return CpuNeeds(
        ctx.string("machine") or "",
        _instructions(ctx, "default"),
        ctx.string("cited_as") or "",
        ctx.sources(),
        ctx.date(),
        ctx.label,
        ctx.string("note"),
    )


def _distribution(ctx: Ctx) -> TFDistribution:
    ctx.check_keys({"name": True, "gpu": True, "cpu_needs": False, "local_version": False, "note": False, **_TAIL})
    name = ctx.string("name") or ""
    if not PKG_RE.match(name) or name != name.lower().replace("_", "-").replace(".", "-"):
        raise ctx.fail("name", f"{name!r} is not a canonical distribution name")
    gpu = ctx.string("gpu") or ""
    if gpu not in _GPU_STACKS:
        raise ctx.fail("gpu", f"{gpu!r} must be one of {', '.join(_GPU_STACKS)}")
    local = ctx.string("local_version")
    if local is not None and not re.match(r"^[a-z]+$", local):
        raise ctx.fail("local_version", f"{local!r} is not the letters of a local version label like 'nv'")
    return TFDistribution(
        name, gpu, ctx.sources(), ctx.date(), ctx.label, _instructions(ctx, "cpu_needs"), ctx.string("note"), local
    )


def _companion_module(ctx: Ctx) -> CompanionModule:
    ctx.check_keys({"module": True, "distribution": True, **_TAIL})
    module, dist = ctx.string("module") or "", ctx.string("distribution") or ""
    if not _MODULE_RE.match(module):
        raise ctx.fail("module", f"{module!r} is not a Python module name")
    if not PKG_RE.match(dist):
        raise ctx.fail("distribution", f"{dist!r} is not a package name")
    return CompanionModule(module, dist, ctx.sources(), ctx.date(), ctx.label)


def _driver_libraries(ctx: Ctx) -> DriverLibraries:
    ctx.check_keys({"sonames": True, **_TAIL})
    return DriverLibraries(ctx.strings("sonames", _is_soname, "a soname"), ctx.sources(), ctx.date())


def _threshold(ctx: Ctx) -> Threshold:
    ctx.check_keys({"key": True, "value": True, "note": False, **_TAIL})
    key = ctx.string("key") or ""
    if not _MODULE_RE.match(key):
        raise ctx.fail("key", f"{key!r} is not a threshold name like 'shm_min_bytes'")
    value = ctx.integer("value", minimum=0)
    assert value is not None
    return Threshold(key, value, ctx.sources(), ctx.date(), ctx.label, ctx.string("note"))


def parse_facts(path: str, doc: dict[str, Any]) -> WorldFacts:
    libraries = table_list(path, doc, "library", "name", _library)
    unique(path, "library", [(p.name, p) for p in libraries])
    known = {p.name: p for p in libraries}
    dlopen = table_list(path, doc, "dlopen", "cuda_major", lambda c: _dlopen_table(c, known, False))
    unique(path, "dlopen", [(str(t.cuda_major), t) for t in dlopen])
    tensorrt = table_list(path, doc, "tensorrt_dlopen", "tensorflow", lambda c: _dlopen_table(c, known, True))
    cudnn = table_list(path, doc, "cudnn_sublibraries", "cudnn_major", _cudnn_sublibraries)
    unique(path, "cudnn_sublibraries", [(str(c.cudnn_major), c) for c in cudnn])
    distributions = table_list(path, doc, "tensorflow_distribution", "name", _distribution)
    unique(path, "tensorflow_distribution", [(d.name, d) for d in distributions])
    modules = table_list(path, doc, "companion_module", "module", _companion_module)
    unique(path, "companion_module", [(m.module, m) for m in modules])
    thresholds = table_list(path, doc, "threshold", "key", _threshold)
    unique(path, "threshold", [(t.key, t) for t in thresholds])
    cpu_ctx, driver_ctx = single(path, doc, "cpu_needs"), single(path, doc, "driver_libraries")
    return WorldFacts(
        libraries=libraries,
        dlopen=dlopen,
        tensorrt=tensorrt,
        cudnn=cudnn,
        cpu=_cpu_needs(cpu_ctx) if cpu_ctx else None,
        distributions=distributions,
        companion_modules=modules,
        driver=_driver_libraries(driver_ctx) if driver_ctx else None,
        threshold_entries=thresholds,
    )
