"""libnvidia-ptxjitcompiler.so.1, the PTX JIT compiler libcuda.so.1 dlopen()s, is one of the driver libraries TFC203
judges against the kernel module, as a warning (only PTX the driver JIT-compiles needs it).

Read 2026-12-08 in Debian 12's libcuda1 / libnvidia-ptxjitcompiler1 535.261.03-1 and libnvidia-tesla-470-
ptxjitcompiler1 470.256.02: libcuda.so.535.261.03 names "libnvidia-ptxjitcompiler.so.1" as a string, not as
DT_NEEDED; the real file is libnvidia-ptxjitcompiler.so.<driver version> (SONAME libnvidia-ptxjitcompiler.so.1) in
/usr/lib/x86_64-linux-gnu/nvidia/current, reached through nvidia-alternative's links like libcuda. The real
packages are checked by tests/project/test_realwheel_debian_nvidia.py.
"""

from __future__ import annotations

import dataclasses
import os

from elf_fixtures import link, write_so
from envs import make_env, run_rule
from legacy_tree import SYSLIB

from tfcompat.model import DriverLibrary, Severity
from tfcompat.probes.nvidia import find_driver_libraries
from tfcompat.probes.rootfs import Root
from tfcompat.probes.target import TargetSpec
from tfcompat.scan import scan

PTX = "libnvidia-ptxjitcompiler.so.1"
NV = f"{SYSLIB}/nvidia/current"


def _with_libraries(env, *libs):
    return dataclasses.replace(
        env, host=dataclasses.replace(env.host, driver=dataclasses.replace(env.host.driver, libraries=libs))
    )


def _lib(soname: str, version: str, where: str = SYSLIB, compat: bool = False) -> DriverLibrary:
    stem = soname.rsplit(".so.", 1)[0]
    return DriverLibrary(soname, f"{where}/{stem}.so.{version}", version, compat)


def test_shipped_matrix_lists_the_ptx_jit_compiler(matrix):
    assert matrix.facts.driver_sonames == ("libcuda.so.1", "libnvidia-ml.so.1", PTX)


def test_stale_ptx_jit_compiler_is_a_warning(matrix):
    """libcuda matches the kernel module, the JIT compiler is another driver's: a warning naming both versions
    (libcuda.so.1 fails PTX JIT with ERROR_JIT_COMPILER_NOT_FOUND when it cannot load a usable one:
    https://github.com/anduril/jetpack-nixos/issues/184 shows it look for libnvidia-ptxjitcompiler.so.1)."""
    env = _with_libraries(
        make_env("2.21.0", driver="535.261.03"), _lib("libcuda.so.1", "535.261.03"), _lib(PTX, "470.256.02")
    )
    (f,), _ = run_rule(env, matrix, "TFC203")
    assert f.severity is Severity.WARNING
    assert f.message.startswith(f"{PTX} is version 470.256.02 ") and "535.261.03" in f.message
    assert "JIT-compile PTX" in f.message
    assert [(e.fact, e.value) for e in f.evidence] == [
        ("driver.kernel_module_version", "535.261.03"),
        (PTX, "470.256.02"),
    ]
    assert "535.261.03" in f.remediation


def test_matching_or_compat_ptx_jit_compiler_is_silent(matrix):
    env = make_env("2.21.0", driver="535.261.03")
    same = _with_libraries(env, _lib("libcuda.so.1", "535.261.03"), _lib(PTX, "535.261.03"))
    assert run_rule(same, matrix, "TFC203")[0] == []
    compat = "/usr/local/cuda-12.8/compat"  # a cuda-compat copy is meant to be newer, like its libcuda
    fwd = _with_libraries(env, _lib("libcuda.so.1", "570.86.10", compat, True), _lib(PTX, "570.86.10", compat, True))
    assert run_rule(fwd, matrix, "TFC203")[0] == []


def test_upgrade_without_reboot_errs_for_libcuda_and_warns_for_the_compiler(matrix):
    env = _with_libraries(
        make_env("2.21.0", driver="535.261.03"),
        _lib("libcuda.so.1", "550.54.15"),
        _lib("libnvidia-ml.so.1", "550.54.15"),
        _lib(PTX, "550.54.15"),
    )
    findings, _ = run_rule(env, matrix, "TFC203")
    assert [(f.message.split(" ")[0], f.severity) for f in findings] == [
        ("libcuda.so.1", Severity.ERROR),
        ("libnvidia-ml.so.1", Severity.ERROR),
        (PTX, Severity.WARNING),
    ]


def _debian_driver(root: str, version: str) -> None:
    """Debian's layout: <NV>/<stem>.<version>, <NV>/<soname> -> it, and nvidia-alternative's absolute links."""
    for stem in ("libcuda.so", "libnvidia-ml.so", "libnvidia-ptxjitcompiler.so"):
        write_so(f"{root}{NV}/{stem}.{version}", soname=f"{stem}.1")
        link(f"{root}{NV}/{stem}.1", f"{stem}.{version}")
        alt = f"/etc/alternatives/nvidia--{stem}.1-x86_64-linux-gnu"
        link(root + alt, f"{NV}/{stem}.1")
        link(f"{root}{SYSLIB}/{stem}.1", alt)


def test_probe_finds_it_through_the_alternatives(tmp_path):
    root = str(tmp_path)
    _debian_driver(root, "535.261.03")
    libs = {lib.soname: lib for lib in find_driver_libraries(Root(root), {}, None)}  # the shipped sonames
    assert libs[PTX].path == f"{root}{NV}/libnvidia-ptxjitcompiler.so.535.261.03"
    assert (libs[PTX].version, libs[PTX].forward_compat, libs[PTX].shadowed) == ("535.261.03", False, ())


def test_root_whose_ptx_jit_compiler_is_another_drivers(tmp_path, matrix):
    """Debian's 535 driver through the alternatives and a 535 kernel module: silent. Then the root's
    libnvidia-ptxjitcompiler.so.1 link is pointed at a copy of the 470 driver's (a hand-copied file, as images
    that bake driver files in carry): the probe reads 470.256.02 from the real file's name, TFC203 warns, and
    libcuda.so.1 (535) stays without a finding."""
    from tfcompat.rules import evaluate

    root = str(tmp_path)
    _debian_driver(root, "535.261.03")
    (tmp_path / "proc/driver/nvidia").mkdir(parents=True)
    (tmp_path / "proc/driver/nvidia/version").write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.261.03  Sat Jun 14 15:37:00 UTC 2025\n"
    )
    env = scan(TargetSpec(root=root), nvml=False, environ={})
    assert {lib.soname: lib.version for lib in env.host.driver.libraries}[PTX] == "535.261.03"
    assert not [f for f in evaluate(env, matrix).findings if f.rule == "TFC203"]

    write_so(f"{root}{SYSLIB}/libnvidia-ptxjitcompiler.so.470.256.02", soname=PTX)
    os.unlink(f"{root}{SYSLIB}/{PTX}")  # was the alternatives link
    link(f"{root}{SYSLIB}/{PTX}", "libnvidia-ptxjitcompiler.so.470.256.02")
    env = scan(TargetSpec(root=root), nvml=False, environ={})
    ptx = next(lib for lib in env.host.driver.libraries if lib.soname == PTX)
    assert (ptx.path, ptx.version) == (f"{root}{SYSLIB}/libnvidia-ptxjitcompiler.so.470.256.02", "470.256.02")
    hits = [f for f in evaluate(env, matrix).findings if f.rule == "TFC203"]
    assert [(f.message.split(" ")[0], f.severity) for f in hits] == [(PTX, Severity.WARNING)]
